"""Page 催收策略: collection strategies and channels by stage, champion/challenger tests.

Reads the shared filters, calls ``analysis.collections`` (episodes and rates),
``analysis.collections_compare`` (arm comparison, test planning) and
``analysis.collections_restructure`` (extended and restructured loans), then draws.
"""

from __future__ import annotations

import functools

import duckdb
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
import streamlit as st

from analysis import collections as coll
from analysis import collections_compare as compare
from analysis import collections_restructure as restructure
from analysis.filters import Filters
from dashboard import common
from messages import format as fmt
from messages import has_key

HORIZON_CHOICES = (30, 60, 90)


# The stage entry columns the sections read: rates, time to cure, arm comparison and inflow.
ENTRY_COLUMNS = [
    "entry_key", "stage", "strategy", "cured", "rolled_forward", "overdue_amount",
    "outstanding_principal", "stage_contacts", "stage_collected_amount", "stage_cost_amount",
    "duration_months", "cure_event", "entry_dpd", "product", "province", "entry_date",
]


# The entry and channel tables are kept with st.cache_resource, which hands every run the
# same object instead of an unpickled copy: at 1,000,000 loans pickling the episode table
# into st.cache_data took over a second on the first load. Callers must not modify these
# frames. Two entries bound the memory to two filter choices (about 60 MB each at
# 1,000,000 loans).
@st.cache_resource(show_spinner=False, max_entries=2)
def _entries(_con: duckdb.DuckDBPyConnection, version: int, filters: Filters, horizon_days: int) -> pd.DataFrame:
    return coll.load_stage_entries(_con, filters, horizon_days, columns=ENTRY_COLUMNS)


@st.cache_resource(show_spinner=False, max_entries=2)
def _channels(_con: duckdb.DuckDBPyConnection, version: int, filters: Filters, horizon_days: int) -> pd.DataFrame:
    return coll.load_stage_channels(_con, filters, horizon_days)


@st.cache_data(show_spinner=False, max_entries=16)
def _restructured(_con: duckdb.DuckDBPyConnection, version: int, filters: Filters) -> pd.DataFrame:
    return restructure.load_restructured(_con, filters)


class _PageData:
    """The large frames one script run works on, each fetched at most once per run."""

    def __init__(self, con: duckdb.DuckDBPyConnection, version: int, filters: Filters, horizon_days: int):
        self.con = con
        self.version = version
        self.filters = filters
        self.horizon_days = horizon_days

    @functools.cached_property
    def episodes(self) -> pd.DataFrame:
        """One row per stage entry, the columns ENTRY_COLUMNS."""
        return _entries(self.con, self.version, self.filters, self.horizon_days)

    @functools.cached_property
    def channels(self) -> pd.DataFrame:
        return _channels(self.con, self.version, self.filters, self.horizon_days)

    def key(self) -> tuple:
        """Return the cache key of the results derived from these frames."""
        return (self.version, self.filters, self.horizon_days)


# The results derived from the frames are cached as well, keyed by data version, filters and
# choices, because at 1,000,000 loans the arm comparison alone took several seconds on every
# rerun. ``_data`` (a _PageData) is left out of the key by its leading underscore.

@st.cache_data(show_spinner=False, max_entries=16)
def _episode_count(key: tuple, _data: _PageData) -> int:
    return len(_data.episodes)


@st.cache_data(show_spinner=False, max_entries=32)
def _rates(key: tuple, group: str, _data: _PageData) -> pd.DataFrame:
    if group == "channel":
        return coll.summarise_channels(_data.episodes, _data.channels)
    return coll.summarise_entries(_data.episodes)


@st.cache_data(show_spinner=False, max_entries=32)
def _cure_curves(key: tuple, stage: str, _data: _PageData) -> pd.DataFrame:
    return coll.time_to_cure(_data.episodes, stage)


