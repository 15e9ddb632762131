"""Page 经营概览: the as-of month's KPIs with MoM, YoY, 13-month trends and 本月要点.

Reads the shared filters, calls ``analysis.kpis`` (the same functions as
``python -m analysis kpis``) and draws.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import kpis
from analysis.filters import Filters
from dashboard import chart_axes, common
from messages import format as fmt, t

# Four cards a row and one decimal on card amounts keep values such as 2,733.9万元 whole in
# a 1400 px wide window (checked in Chromium at 1400x900 and 1920x1080).
CARDS_PER_ROW = 4
CARD_AMOUNT_DIGITS = 1
VERDICT_COLORS = {"worse": "red", "better": "green", "flat": "gray", None: "gray"}


# --- data (cached per data version) -----------------------------------------------------

@st.cache_data(show_spinner=False)
def _monthly(version: int, filters: Filters, preset: str, par30_restructured: bool) -> pd.DataFrame:
    return kpis.monthly_kpis(
        common.connection(), filters, preset=preset, par30_restructured=par30_restructured
    )


@st.cache_data(show_spinner=False)
def _five_class(version: int, filters: Filters, preset: str) -> pd.DataFrame:
    return kpis.five_class(common.connection(), filters, preset)


@st.cache_data(show_spinner=False)
def _fpd_cohorts(version: int, filters: Filters) -> pd.DataFrame:
    return kpis.fpd30_cohorts(common.connection(), filters)


# --- formatting ---------------------------------------------------------------------------

def _value_text(kind: str, value: float, amount_digits: int = 2) -> str:
    language = common.lang()
    if kind == "amount":
        return fmt.format_amount(value, language, digits=amount_digits)
    if kind == "count":
        return fmt.format_count(value, language)
    return fmt.format_rate(value)


def _change_text(kind: str, change: float, signed: bool = True) -> str:
    if kind == "rate":
        return fmt.format_pp(change, common.lang(), signed=signed)
    return fmt.format_change_ratio(change, signed=signed)


def _verdict_word(verdict: str | None, change: float) -> str:
    """Return 恶化/改善/持平, or 上升/下降 for a metric that is neither good nor bad."""
    if verdict is not None:
        return common.tr(f"kpis.verdict.{verdict}")
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return ""
    return common.tr("kpis.verdict.up" if change > 0 else "kpis.verdict.down")


def _comparison_line(label_key: str, change: kpis.KpiChange, which: str) -> str:
    """Return e.g. '同比 +0.52个百分点 :red[恶化]' (markdown)."""
    value = change.mom_change if which == "mom" else change.yoy_change
    verdict = change.mom_verdict if which == "mom" else change.yoy_verdict
    if value is None or math.isnan(value):
        return f"{common.tr(label_key)} {common.tr('kpis.no_comparison')}"
    word = _verdict_word(verdict, value)
    color = VERDICT_COLORS.get(verdict, "gray")
    marked = f" :{color}[{word}]" if word else ""
    return f"{common.tr(label_key)} {_change_text(change.kind, value)}{marked}"


def _sentence_change(change: kpis.KpiChange) -> str:
    """Return 增长5.2% / 下降3.1% / 基本持平 for a highlight sentence."""
    if change.mom_change is None or math.isnan(change.mom_change):
        return common.tr("kpis.change.none")
    if change.mom_verdict == "flat":
        return common.tr("kpis.change.flat")
    size = _change_text(change.kind, change.mom_change, signed=False)
    return common.tr("kpis.change.up" if change.mom_change > 0 else "kpis.change.down", value=size)


def _highlight_sentences(changes: list[kpis.KpiChange], month_label: str) -> list[str]:
    by_column = {change.column: change for change in changes}
    language = common.lang()
    sentences = []
    for highlight in kpis.highlights(changes):
        change = highlight.change
        if highlight.template == "kpis.highlight.balance":
            sentences.append(common.tr(
                highlight.template,
                month=month_label,
                value=_value_text(change.kind, change.value),
                change=_sentence_change(change),
                new_amount=fmt.format_amount(by_column["new_amount"].value, language),
                new_loans=fmt.format_count(by_column["new_loans"].value, language),
            ))
        elif highlight.template == "kpis.highlight.losses":
            chargeoff = by_column["chargeoff_amount"].value
            recovery = by_column["recovery_amount"].value
            sentences.append(common.tr(
                highlight.template,
                chargeoff=fmt.format_amount(chargeoff, language),
                recovery=fmt.format_amount(recovery, language),
                net_loss=fmt.format_amount(chargeoff - recovery, language),
            ))
        else:
            sentences.append(common.tr(
                highlight.template,
                metric=common.tr(f"kpis.metric.{change.column}"),
                change=_change_text(change.kind, change.mom_change, signed=False),
                value=_value_text(change.kind, change.value),
            ))
    return sentences


def _trend_values(trend: pd.DataFrame, column: str) -> list[float]:
    return [float(value) for value in trend[column] if not pd.isna(value)]


# --- drawing ------------------------------------------------------------------------------

def _draw_settings() -> tuple[str, bool]:
    with st.expander(common.tr("kpis.settings")):
        presets = list(kpis.CLASSIFICATION_PRESETS)
        stored = common.remembered("kpis_preset", kpis.DEFAULT_PRESET)
        preset = st.radio(
            common.tr("kpis.preset_label"),
            options=presets,
            index=presets.index(stored) if stored in presets else 0,
            format_func=lambda key, language=common.lang(): t(f"kpis.preset.{key}", language),
            key=common.language_key("kpis_preset"),
            horizontal=True,
        )
        restructured = st.toggle(
            common.tr("kpis.par30_restructured"),
            value=common.remembered("kpis_par30_restructured", False),
            key=common.language_key("kpis_par30_restructured"),
        )
    common.remember("kpis_preset", preset)
    common.remember("kpis_par30_restructured", restructured)
    return preset, restructured


def _draw_cards(changes: list[kpis.KpiChange], trend: pd.DataFrame, fpd_cohort) -> None:
    st.subheader(common.tr("kpis.cards_title"))
    for index, change in enumerate(changes):
        if index % CARDS_PER_ROW == 0:
            columns = st.columns(CARDS_PER_ROW)
        verdict = change.mom_verdict
        with columns[index % CARDS_PER_ROW]:
            has_mom = not (change.mom_change is None or math.isnan(change.mom_change))
            st.metric(
                common.tr(f"kpis.metric.{change.column}"),
                _value_text(change.kind, change.value, CARD_AMOUNT_DIGITS),
                delta=_change_text(change.kind, change.mom_change) if has_mom else None,
                delta_color=VERDICT_COLORS.get(verdict, "gray"),
                help=common.tr(f"kpis.help.{change.column}"),
                chart_data=_trend_values(trend, change.column) or None,
                chart_type="line",
                border=True,
            )
            st.markdown(
                _comparison_line("kpis.mom", change, "mom") + "  \n"
                + _comparison_line("kpis.yoy", change, "yoy")
            )
            if change.column == "fpd30_count_rate" and fpd_cohort is not None and not pd.isna(fpd_cohort):
                st.caption(common.tr("kpis.fpd30_cohort", month=common.format_month(fpd_cohort)))


def _localised_trend(trend: pd.DataFrame) -> pd.DataFrame:
    """Return the 13-month table with catalog column names, for display and download."""
    columns = ["month"] + [metric.column for metric in kpis.METRICS] + ["m1plus_count_rate"]
    table = trend[columns].copy()
    names = {"month": common.tr("kpis.column.month")}
    names.update({column: common.tr(f"kpis.metric.{column}") for column in columns[1:]})
    return table.rename(columns=names)


def _draw_trend(trend: pd.DataFrame) -> None:
    st.subheader(common.tr("kpis.trend_title"))
    metric_columns = [metric.column for metric in kpis.METRICS]
    stored = common.remembered("kpis_trend_metric", metric_columns[0])
    chosen = st.selectbox(
        common.tr("kpis.trend_metric"),
        options=metric_columns,
        index=metric_columns.index(stored) if stored in metric_columns else 0,
        format_func=lambda column, language=common.lang(): t(f"kpis.metric.{column}", language),
        key=common.language_key("kpis_trend_metric"),
    )
    common.remember("kpis_trend_metric", chosen)
    metric = kpis.METRICS_BY_COLUMN[chosen]
    labels = [common.format_month(month) for month in trend["month"]]
    values = trend[chosen].astype(float)
    figure = go.Figure(go.Scatter(x=labels, y=values, mode="lines+markers", name=common.tr(f"kpis.metric.{chosen}")))
    metric_name = common.tr(f"kpis.metric.{chosen}")
    if metric.kind == "rate":
        chart_axes.apply_rate_axis(figure, metric_name, digits=2)
    elif metric.kind == "amount":
        chart_axes.apply_amount_axis(figure, values, common.lang(), metric_name)
    else:
        figure.update_yaxes(tickformat=",d", title=metric_name)
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, showlegend=False)
    st.plotly_chart(figure, key="kpis_trend_chart")
    st.caption(common.tr("kpis.trend_note"))
    table = _localised_trend(trend)
    percent = st.column_config.NumberColumn(format="percent")
    rate_columns = [metric.column for metric in kpis.METRICS if metric.kind == "rate"] + ["m1plus_count_rate"]
    st.dataframe(
        table,
        hide_index=True,
        column_config={common.tr(f"kpis.metric.{column}"): percent for column in rate_columns},
    )
    common.download_buttons(table, "kpis_trend_13m", key="kpis_trend")


def _draw_five_class(frame: pd.DataFrame, month_label: str) -> None:
    st.subheader(common.tr("kpis.five_class_title", month=month_label))
    table = pd.DataFrame({
        common.tr("kpis.column.class"): [common.tr(f"kpis.class.{code}") for code in frame["class_code"]],
        common.tr("kpis.column.loans"): frame["loans"],
        common.tr("kpis.column.balance"): frame["balance"].round(2),
        common.tr("kpis.column.balance_share"): frame["balance_share"],
    })
    left, right = st.columns([3, 2])
    with left:
        figure = go.Figure(go.Bar(x=table.iloc[:, 0], y=frame["balance"]))
        chart_axes.apply_amount_axis(figure, [0, *frame["balance"]], common.lang(), common.tr("kpis.axis.balance"))
        figure.update_layout(height=280, margin={"l": 10, "r": 10, "t": 10, "b": 10})
        st.plotly_chart(figure, key="kpis_five_class_chart")
    with right:
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                common.tr("kpis.column.balance_share"): st.column_config.NumberColumn(format="percent"),
            },
        )
    common.download_buttons(table, "kpis_five_class", key="kpis_five_class")
    common.method_note(common.tr("kpis.five_class_note"))


def _draw_fpd(cohorts: pd.DataFrame) -> None:
    st.subheader(common.tr("kpis.fpd_title"))
    if cohorts.empty:
        st.info(common.tr("kpis.fpd_none"))
        return
    recent = cohorts.tail(13)
    table = pd.DataFrame({
        common.tr("kpis.column.vintage"): [common.format_month(month) for month in recent["vintage"]],
        common.tr("kpis.column.loans"): recent["loans"].astype(int),
        common.tr("kpis.column.fpd30_loans"): recent["fpd30_loans"].astype(int),
        common.tr("kpis.column.fpd30_count_rate"): recent["fpd30_count_rate"],
        common.tr("kpis.column.fpd30_amount_rate"): recent["fpd30_amount_rate"],
        common.tr("kpis.column.judged_month"): [common.format_month(month) for month in recent["judged_month"]],
    })
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            common.tr("kpis.column.fpd30_count_rate"): percent,
            common.tr("kpis.column.fpd30_amount_rate"): percent,
        },
    )
    common.download_buttons(table, "kpis_fpd30_cohorts", key="kpis_fpd")


# --- page ---------------------------------------------------------------------------------

st.title(common.tr("page.kpis"))
filters = common.filters()
preset, par30_restructured = _draw_settings()
version = common.data_version()
monthly = _monthly(version, filters, preset, par30_restructured)

if monthly.empty:
    st.info(common.tr("kpis.no_data"))
    st.stop()

as_of = monthly["month"].iloc[-1]
month_label = common.format_month(as_of)
st.caption(common.tr("kpis.subtitle", month=month_label))

changes = kpis.kpi_changes(monthly, as_of)
trend = kpis.trend(monthly, as_of)

st.subheader(common.tr("kpis.highlights_title"))
for sentence in _highlight_sentences(changes, month_label):
    st.markdown(f"- {sentence}")

_draw_cards(changes, trend, monthly["fpd30_cohort"].iloc[-1])
common.method_note(common.tr("kpis.method"))
_draw_trend(trend)
_draw_five_class(_five_class(version, filters, preset), month_label)
_draw_fpd(_fpd_cohorts(version, filters))
