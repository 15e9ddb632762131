"""Page: vintage curves and roll rates (账龄与迁徙).

Reads the shared filters, calls ``analysis.vintage`` and ``analysis.rollrate`` (cached per
data version), then draws: vintage curves with the cohort heatmap, the migration matrix,
flow-rate trends with the implied loss rate, and the Markov forecast of young cohorts.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analysis import rollrate as rollrate_analysis
from analysis import vintage as vintage_analysis
from analysis.buckets import DEFAULT_BUCKETS, Buckets, parse_buckets
from analysis.filters import Filters, resolve_as_of
from dashboard import chart_axes, common
from messages import format as fmt
from messages import t

WORSE_COLOR = "#d62728"
AVERAGE_COLOR = "#222222"
FORECAST_WINDOW_MONTHS = 6


# Cached analysis -------------------------------------------------------------------------

@st.cache_data(show_spinner=False)
def _as_of(_con, version: int, filters: Filters) -> dt.date | None:
    return resolve_as_of(_con, filters).as_of


@st.cache_data(show_spinner=False)
def _month_range(_con, version: int, filters: Filters):
    return rollrate_analysis.snapshot_month_range(_con, filters)


@st.cache_data(show_spinner=False)
def _vintage_curves(_con, version: int, filters: Filters, threshold: int, by: str,
                    basis: str, cohort: str, min_loans: int):
    return vintage_analysis.vintage_curves(
        _con, filters, threshold=threshold, by=by, basis=basis, cohort=cohort, min_loans=min_loans
    )


@st.cache_data(show_spinner=False)
def _migration_matrix(_con, version: int, filters: Filters, buckets: Buckets,
                      month_from: dt.date, month_to: dt.date):
    return rollrate_analysis.migration_matrix(
        _con, filters, buckets, month_from=month_from, month_to=month_to
    )


@st.cache_data(show_spinner=False)
def _flow_rates(_con, version: int, filters: Filters, buckets: Buckets):
    return rollrate_analysis.flow_rates(_con, filters, buckets)


@st.cache_data(show_spinner=False)
def _forecast(_con, version: int, filters: Filters, buckets: Buckets, threshold: int,
              target_mob: int, by: str, cohort: str, month_from: dt.date, month_to: dt.date):
    matrix = rollrate_analysis.migration_matrix(
        _con, filters, buckets, month_from=month_from, month_to=month_to
    )
    return vintage_analysis.forecast_ever_rates(
        _con, filters, buckets, threshold=threshold, target_mob=target_mob, by=by,
        cohort=cohort, matrix=matrix,
    )


# Small helpers -----------------------------------------------------------------------------

def _month_label(month: dt.date) -> str:
    return fmt.format_month(month, common.lang())


def _month_formatter():
    """Return a month format function bound to this run's language.

    Widgets keep their format function beyond the script run, where the session's
    language is no longer readable, so the language is bound now.
    """
    lang = common.lang()
    return lambda month: fmt.format_month(month, lang)


def _option_formatter(prefix: str):
    """Return a format function showing option ``value`` as catalog text ``prefix_value``,
    bound to this run's language (see ``_month_formatter``)."""
    lang = common.lang()
    return lambda value: t(f"{prefix}_{value}", lang)


def _state_label(label: str) -> str:
    """Show PAID and WO in the session's language; bucket names stay C, M1, ..."""
    if label == "PAID":
        return common.tr("vintage.state_paid")
    if label == "WO":
        return common.tr("vintage.state_wo")
    return label


def _percent_text(values: np.ndarray) -> list[list[str]]:
    """Cell texts for a heatmap: '12.3%' or '' for a blank (NaN) cell."""
    return [["" if np.isnan(value) else f"{value * 100:.1f}%" for value in row] for row in values]


def _caption_method(text: str) -> None:
    st.caption(f"{common.tr('vintage.method_label')}{text}")


def _month_ends_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [stamp.date() for stamp in pd.date_range(first, last, freq="ME")]


def _shift_month_end(month: dt.date, months: int) -> dt.date:
    """Return the month-end ``months`` months after ``month`` (negative: before)."""
    return (pd.Timestamp(month) + pd.offsets.MonthEnd(0) + pd.offsets.MonthEnd(months)).date()


# Sections --------------------------------------------------------------------------------