@st.cache_data(show_spinner=False, max_entries=32)
def _stage_summary(key: tuple, stage: str, _data: _PageData) -> tuple[list, float | None, float]:
    """Return the stage's judged arms, its observed cure rate and its weekly inflow."""
    episodes = _data.episodes
    judged = episodes[(episodes["stage"] == stage) & episodes["cured"].notna()]
    available = sorted(judged["strategy"].unique().tolist())
    return available, coll.stage_cure_rate(episodes, stage), coll.weekly_inflow(episodes, stage)


@st.cache_data(show_spinner=False, max_entries=32)
def _comparison(key: tuple, stage: str, arms: tuple, reference: str, _data: _PageData):
    return compare.compare_arms(
        _data.episodes, stage, arms=list(arms), reference=reference, horizon_days=_data.horizon_days
    )


def _arm_label(strategy: str) -> str:
    return common.tr("collections.untreated") if strategy == coll.UNTREATED else str(strategy)


def _rate_chart(table: pd.DataFrame, group: str) -> go.Figure:
    """Grouped bars of cure, roll-forward and recovery rates with their 95% intervals."""
    figure = go.Figure()
    labels = [_group_label(value, group) for value in table[group]]
    metrics = (
        ("cure_rate", "ci_lower", "ci_upper", "collections.col.cure_rate"),
        ("roll_rate", "roll_ci_lower", "roll_ci_upper", "collections.col.roll_rate"),
        ("recovery_rate", "recovery_ci_lower", "recovery_ci_upper", "collections.col.recovery_rate"),
    )
    for value, low, high, key in metrics:
        figure.add_trace(
            go.Bar(
                name=common.tr(key),
                x=labels,
                y=table[value] * 100,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (table[high] - table[value]).fillna(0) * 100,
                    "arrayminus": (table[value] - table[low]).fillna(0) * 100,
                },
            )
        )
    figure.update_layout(barmode="group", height=380, margin={"t": 30})
    figure.update_yaxes(ticksuffix="%")
    return figure


def _rate_with_interval(rate, low, high) -> str:
    if pd.isna(rate):
        return fmt.MISSING
    return f"{fmt.format_rate(rate, 1)} ({fmt.format_rate(low, 1)}–{fmt.format_rate(high, 1)})"


def _group_label(value, group: str) -> str:
    if group == "strategy":
        return _arm_label(value)
    key = f"collections.channel.{value}"
    return common.tr(key) if has_key(key) else str(value)


def _display_table(table: pd.DataFrame, group: str) -> pd.DataFrame:
    """Return the rates table with readable headers and formatted values."""
    lang = common.lang()
    shown = pd.DataFrame(
        {
            common.tr(f"collections.col.{group}"): [_group_label(value, group) for value in table[group]],
            common.tr("collections.col.loans"): table["loans"].map(fmt.format_count),
            common.tr("collections.col.contacts_per_loan"): table["contacts_per_loan"].map(lambda v: f"{v:.1f}"),
            common.tr("collections.col.cure_rate"): [
                _rate_with_interval(*values) for values in zip(table["cure_rate"], table["ci_lower"], table["ci_upper"])
            ],
            common.tr("collections.col.roll_rate"): [
                _rate_with_interval(*values)
                for values in zip(table["roll_rate"], table["roll_ci_lower"], table["roll_ci_upper"])
            ],
            common.tr("collections.col.recovery_rate"): [
                _rate_with_interval(*values)
                for values in zip(table["recovery_rate"], table["recovery_ci_lower"], table["recovery_ci_upper"])
            ],
            common.tr("collections.col.cost_per_yuan"): [
                fmt.MISSING if pd.isna(per_yuan) else f"{per_yuan:.4g} ({fmt.format_amount(cost, lang)})"
                for per_yuan, cost in zip(table["cost_per_yuan"], table["cost"])
            ],
        }
    )
    return shown


