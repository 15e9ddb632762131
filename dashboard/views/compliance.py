"""Page 合规监测: collection-conduct breaches and pricing against 4 × LPR, 24% and 36%.

Reads the shared filters and the rule settings, calls ``analysis.compliance``, then draws.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import compliance
from analysis.filters import Filters
from dashboard import chart_axes, common
from messages import format as fmt
from messages import has_key

MAX_LIST_ROWS = 1_000
TOP_GROUPS = 30


@st.cache_data(show_spinner=False, max_entries=16)
def _breaches(_con: duckdb.DuckDBPyConnection, version: int, filters: Filters,
              rules: compliance.ComplianceRules) -> pd.DataFrame:
    return compliance.find_breaches(_con, filters, rules)


@st.cache_data(show_spinner=False, max_entries=16)
def _contacts(_con: duckdb.DuckDBPyConnection, version: int, filters: Filters,
              rules: compliance.ComplianceRules) -> pd.DataFrame:
    return compliance.contact_counts(_con, filters, rules)


@st.cache_data(show_spinner=False, max_entries=16)
def _rate_caps(_con: duckdb.DuckDBPyConnection, version: int, filters: Filters, lpr: pd.DataFrame) -> pd.DataFrame:
    return compliance.rate_cap_table(_con, filters, lpr)


def _rule_settings() -> compliance.ComplianceRules:
    defaults = compliance.ComplianceRules()
    with st.expander(common.tr("compliance.rules")):
        left, middle, right = st.columns(3)
        quiet_start = left.time_input(
            common.tr("compliance.quiet_start"), value=defaults.quiet_start, step=dt.timedelta(minutes=30),
            key="compliance_quiet_start",
        )
        quiet_end = middle.time_input(
            common.tr("compliance.quiet_end"), value=defaults.quiet_end, step=dt.timedelta(minutes=30),
            key="compliance_quiet_end",
        )
        max_calls = right.number_input(
            common.tr("compliance.max_calls"), min_value=0, max_value=50,
            value=defaults.max_connected_calls, key="compliance_max_calls",
        )
    return compliance.ComplianceRules(quiet_start=quiet_start, quiet_end=quiet_end, max_connected_calls=int(max_calls))


def _rule_label(rule: str) -> str:
    return common.tr(f"compliance.rule.{rule}")


def _channel_label(channel: str) -> str:
    key = f"collections.channel.{channel}"
    return common.tr(key) if has_key(key) else str(channel)


def _breach_list(breaches: pd.DataFrame) -> None:
    shown = breaches.head(MAX_LIST_ROWS)
    if len(breaches) > MAX_LIST_ROWS:
        st.caption(common.tr("compliance.list_truncated", shown=fmt.format_count(MAX_LIST_ROWS),
                             total=fmt.format_count(len(breaches))))
    display = pd.DataFrame(
        {
            common.tr("compliance.col.loan_id"): shown["loan_id"],
            common.tr("compliance.col.action_time"): shown["action_time"],
            common.tr("compliance.col.agent_id"): shown["agent_id"],
            common.tr("compliance.col.team"): shown["team"],
            common.tr("compliance.col.strategy"): shown["strategy"],
            common.tr("compliance.col.channel"): shown["channel"].map(_channel_label),
            common.tr("compliance.col.rule"): shown["rule"].map(_rule_label),
        }
    )
    st.dataframe(display, hide_index=True, width="stretch")
    common.download_buttons(breaches, "compliance_breaches", key="compliance_list")


def _rates_by(breaches: pd.DataFrame, contacts: pd.DataFrame, by: str) -> None:
    table = compliance.breach_rates(breaches, contacts, by)
    top = table.sort_values("per_1000", ascending=False).head(TOP_GROUPS)
    figure = go.Figure()
    for rule in compliance.RULES:
        figure.add_trace(
            go.Bar(
                name=_rule_label(rule), x=top[by].astype(str),
                y=top[f"{rule}_per_1000"],
            )
        )
    figure.update_layout(
        barmode="stack", yaxis_title=common.tr("compliance.metric.per_1000"), height=360, margin={"t": 30}
    )
    st.plotly_chart(figure, width="stretch", key=f"compliance_rates_{by}")
    display = pd.DataFrame(
        {
            common.tr(f"compliance.col.{by}"): table[by],
            common.tr("compliance.col.contacts"): table["contacts"].map(fmt.format_count),
            common.tr("compliance.col.breaches"): table["breaches"].map(fmt.format_count),
            **{_rule_label(rule): table[rule].map(fmt.format_count) for rule in compliance.RULES},
            common.tr("compliance.col.per_1000"): table["per_1000"].map(
                lambda value: fmt.MISSING if pd.isna(value) else f"{value:.2f}"
            ),
        }
    )
    st.dataframe(display, hide_index=True, width="stretch")
    common.download_buttons(table, f"compliance_rates_by_{by}", key=f"compliance_{by}")


def _trend(breaches: pd.DataFrame, contacts: pd.DataFrame) -> None:
    table = compliance.breach_rates(breaches, contacts, "month")
    labels = [fmt.format_month(month, common.lang()) for month in pd.to_datetime(table["month"]).dt.date]
    figure = go.Figure()
    for rule in compliance.RULES:
        figure.add_trace(go.Bar(name=_rule_label(rule), x=labels, y=table[rule]))
    figure.add_trace(
        go.Scatter(name=common.tr("compliance.metric.per_1000"), x=labels, y=table["per_1000"],
                   mode="lines+markers", yaxis="y2")
    )
    figure.update_layout(
        barmode="stack", height=380, margin={"t": 30},
        yaxis={"title": common.tr("compliance.metric.breaches")},
        yaxis2={"title": common.tr("compliance.metric.per_1000"), "overlaying": "y", "side": "right"},
    )
    st.plotly_chart(figure, width="stretch", key="compliance_trend")
    common.download_buttons(table, "compliance_trend", key="compliance_trend")


def _pricing(con: duckdb.DuckDBPyConnection, version: int, filters: Filters) -> None:
    st.subheader(common.tr("compliance.section.pricing"))
    try:
        lpr = compliance.load_lpr()
    except ValueError as error:
        st.error(common.tr("compliance.pricing.lpr_error", error=str(error)))
        return
    first = lpr["announcement_date"].iloc[0]
    st.caption(
        common.tr(
            "compliance.pricing.lpr_source", path=str(compliance.lpr_path()), rows=len(lpr),
            first=first.isoformat(), last=lpr["announcement_date"].iloc[-1].isoformat(),
        )
    )
    table = _rate_caps(con, version, filters, lpr)
    if table.empty:
        st.info(common.tr("compliance.pricing.empty"))
        return
    before, unrated = compliance.rate_cap_exclusions(table)
    if before:
        st.info(common.tr("compliance.pricing.before_lpr", loans=fmt.format_count(before), first=first.isoformat()))
    if unrated:
        st.info(common.tr("compliance.pricing.no_rate", loans=fmt.format_count(unrated)))

    shares = compliance.rate_cap_shares(table, "product")
    shares["product"] = shares["product"].fillna(fmt.MISSING)
    share_columns = [
        "share_4lpr_loans", "share_4lpr_principal", "share_24_loans", "share_24_principal",
        "share_36_loans", "share_36_principal",
    ]
    display = pd.DataFrame({common.tr("compliance.col.product"): shares["product"]})
    for column in share_columns:
        display[common.tr(f"compliance.pricing.{column}")] = shares[column].map(lambda v: fmt.format_rate(v, 1))
    st.dataframe(display, hide_index=True, width="stretch")
    figure = go.Figure()
    for column in ("share_4lpr_loans", "share_24_loans", "share_36_loans"):
        figure.add_trace(
            go.Bar(name=common.tr(f"compliance.pricing.{column}"), x=shares["product"],
                   y=shares[column].astype(float))
        )
    figure.update_layout(barmode="group", height=340, margin={"t": 30})
    chart_axes.apply_rate_axis(figure, common.tr("compliance.pricing.share_axis"))
    st.plotly_chart(figure, width="stretch", key="pricing_by_product")
    common.download_buttons(shares, "pricing_by_product", key="pricing_product")

    by_vintage = compliance.rate_cap_by_vintage_shares(table)
    trend = go.Figure()
    for product, rows in by_vintage.groupby("product", sort=True, dropna=False):
        trend.add_trace(
            go.Scatter(name=str(product), x=chart_axes.month_start(rows["vintage"]),
                       y=rows["share_4lpr_principal"], mode="lines+markers")
        )
    trend.update_layout(
        title=common.tr("compliance.pricing.trend"), height=360, margin={"t": 50},
        xaxis_title=common.tr("compliance.col.vintage"),
    )
    chart_axes.apply_rate_axis(trend, common.tr("compliance.pricing.share_4lpr_principal"))
    chart_axes.apply_month_axis(trend, by_vintage["vintage"].unique())
    st.plotly_chart(trend, width="stretch", key="pricing_trend")
    common.download_buttons(table, "pricing_by_product_vintage", key="pricing_vintage")


def main() -> None:
    st.title(common.tr("page.compliance"))
    st.caption(common.tr("compliance.caption"))
    con = common.connection()
    version = common.data_version()
    filters = common.filters()
    rules = _rule_settings()

    breaches = _breaches(con, version, filters, rules)
    contacts = _contacts(con, version, filters, rules)
    if contacts.empty and breaches.empty:
        st.info(common.tr("compliance.empty"))
    else:
        totals = compliance.breach_totals(breaches, contacts)
        left, middle, right = st.columns(3)
        left.metric(common.tr("compliance.metric.contacts"), fmt.format_count(totals.contacts))
        middle.metric(common.tr("compliance.metric.breaches"), fmt.format_count(totals.breaches))
        right.metric(
            common.tr("compliance.metric.per_1000"),
            fmt.MISSING if totals.per_1000 is None else f"{totals.per_1000:.2f}",
        )
        tabs = st.tabs(
            [
                common.tr("compliance.section.list"),
                common.tr("compliance.section.by_agent"),
                common.tr("compliance.section.by_team"),
                common.tr("compliance.section.by_strategy"),
                common.tr("compliance.section.trend"),
            ]
        )
        with tabs[0]:
            if breaches.empty:
                st.success(common.tr("compliance.no_breaches"))
            else:
                _breach_list(breaches)
        with tabs[1]:
            _rates_by(breaches, contacts, "agent_id")
        with tabs[2]:
            _rates_by(breaches, contacts, "team")
        with tabs[3]:
            _rates_by(breaches, contacts, "strategy")
        with tabs[4]:
            _trend(breaches, contacts)
    _pricing(con, version, filters)
    st.caption(common.tr("compliance.koujing"))


main()