def _vintage_section(con, version: int, filters: Filters) -> None:
    columns = st.columns(5)
    threshold = columns[0].selectbox(
        common.tr("vintage.threshold"), [0, 30, 60, 90], index=1,
        format_func=lambda days: f"{days}+", key="vintage_threshold",
    )
    by = columns[1].segmented_control(
        common.tr("vintage.by"), ["count", "balance"], default="count",
        format_func=_option_formatter("vintage.by"), key="vintage_by",
    ) or "count"
    basis = columns[2].segmented_control(
        common.tr("vintage.basis"), ["ever", "current"], default="ever",
        format_func=_option_formatter("vintage.basis"), key="vintage_basis",
    ) or "ever"
    cohort = columns[3].segmented_control(
        common.tr("vintage.cohort"), ["month", "quarter"], default="month",
        format_func=_option_formatter("vintage.cohort"), key="vintage_cohort",
    ) or "month"
    min_loans = int(columns[4].number_input(
        common.tr("vintage.min_loans"), min_value=0, value=vintage_analysis.DEFAULT_MIN_LOANS,
        step=10, key="vintage_min_loans",
    ))

    curves = _vintage_curves(con, version, filters, threshold, by, basis, cohort, min_loans)
    if curves.is_empty:
        st.info(common.tr("vintage.no_cohorts"))
        return

    rate_name = common.tr(f"vintage.rate_{basis}_{by}", threshold=threshold)
    left, right = st.columns(2)
    with left:
        st.subheader(common.tr("vintage.curves_title", rate=rate_name))
        st.plotly_chart(_curves_figure(curves, rate_name), width="stretch", key="vintage_curves_chart")
        common.download_buttons(curves.table, "vintage_curves", key="dl_vintage_curves")
    with right:
        st.subheader(common.tr("vintage.heatmap_title", rate=rate_name))
        st.plotly_chart(_heatmap_figure(curves), width="stretch", key="vintage_heatmap_chart")
        heatmap = curves.heatmap()
        heatmap.columns = [f"MOB{mob}" for mob in heatmap.columns]
        common.download_buttons(heatmap.reset_index(), "vintage_heatmap", key="dl_vintage_heatmap")

    cohorts = curves.cohorts()
    worse = cohorts[cohorts["is_worse"]]["vintage_label"].tolist()
    small = cohorts[cohorts["is_small"]]["vintage_label"].tolist()
    if worse:
        st.caption(common.tr("vintage.worse_cohorts", cohorts="、".join(worse) if common.lang() == "zh" else ", ".join(worse)))
    if small:
        st.caption(common.tr("vintage.small_cohorts", count=len(small), min_loans=min_loans))
    _caption_method(common.tr(f"vintage.method_{basis}", threshold=threshold))


def _curves_figure(curves, rate_name: str) -> go.Figure:
    figure = go.Figure()
    cohorts = curves.cohorts().set_index("vintage_label")
    for label, group in curves.table.groupby("vintage_label", sort=False):
        is_small = bool(cohorts.loc[label, "is_small"])
        is_worse = bool(cohorts.loc[label, "is_worse"])
        figure.add_trace(
            go.Scatter(
                x=group["mob"], y=group["rate"], mode="lines", name=label,
                opacity=0.25 if is_small else 1.0,
                line={"width": 3, "color": WORSE_COLOR} if is_worse else {"width": 1.2},
                hovertemplate=f"{label}<br>MOB %{{x}}<br>%{{y:.2%}}<extra></extra>",
            )
        )
    average = curves.average()
    if not average.empty:
        figure.add_trace(
            go.Scatter(
                x=average["mob"], y=average["rate"], mode="lines",
                name=common.tr("vintage.average"),
                line={"width": 3, "dash": "dot", "color": AVERAGE_COLOR},
                hovertemplate="MOB %{x}<br>%{y:.2%}<extra></extra>",
            )
        )
    figure.update_layout(
        xaxis_title=common.tr("vintage.mob_axis"), yaxis_title=rate_name,
        yaxis_tickformat=".1%", height=480, margin={"t": 20},
        legend={"orientation": "h", "yanchor": "top", "y": -0.2},
    )
    return figure