def _rates_section(data: _PageData, stage: str, group: str) -> None:
    table = _rates(data.key(), group, data)
    table = table[table["stage"] == stage].reset_index(drop=True)
    if table.empty:
        st.info(common.tr("collections.empty"))
        return
    if group == "channel":
        st.caption(common.tr("collections.section.channel_overlap"))
    st.dataframe(_display_table(table, group), hide_index=True, width="stretch")
    st.plotly_chart(_rate_chart(table, group), width="stretch", key=f"rates_{group}")
    common.download_buttons(table, f"collections_{stage}_by_{group}", key=f"collections_{group}")


def _time_to_cure_section(data: _PageData, stage: str) -> None:
    curves = _cure_curves(data.key(), stage, data)
    if curves.empty:
        st.info(common.tr("collections.empty"))
        return
    figure = go.Figure()
    colors = plotly.colors.qualitative.Plotly
    for number, (strategy, curve) in enumerate(curves.groupby("strategy", sort=True)):
        color = colors[number % len(colors)]
        red, green, blue = plotly.colors.hex_to_rgb(color)
        label = _arm_label(strategy)
        figure.add_trace(
            go.Scatter(
                x=curve["months"], y=curve["ci_upper"] * 100, mode="lines", line_shape="hv",
                line={"width": 0, "color": color}, showlegend=False, hoverinfo="skip", legendgroup=label,
            )
        )
        figure.add_trace(
            go.Scatter(
                x=curve["months"], y=curve["ci_lower"] * 100, mode="lines", line_shape="hv",
                line={"width": 0, "color": color}, fill="tonexty", showlegend=False,
                fillcolor=f"rgba({red},{green},{blue},0.15)",
                hoverinfo="skip", legendgroup=label,
            )
        )
        figure.add_trace(
            go.Scatter(
                x=curve["months"], y=curve["cured_share"] * 100, mode="lines+markers",
                line_shape="hv", name=label, line={"color": color}, legendgroup=label,
            )
        )
    figure.update_layout(
        xaxis_title=common.tr("collections.col.months"),
        yaxis_title=common.tr("collections.col.cured_share"),
        yaxis_ticksuffix="%",
        height=380,
        margin={"t": 30},
    )
    st.plotly_chart(figure, width="stretch", key="time_to_cure")
    common.download_buttons(curves, f"collections_{stage}_time_to_cure", key="collections_km")


def _comparison_section(data: _PageData, stage: str) -> None:
    available, _, _ = _stage_summary(data.key(), stage, data)
    if len(available) < 2:
        st.info(common.tr("collections.compare.need_two"))
        return
    named = [arm for arm in available if arm != coll.UNTREATED]
    default = named if len(named) >= 2 else available
    # Widget labels are looked up in advance: Streamlit may call format_func outside the
    # script run, where the session's language cannot be read.
    labels = {arm: _arm_label(arm) for arm in available}
    chosen = st.multiselect(
        common.tr("collections.compare.arms"), available, default=default,
        format_func=labels.get, key=f"compare_arms_{stage}",
        placeholder=common.tr("common.choose_options"),
    )
    if len(chosen) < 2:
        st.info(common.tr("collections.compare.need_two"))
        return
    champion = st.selectbox(
        common.tr("collections.compare.reference"), chosen,
        index=0, format_func=labels.get, key=f"compare_reference_{stage}",
    )
    result = _comparison(data.key(), stage, tuple(chosen), champion, data)
    for level, text in result.sentences(common.lang()):
        (st.warning if level == "warning" else st.success)(text)

    differences = result.differences[result.differences["reference"] == result.reference]
    figure = go.Figure(
        go.Bar(
            x=[_arm_label(arm) for arm in differences["arm"]],
            y=differences["difference"] * 100,
            error_y={
                "type": "data", "symmetric": False,
                "array": (differences["ci_upper"] - differences["difference"]) * 100,
                "arrayminus": (differences["difference"] - differences["ci_lower"]) * 100,
            },
        )
    )
    figure.update_layout(
        title=common.tr("collections.compare.difference_chart"), height=340, margin={"t": 50},
        yaxis_ticksuffix="个百分点" if common.lang() == "zh" else " pp",
    )
    st.plotly_chart(figure, width="stretch", key="compare_differences")
    common.download_buttons(result.differences, f"collections_{stage}_arm_differences", key="collections_diff")

    st.markdown(f"**{common.tr('collections.compare.odds_ratios')}**")
    st.dataframe(_odds_ratio_display(result.odds_ratios), hide_index=True, width="stretch")
    common.download_buttons(result.odds_ratios, f"collections_{stage}_odds_ratios", key="collections_or")
    st.markdown(f"**{common.tr('collections.compare.balance')}**")
    balance = pd.DataFrame(
        {
            common.tr("collections.col.covariate"): [
                common.tr(f"collections.covariate.{name}") for name in result.balance["covariate"]
            ],
            common.tr("collections.col.arm"): [_arm_label(arm) for arm in result.balance["arm"]],
            common.tr("collections.col.smd"): result.balance["smd"].map(lambda v: f"{v:+.3f}"),
        }
    )
    st.dataframe(balance, hide_index=True, width="stretch")
    common.download_buttons(result.balance, f"collections_{stage}_assignment_check", key="collections_smd")
    st.session_state[f"collections_baseline_{stage}"] = float(result.arms["cure_rate"].iloc[0])


