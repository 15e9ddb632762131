"""Page 生存分析: time to default by segment (Kaplan–Meier), log-rank test, competing risks
(Aalen–Johansen) and a Cox model.

Reads the shared filters, calls ``analysis.survival`` and ``analysis.survival_cox`` (the
same functions as ``python -m analysis survival`` and ``cox``) and draws. The curves come
from counts made in SQL. The Cox model is fitted only when the reader presses its button,
because the fit takes seconds on a large book. Its result is cached per data version and
choices, so the same choices show it again at once.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import survival, survival_cox
from analysis.filters import Filters
from analysis.survival_data import (
    ALL_LABEL,
    ATTRIBUTE_PREFIX,
    DEFAULT_EVENT_DPD,
    EVENT_DPD_CHOICES,
    MISSING_LABEL,
    NUMERIC_COLUMNS,
    OTHER_LABEL,
    SEGMENT_COLUMNS,
    list_attributes,
    load_survival_counts,
    load_survival_data,
)
from dashboard import common
from messages import format as fmt, t

AT_RISK_MONTHS = (0, 6, 12, 18, 24, 30, 36)
DEFAULT_COVARIATES = ("grade", "product", "channel", "principal")
FOREST_TICKS = (0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0)
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939")


# --- data (cached per data version) -----------------------------------------------------

def _attributes_of(columns) -> tuple[str, ...]:
    return tuple(name[len(ATTRIBUTE_PREFIX):] for name in columns if name and name.startswith(ATTRIBUTE_PREFIX))


@st.cache_data(show_spinner=False)
def _attribute_names(_con, version: int) -> list[str]:
    return list_attributes(_con)["attribute"].tolist()


@st.cache_data(show_spinner=False)
def _curves(_con, version: int, filters: Filters, event_dpd: int, segment: str | None):
    data = load_survival_counts(_con, filters, event_dpd, segment)
    counts = {"loans": data.n_loans, "defaults": data.n_defaults, "prepaid": data.n_prepayments}
    return survival.kaplan_meier(data, segment), survival.cumulative_incidence(data), counts, data.as_of


@st.cache_data(show_spinner=False)
def _cox(_con, version: int, filters: Filters, event_dpd: int, covariates: tuple[str, ...], segment: str | None):
    data = load_survival_data(_con, filters, event_dpd, _attributes_of(covariates))
    return survival_cox.fit_cox(data, list(covariates), segment=segment)


# --- labels ---------------------------------------------------------------------------------

def _column_label(name: str) -> str:
    if name.startswith(ATTRIBUTE_PREFIX):
        return f"{common.tr('survival.attribute_prefix')} · {name[len(ATTRIBUTE_PREFIX):]}"
    return common.tr(f"survival.column.{name}")


def _segment_label(value, segment: str | None) -> str:
    special = {
        ALL_LABEL: "survival.label_all",
        MISSING_LABEL: "survival.label_missing",
        OTHER_LABEL: "survival.label_other",
    }
    if value in special and (segment is None or value != ALL_LABEL):
        return common.tr(special[value])
    if segment == "is_first_loan" and value in ("True", "False"):
        return common.tr("survival.label_first_true" if value == "True" else "survival.label_first_false")
    return str(value)


def _term_label(row) -> str:
    column = _column_label(row["variable"])
    if row["level"] is None or (isinstance(row["level"], float) and math.isnan(row["level"])):
        return column
    return common.tr(
        "survival.cox_baseline_label",
        column=column,
        level=_segment_label(row["level"], row["variable"]),
        baseline=_segment_label(row["baseline"], row["variable"]),
    )


def _rate(value) -> str:
    return fmt.format_rate(value, 1)


def _draw_notes(notes) -> None:
    if not notes:
        return
    texts = list(dict.fromkeys(note.text(common.lang()) for note in notes))
    st.warning("\n".join(f"- {text}" for text in texts))


# --- drawing --------------------------------------------------------------------------------

def _draw_controls(attributes: list[str]) -> tuple[int, str | None]:
    left, right = st.columns(2)
    event_dpd = left.radio(
        common.tr("survival.event_dpd"),
        options=list(EVENT_DPD_CHOICES),
        index=EVENT_DPD_CHOICES.index(DEFAULT_EVENT_DPD),
        format_func=lambda dpd, language=common.lang(): t("survival.event_dpd_option", language, dpd=dpd),
        horizontal=True,
        key="survival_event_dpd",
    )
    segments = [None, *SEGMENT_COLUMNS, *(f"{ATTRIBUTE_PREFIX}{name}" for name in attributes)]
    none_label = common.tr("survival.segment_none")
    labels = {name: _column_label(name) for name in segments if name}
    segment = right.selectbox(
        common.tr("survival.segment"),
        options=segments,
        index=segments.index("grade"),
        format_func=lambda name, labels=labels, none_label=none_label: labels.get(name, none_label),
        key="survival_segment",
    )
    return int(event_dpd), segment


def _draw_km(km: survival.KaplanMeierResult) -> None:
    st.subheader(common.tr("survival.km_header"))
    figure = go.Figure()
    for index, (segment, part) in enumerate(km.table.groupby("segment", sort=True)):
        color = COLORS[index % len(COLORS)]
        label = _segment_label(segment, km.segment)
        figure.add_trace(go.Scatter(
            x=part["timeline"], y=part["ci_upper"], mode="lines", line={"width": 0, "shape": "hv"},
            showlegend=False, hoverinfo="skip", legendgroup=label,
        ))
        figure.add_trace(go.Scatter(
            x=part["timeline"], y=part["ci_lower"], mode="lines", line={"width": 0, "shape": "hv"},
            fill="tonexty", fillcolor=_transparent(color), name=common.tr("survival.km_band", segment=label),
            showlegend=False, hoverinfo="skip", legendgroup=label,
        ))
        figure.add_trace(go.Scatter(
            x=part["timeline"], y=part["survival"], mode="lines", line={"color": color, "shape": "hv"},
            name=label, legendgroup=label,
            hovertemplate="MOB %{x}: %{y:.1%}<extra>" + label + "</extra>",
        ))
    figure.update_layout(
        xaxis_title=common.tr("survival.km_axis_x"),
        yaxis_title=common.tr("survival.km_axis_y"),
        yaxis_tickformat=".0%",
        height=420,
        margin={"t": 20},
    )
    st.plotly_chart(figure, width="stretch", key="survival_km_chart")

    st.caption(common.tr("survival.at_risk_header"))
    last = int(km.table["timeline"].max())
    months = [month for month in AT_RISK_MONTHS if month < last] or [0]
    at_risk = km.number_at_risk(months)
    at_risk["segment"] = [_segment_label(value, km.segment) for value in at_risk["segment"]]
    at_risk = at_risk.rename(columns={"segment": common.tr("survival.col_segment")})
    at_risk.columns = [str(column) for column in at_risk.columns]
    st.dataframe(at_risk, hide_index=True, width="stretch")
    common.download_buttons(km.table, "survival_km", "survival_km")


def _draw_summary(km: survival.KaplanMeierResult) -> None:
    st.subheader(common.tr("survival.summary_header"))
    rows = []
    survival_at = km.survival_at.set_index(["segment", "month"])
    for record in km.summary.itertuples():
        if record.median_reached:
            median = f"{record.median_mob:.0f}"
        else:
            median = common.tr("survival.not_reached")
        if pd.isna(record.median_ci_lower):
            interval = "—"
        else:
            upper = common.tr("survival.not_reached") if pd.isna(record.median_ci_upper) else f"{record.median_ci_upper:.0f}"
            interval = f"{record.median_ci_lower:.0f} – {upper}"
        row = {
            common.tr("survival.col_segment"): _segment_label(record.segment, km.segment),
            common.tr("survival.col_loans"): fmt.format_count(record.loans),
            common.tr("survival.col_defaults"): fmt.format_count(record.defaults),
            common.tr("survival.col_median"): median,
            common.tr("survival.col_median_ci"): interval,
        }
        for month in survival.SURVIVAL_AT_MONTHS:
            value = survival_at.loc[(record.segment, month)]
            text = common.tr("survival.no_follow_up") if pd.isna(value["survival"]) else (
                f"{_rate(value['survival'])} ({_rate(value['ci_lower'])} – {_rate(value['ci_upper'])})"
            )
            row[common.tr("survival.col_survival_at", month=month)] = text
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if km.logrank is not None:
        st.markdown(km.logrank.verdict(common.lang()))
    download = km.summary.merge(
        km.survival_at.pivot(index="segment", columns="month", values="survival")
        .add_prefix("survival_mob_").reset_index(),
        on="segment",
    )
    common.download_buttons(download, "survival_summary", "survival_summary")


def _draw_incidence(incidence: survival.IncidenceResult) -> None:
    st.subheader(common.tr("survival.cif_header"))
    table = incidence.table
    figure = go.Figure()
    series = (
        ("cif_default", "survival.cif_default", "#d62728", "solid"),
        ("cif_prepayment", "survival.cif_prepayment", "#2ca02c", "solid"),
        ("one_minus_km", "survival.one_minus_km", "#d62728", "dash"),
    )
    for column, key, color, dash in series:
        figure.add_trace(go.Scatter(
            x=table["timeline"], y=table[column], mode="lines", name=common.tr(key),
            line={"color": color, "dash": dash, "shape": "hv"},
        ))
    figure.update_layout(
        xaxis_title=common.tr("survival.km_axis_x"),
        yaxis_title=common.tr("survival.cif_axis_y"),
        yaxis_tickformat=".0%",
        height=380,
        margin={"t": 20},
        legend={"orientation": "h", "y": -0.25},
    )
    st.plotly_chart(figure, width="stretch", key="survival_cif_chart")
    reference = table[table["timeline"] <= 24].iloc[-1]
    st.markdown(common.tr(
        "survival.cif_explain",
        mob=int(reference["timeline"]),
        km=_rate(reference["one_minus_km"]),
        cif=_rate(reference["cif_default"]),
    ))
    common.download_buttons(table, "survival_cumulative_incidence", "survival_cif")


def _draw_cox(filters: Filters, event_dpd: int, segment: str | None, attributes: list[str]) -> None:
    st.subheader(common.tr("survival.cox_header"))
    options = [*SEGMENT_COLUMNS, *NUMERIC_COLUMNS, *(f"{ATTRIBUTE_PREFIX}{name}" for name in attributes)]
    labels = {name: _column_label(name) for name in options}
    covariates = st.multiselect(
        common.tr("survival.cox_covariates"),
        options=options,
        default=list(DEFAULT_COVARIATES),
        format_func=lambda name, labels=labels: labels[name],
        key="survival_covariates",
        placeholder=common.tr("common.choose_options"),
    )
    st.caption(common.tr("survival.cox_hint"))
    if not covariates:
        st.info(common.tr("survival.cox_pick"))
        return

    # The fit runs on the button only. Choices fitted before in this session are shown
    # again without a click, and st.cache_data returns their result at once.
    version = common.data_version()
    choice = (version, filters, event_dpd, tuple(covariates), segment)
    fitted = st.session_state.setdefault("survival_cox_fitted", set())
    pressed = st.button(common.tr("survival.cox_run"), key="survival_cox_run", type="primary")
    if not pressed and choice not in fitted:
        st.caption(common.tr("survival.cox_run_hint"))
        return
    with st.spinner(common.tr("survival.cox_running")):
        result = _cox(common.connection(), version, filters, event_dpd, tuple(covariates), segment)
    fitted.add(choice)
    _draw_notes(result.notes)
    if not result.fitted:
        return

    table = result.table.copy()
    table["label"] = [_term_label(row) for _, row in table.iterrows()]
    figure = go.Figure(go.Scatter(
        x=table["hazard_ratio"],
        y=table["label"],
        mode="markers",
        marker={"size": 9, "color": "#1f77b4"},
        error_x={
            "type": "data",
            "symmetric": False,
            "array": table["ci_upper"] - table["hazard_ratio"],
            "arrayminus": table["hazard_ratio"] - table["ci_lower"],
        },
        hovertemplate="%{y}: HR %{x:.3f}<extra></extra>",
    ))
    figure.add_vline(x=1.0, line_dash="dash", line_color="gray")
    low, high = float(table["ci_lower"].min()), float(table["ci_upper"].max())
    ticks = [value for value in FOREST_TICKS if low / 1.5 <= value <= high * 1.5] or [1.0]
    figure.update_layout(
        xaxis_type="log",
        xaxis_tickvals=ticks,
        xaxis_ticktext=[f"{value:g}" for value in ticks],
        xaxis_title=common.tr("survival.forest_axis_x"),
        yaxis={"autorange": "reversed"},
        height=max(260, 40 * len(table) + 80),
        margin={"t": 20},
    )
    st.plotly_chart(figure, width="stretch", key="survival_forest_chart")

    shown = pd.DataFrame({
        common.tr("survival.col_covariate"): table["label"],
        common.tr("survival.col_hr"): table["hazard_ratio"].map("{:.3f}".format),
        common.tr("survival.col_ci_lower"): table["ci_lower"].map("{:.3f}".format),
        common.tr("survival.col_ci_upper"): table["ci_upper"].map("{:.3f}".format),
        common.tr("survival.col_p"): table["p_value"].map(lambda p: "< 0.0001" if p < 0.0001 else f"{p:.4f}"),
    })
    st.dataframe(shown, hide_index=True, width="stretch")
    st.markdown(common.tr(
        "survival.cox_fit_summary",
        loans=fmt.format_count(result.n_loans),
        events=fmt.format_count(result.n_events),
        concordance=f"{result.concordance:.3f}",
    ))
    if result.baselines:
        baselines = "; ".join(
            f"{_column_label(name)} = {_segment_label(level, name)}" for name, level in result.baselines.items()
        )
        st.caption(common.tr("survival.baseline_line", baselines=baselines))
    common.download_buttons(result.table, "survival_cox_hazard_ratios", "survival_cox")

    if not result.ph_test.empty:
        st.markdown(f"**{common.tr('survival.ph_header')}**")
        labels_by_term = dict(zip(table["covariate"].map(_term_key), table["label"]))
        lines = []
        for record in result.ph_test.itertuples():
            key = "survival.ph_ok" if record.ph_holds else "survival.ph_bad"
            term = labels_by_term.get(record.covariate, record.covariate)
            lines.append("- " + common.tr(key, term=term, p=survival.format_p(record.p_value)))
        st.markdown("\n".join(lines))
        common.download_buttons(result.ph_test, "survival_ph_test", "survival_ph")
    st.caption(common.tr("survival.koujing_cox"))


def _term_key(covariate: str) -> str:
    """Map a table covariate label ('grade=B (baseline A)') to its model term ('grade=B')."""
    return covariate.split(" (baseline ")[0]


def _transparent(color: str) -> str:
    red, green, blue = (int(color[index:index + 2], 16) for index in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, 0.15)"


# --- page -----------------------------------------------------------------------------------

st.title(common.tr("survival.title"))
st.caption(common.tr("survival.caption"))

con = common.connection()
version = common.data_version()
filters = common.filters()
attributes = _attribute_names(con, version)
event_dpd, segment = _draw_controls(attributes)

km, incidence, counts, as_of = _curves(con, version, filters, event_dpd, segment)
koujing = common.tr(
    "survival.koujing", dpd=event_dpd, as_of=fmt.format_month(as_of, common.lang()) if as_of else "—"
)
if counts["loans"] == 0:
    st.info(common.tr("survival.empty"))
    st.caption(koujing)
else:
    st.markdown(common.tr(
        "survival.loans_line",
        loans=fmt.format_count(counts["loans"]),
        defaults=fmt.format_count(counts["defaults"]),
        prepaid=fmt.format_count(counts["prepaid"]),
    ))
    _draw_notes(km.notes)
    _draw_km(km)
    st.caption(koujing)
    _draw_summary(km)
    _draw_incidence(incidence)
    _draw_cox(filters, event_dpd, segment, attributes)