def _heatmap_figure(curves) -> go.Figure:
    heatmap = curves.heatmap()
    values = heatmap.to_numpy(dtype=float)
    cohorts = curves.cohorts().set_index("vintage_label")

    # Cell texts: the rate, with ▲ where the cohort is worse than the recent ones.
    flagged = curves.table.assign(worse_flag=curves.table["is_worse"].astype(float))
    worse = flagged.pivot(index="vintage_label", columns="mob", values="worse_flag")
    worse = worse.reindex(index=heatmap.index, columns=heatmap.columns).fillna(0.0).to_numpy() > 0
    text = _percent_text(values)
    text = [[cell + (" ▲" if flag and cell else "") for cell, flag in zip(row, row_flags)]
            for row, row_flags in zip(text, worse)]

    figure = go.Figure(
        go.Heatmap(
            z=values, x=[str(mob) for mob in heatmap.columns], y=list(heatmap.index),
            text=text, texttemplate="%{text}", colorscale="Reds", hoverongaps=False,
            colorbar={"tickformat": ".0%"},
            hovertemplate="%{y} MOB %{x}<br>%{z:.2%}<extra></extra>",
        )
    )
    # Fade small cohorts with a half-transparent white layer over their rows.
    small_rows = cohorts.reindex(heatmap.index)["is_small"].to_numpy(dtype=bool)
    if small_rows.any():
        veil = np.where(small_rows[:, None] & ~np.isnan(values), 1.0, np.nan)
        figure.add_trace(
            go.Heatmap(
                z=veil, x=[str(mob) for mob in heatmap.columns], y=list(heatmap.index),
                colorscale=[[0, "rgba(255,255,255,0.6)"], [1, "rgba(255,255,255,0.6)"]],
                showscale=False, hoverinfo="skip",
            )
        )
    figure.update_layout(
        xaxis_title=common.tr("vintage.mob_axis"), yaxis_autorange="reversed",
        yaxis_type="category", xaxis_type="category", height=480, margin={"t": 20},
    )
    return figure


def _bucket_settings() -> Buckets:
    with st.expander(common.tr("vintage.bucket_settings")):
        text = st.text_input(
            common.tr("vintage.bucket_bounds"),
            value=",".join(str(bound) for bound in DEFAULT_BUCKETS.upper_bounds),
            help=common.tr("vintage.bucket_bounds_help"), key="vintage_bucket_bounds",
        )
        try:
            buckets = parse_buckets(text)
        except ValueError as error:
            st.warning(common.tr("vintage.bucket_bounds_invalid", error=str(error)))
            buckets = DEFAULT_BUCKETS
        st.caption(buckets.describe(common.lang()))
    return buckets


def _window_controls(months: list[dt.date], key: str) -> tuple[dt.date, dt.date]:
    """Choose one month t or a window of months t; returns (first, last) month-ends."""
    mode = st.segmented_control(
        common.tr("vintage.window_mode"), ["month", "window"], default="month",
        format_func=_option_formatter("vintage.window"), key=f"{key}_mode",
    ) or "month"
    latest_first = list(reversed(months))
    if mode == "month":
        month = st.selectbox(
            common.tr("vintage.month_t"), latest_first, format_func=_month_formatter(), key=f"{key}_month"
        )
        return month, month
    left, right = st.columns(2)
    default_start = latest_first[min(FORECAST_WINDOW_MONTHS - 1, len(latest_first) - 1)]
    first = left.selectbox(
        common.tr("vintage.window_from"), months, index=months.index(default_start),
        format_func=_month_formatter(), key=f"{key}_from",
    )
    last = right.selectbox(
        common.tr("vintage.window_to"), latest_first, format_func=_month_formatter(), key=f"{key}_to"
    )
    if first > last:
        st.warning(common.tr("vintage.window_reversed"))
        first, last = last, first
    return first, last


def _matrix_section(con, version: int, filters: Filters, buckets: Buckets, months: list[dt.date]) -> None:
    month_from, month_to = _window_controls(months, "matrix")
    weight = st.segmented_control(
        common.tr("vintage.by"), ["count", "balance"], default="balance",
        format_func=_option_formatter("vintage.by"), key="matrix_by",
    ) or "balance"
    matrix = _migration_matrix(con, version, filters, buckets, month_from, month_to)
    if matrix.is_empty:
        st.info(common.tr("vintage.no_transitions"))
        return
    shares = matrix.count_shares if weight == "count" else matrix.balance_shares
    period = (_month_label(month_to) if month_from == month_to
              else f"{_month_label(month_from)} – {_month_label(month_to)}")
    st.subheader(common.tr("vintage.matrix_title", period=period))
    values = shares.to_numpy(dtype=float)
    figure = go.Figure(
        go.Heatmap(
            z=values, x=[_state_label(label) for label in shares.columns],
            y=list(shares.index), text=_percent_text(values), texttemplate="%{text}",
            colorscale="Blues", zmin=0, zmax=1, hoverongaps=False,
            colorbar={"tickformat": ".0%"},
            hovertemplate="%{y} → %{x}<br>%{z:.2%}<extra></extra>",
        )
    )
    figure.update_layout(
        xaxis_title=common.tr("vintage.matrix_to"), yaxis_title=common.tr("vintage.matrix_from"),
        yaxis_autorange="reversed", xaxis_side="top", yaxis_type="category",
        xaxis_type="category", height=460, margin={"t": 60},
    )
    st.plotly_chart(figure, width="stretch", key="matrix_chart")
    common.download_buttons(matrix.table, "migration_matrix", key="dl_matrix")
    if matrix.missing_loans:
        st.caption(common.tr(
            "vintage.missing_loans", loans=fmt.format_count(matrix.missing_loans),
            balance=fmt.format_amount(matrix.missing_balance, common.lang()),
        ))

    st.subheader(common.tr("vintage.cure_title"))
    cures = matrix.cure_rates()
    cure_column = "count_cure_rate" if weight == "count" else "balance_cure_rate"
    figure = go.Figure(
        go.Bar(
            x=cures["bucket"], y=cures[cure_column],
            text=["" if pd.isna(rate) else f"{rate * 100:.1f}%" for rate in cures[cure_column]],
            hovertemplate="%{x}<br>%{y:.2%}<extra></extra>",
        )
    )
    figure.update_layout(yaxis_tickformat=".0%", yaxis_title=common.tr("vintage.cure_rate"), height=320, margin={"t": 20})
    st.plotly_chart(figure, width="stretch", key="cure_chart")
    common.download_buttons(cures, "cure_rates", key="dl_cures")
    _caption_method(common.tr("vintage.method_matrix"))