def _odds_ratio_display(odds_ratios: pd.DataFrame) -> pd.DataFrame:
    not_estimable = common.tr("collections.compare.not_estimable")
    return pd.DataFrame(
        {
            common.tr("collections.col.arm"): [_arm_label(arm) for arm in odds_ratios["arm"]],
            common.tr("collections.col.odds_ratio"): [
                not_estimable if pd.isna(value) else f"{value:.2f} ({low:.2f}–{high:.2f})"
                for value, low, high in zip(odds_ratios["odds_ratio"], odds_ratios["ci_lower"], odds_ratios["ci_upper"])
            ],
            common.tr("collections.col.p_value"): [
                fmt.MISSING if pd.isna(value) else f"{value:.3g}" for value in odds_ratios["p_value"]
            ],
        }
    )


def _plan_section(data: _PageData, stage: str) -> None:
    _, observed, weekly_inflow = _stage_summary(data.key(), stage, data)
    baseline_default = st.session_state.get(f"collections_baseline_{stage}", observed if observed is not None else 0.3)
    baseline_default = min(max(round(baseline_default * 100, 1), 1.0), 99.0)
    left, middle, right = st.columns(3)
    baseline = left.number_input(
        common.tr("collections.plan.baseline") + " (%)", min_value=0.1, max_value=99.9,
        value=baseline_default, step=1.0, key=f"plan_baseline_{stage}",
    )
    lift = middle.number_input(
        common.tr("collections.plan.lift"), min_value=-50.0, max_value=50.0, value=5.0, step=0.5,
        key=f"plan_lift_{stage}",
    )
    arms = right.number_input(common.tr("collections.plan.arms"), min_value=2, max_value=10, value=2, key=f"plan_arms_{stage}")
    try:
        plan = compare.plan_test(
            baseline / 100, lift / 100, weekly_inflow, arms=int(arms)
        )
    except ValueError:
        st.warning(common.tr("collections.plan.invalid"))
        return
    st.info(compare.describe_plan(plan, common.lang()))


def _restructure_section(loans: pd.DataFrame) -> None:
    st.caption(common.tr("collections.restructure.caption"))
    if loans.empty:
        st.info(common.tr("collections.restructure.none"))
        return
    table = restructure.summarise_restructured(loans)
    lang = common.lang()
    kind_label = {
        "restructured": common.tr("collections.restructure.kind_restructured"),
        "extended": common.tr("collections.restructure.kind_extended"),
        "all": common.tr("collections.restructure.kind_all"),
    }
    shown = pd.DataFrame(
        {
            common.tr("collections.restructure.kind"): table["kind"].map(kind_label),
            common.tr("collections.restructure.loans"): table["loans"].map(fmt.format_count),
            common.tr("collections.restructure.balance_at_event"): table["balance_at_event"].map(lambda v: fmt.format_amount(v, lang)),
            common.tr("collections.restructure.current_balance"): table["current_balance"].map(lambda v: fmt.format_amount(v, lang)),
            common.tr("collections.restructure.redefault_6m"): [
                f"{fmt.format_rate(r, 1)} ({fmt.format_rate(lo, 1)}–{fmt.format_rate(hi, 1)}; n={n})"
                for r, lo, hi, n in zip(table["redefault_rate_6m"], table["ci_lower_6m"], table["ci_upper_6m"], table["judged_6m"])
            ],
            common.tr("collections.restructure.redefault_12m"): [
                f"{fmt.format_rate(r, 1)} ({fmt.format_rate(lo, 1)}–{fmt.format_rate(hi, 1)}; n={n})"
                for r, lo, hi, n in zip(table["redefault_rate_12m"], table["ci_lower_12m"], table["ci_upper_12m"], table["judged_12m"])
            ],
        }
    )
    st.dataframe(shown, hide_index=True, width="stretch")
    figure = go.Figure()
    for window in ("6m", "12m"):
        figure.add_trace(
            go.Bar(
                name=common.tr(f"collections.restructure.redefault_{window}"),
                x=table["kind"].map(kind_label),
                y=table[f"redefault_rate_{window}"] * 100,
                error_y={
                    "type": "data", "symmetric": False,
                    "array": (table[f"ci_upper_{window}"] - table[f"redefault_rate_{window}"]).fillna(0) * 100,
                    "arrayminus": (table[f"redefault_rate_{window}"] - table[f"ci_lower_{window}"]).fillna(0) * 100,
                },
            )
        )
    figure.update_layout(barmode="group", height=340, margin={"t": 30})
    figure.update_yaxes(ticksuffix="%")
    st.plotly_chart(figure, width="stretch", key="restructure_redefault")
    common.download_buttons(table, "collections_restructured_summary", key="collections_restructure")
    common.download_buttons(loans, "collections_restructured_loans", key="collections_restructure_loans")


def main() -> None:
    st.title(common.tr("page.collections"))
    st.caption(common.tr("collections.caption"))
    con = common.connection()
    version = common.data_version()
    filters = common.filters()

    horizon_days = st.selectbox(
        common.tr("collections.horizon"), HORIZON_CHOICES, help=common.tr("collections.horizon_help"),
        key="collections_horizon",
    )
    data = _PageData(con, version, filters, horizon_days)
    if _episode_count(data.key(), data) == 0:
        st.info(common.tr("collections.empty"))
        st.caption(common.tr("collections.koujing"))
        return
    stage_labels = {value: common.tr(f"collections.stage.{value}") for value in coll.STAGES}
    stage = st.radio(
        common.tr("collections.stage_label"), coll.STAGES, horizontal=True,
        format_func=stage_labels.get, key="collections_stage",
    )
    tabs = st.tabs(
        [
            common.tr("collections.section.by_strategy"),
            common.tr("collections.section.by_channel"),
            common.tr("collections.section.time_to_cure"),
            common.tr("collections.section.compare"),
            common.tr("collections.section.plan"),
            common.tr("collections.section.restructure"),
        ]
    )
    with tabs[0]:
        _rates_section(data, stage, "strategy")
    with tabs[1]:
        _rates_section(data, stage, "channel")
    with tabs[2]:
        _time_to_cure_section(data, stage)
    with tabs[3]:
        _comparison_section(data, stage)
    with tabs[4]:
        _plan_section(data, stage)
    with tabs[5]:
        _restructure_section(_restructured(con, version, filters))
    st.caption(common.tr("collections.koujing"))


main()