def _flow_section(con, version: int, filters: Filters, buckets: Buckets) -> None:
    flows = _flow_rates(con, version, filters, buckets)
    if flows.table.empty:
        st.info(common.tr("vintage.no_transitions"))
        return
    st.subheader(common.tr("vintage.flow_title"))
    figure = go.Figure()
    for source, target in flows.chain():
        link = flows.table[(flows.table["from_bucket"] == source) & (flows.table["to_bucket"] == target)]
        name = f"{source}→{_state_label(target)}"
        figure.add_trace(
            go.Scatter(
                x=chart_axes.month_start(link["month"]), y=link["flow_rate"], mode="lines+markers", name=name,
                hovertemplate=f"{name}<br>%{{x|%Y-%m}}<br>%{{y:.2%}}<extra></extra>",
            )
        )
    figure.update_layout(yaxis_tickformat=".0%", yaxis_title=common.tr("vintage.flow_rate"), height=420, margin={"t": 20})
    chart_axes.apply_month_axis(figure, flows.table["month"].unique())
    st.plotly_chart(figure, width="stretch", key="flow_chart")
    common.download_buttons(flows.table, "flow_rates", key="dl_flows")

    st.subheader(common.tr("vintage.loss_title"))
    figure = go.Figure(
        go.Scatter(
            x=chart_axes.month_start(flows.implied_loss["month"]), y=flows.implied_loss["implied_loss_rate"],
            mode="lines+markers", name=common.tr("vintage.implied_loss"),
            hovertemplate="%{x|%Y-%m}<br>%{y:.3%}<extra></extra>",
        )
    )
    figure.update_layout(yaxis_tickformat=".2%", yaxis_title=common.tr("vintage.implied_loss"), height=320, margin={"t": 20})
    chart_axes.apply_month_axis(figure, flows.implied_loss["month"].unique())
    st.plotly_chart(figure, width="stretch", key="loss_chart")
    common.download_buttons(flows.implied_loss, "implied_loss", key="dl_loss")
    _caption_method(common.tr("vintage.method_flow"))


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _forecast_figure(forecast, actual: pd.DataFrame, by: str, threshold: int) -> go.Figure:
    """Draw each young cohort's actual curve (solid) and its projection (dashed, same color)."""
    figure = go.Figure()
    projected_word = common.tr("vintage.projected")
    for index, (label, group) in enumerate(forecast.table.groupby("vintage_label", sort=True)):
        color = PALETTE[index % len(PALETTE)]
        observed = actual[actual["vintage_label"] == label]
        figure.add_trace(
            go.Scatter(
                x=observed["mob"], y=observed["rate"], mode="lines", name=label, legendgroup=label,
                line={"color": color}, hovertemplate=f"{label}<br>MOB %{{x}}<br>%{{y:.2%}}<extra></extra>",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=group["mob"], y=group["rate"], mode="lines", name=f"{label} {projected_word}",
                legendgroup=label, showlegend=False, line={"color": color, "dash": "dash"},
                hovertemplate=f"{label} {projected_word}<br>MOB %{{x}}<br>%{{y:.2%}}<extra></extra>",
            )
        )

    figure.update_layout(
        xaxis_title=common.tr("vintage.mob_axis"), yaxis_tickformat=".1%",
        yaxis_title=common.tr("vintage.rate_ever_" + by, threshold=threshold), height=480, margin={"t": 20},
    )
    return figure


def _forecast_section(con, version: int, filters: Filters, buckets: Buckets, months: list[dt.date]) -> None:
    boundaries = list(buckets.upper_bounds)
    columns = st.columns(4)
    threshold = columns[0].selectbox(
        common.tr("vintage.threshold"), boundaries,
        index=boundaries.index(90) if 90 in boundaries else len(boundaries) - 1,
        format_func=lambda days: f"{days}+", key="forecast_threshold",
    )
    target_mob = int(columns[1].number_input(
        common.tr("vintage.target_mob"), min_value=1, max_value=120, value=12, key="forecast_target",
    ))
    by = columns[2].segmented_control(
        common.tr("vintage.by"), ["count", "balance"], default="count",
        format_func=_option_formatter("vintage.by"), key="forecast_by",
    ) or "count"
    window = int(columns[3].number_input(
        common.tr("vintage.forecast_window"), min_value=1, max_value=max(1, len(months)),
        value=min(FORECAST_WINDOW_MONTHS, max(1, len(months))), key="forecast_window",
    ))

    month_to = months[-1]
    month_from = _shift_month_end(month_to, -(window - 1))
    forecast = _forecast(con, version, filters, buckets, threshold, target_mob, by, "month", month_from, month_to)
    if forecast.is_empty:
        st.info(common.tr("vintage.no_forecast", target=target_mob))
        return
    # The chart data: each young cohort's actual curve, then its projection.
    curves = _vintage_curves(con, version, filters, threshold, by, "ever", "month", 0)
    young = forecast.table["vintage_label"].unique()
    actual = curves.table[curves.table["vintage_label"].isin(young)]
    actual = actual[["vintage_label", "mob", "rate"]].assign(is_projected=False)
    projected = forecast.table[forecast.table["is_projected"]][["vintage_label", "mob", "rate", "is_projected"]]
    chart_data = pd.concat([actual, projected], ignore_index=True).sort_values(["vintage_label", "mob"])

    st.subheader(common.tr("vintage.forecast_title", threshold=threshold, target=target_mob))
    st.plotly_chart(_forecast_figure(forecast, actual, by, threshold), width="stretch", key="forecast_chart")
    common.download_buttons(chart_data, "vintage_forecast", key="dl_forecast")

    with st.expander(common.tr("vintage.forecast_chain")):
        chain = forecast.transition.copy()
        # A column_config format instead of DataFrame.style: the Styler import pulls in
        # matplotlib, which cost about 0.7 s on the page's first view.
        percent = {str(column): st.column_config.NumberColumn(format="percent") for column in chain.columns}
        st.dataframe(chain, column_config=percent)
        common.download_buttons(chain.reset_index(names="from_state"), "forecast_chain", key="dl_chain")
    if forecast.empty_source_buckets:
        st.caption(common.tr("vintage.forecast_empty_rows", buckets=", ".join(forecast.empty_source_buckets)))
    st.markdown(common.tr(
        "vintage.forecast_method", threshold=threshold, target=target_mob,
        start=_month_label(month_from), end=_month_label(month_to),
    ))


# Page ------------------------------------------------------------------------------------

def main() -> None:
    st.title(common.tr("page.vintage"))
    con = common.connection()
    version = common.data_version()
    filters = common.filters()
    as_of = _as_of(con, version, filters)
    if as_of is None:
        st.info(common.tr("vintage.no_data"))
        return
    first, last = _month_range(con, version, filters)
    if first is None:
        st.info(common.tr("vintage.no_data"))
        return
    st.caption(common.tr("vintage.as_of", month=_month_label(as_of)))
    buckets = _bucket_settings()

    tabs = st.tabs([
        common.tr("vintage.tab_vintage"), common.tr("vintage.tab_matrix"),
        common.tr("vintage.tab_flow"), common.tr("vintage.tab_forecast"),
    ])
    with tabs[0]:
        _vintage_section(con, version, filters)
    # Later months t need a month-end t-1 in the data.
    months = _month_ends_between(_shift_month_end(first, 1), last) if first < last else []
    with tabs[1]:
        if months:
            _matrix_section(con, version, filters, buckets, months)
        else:
            st.info(common.tr("vintage.no_transitions"))
    with tabs[2]:
        if months:
            _flow_section(con, version, filters, buckets)
        else:
            st.info(common.tr("vintage.no_transitions"))
    with tabs[3]:
        if months:
            _forecast_section(con, version, filters, buckets, months)
        else:
            st.info(common.tr("vintage.no_transitions"))


main()
