"""Page: regional overdue rates (区域分布).

Reads the shared filters and loads active-loan totals by region once per data version
(``analysis.regions``). Then it draws the province map (tile grid or GeoJSON), the ranking
with Wilson intervals, the table, the unmatched region values, a drill-down to cities and
counties, and the monthly trend.
"""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import streamlit as st

from analysis import regions as region_analysis
from analysis.filters import Filters
from dashboard import common
from dashboard import region_charts

MAP_TILES = "tiles"
MAP_GEOJSON = "geojson"


# Cached analysis -------------------------------------------------------------------------

@st.cache_data(show_spinner=False)
def _region_months(_con, version: int, filters: Filters, npl_preset: str,
                   par30_restructured: bool) -> region_analysis.RegionMonths:
    return region_analysis.load_region_months(
        _con, filters, npl_preset=npl_preset, par30_restructured=par30_restructured
    )


@st.cache_data(show_spinner=False)
def _rates(_con, version: int, filters: Filters, npl_preset: str, par30_restructured: bool,
           level: str, metric: str, by: str, min_size: int, province: str | None,
           city: str | None) -> region_analysis.RegionRates:
    data = _region_months(_con, version, filters, npl_preset, par30_restructured)
    return region_analysis.region_rates(
        data, level=level, metric=metric, by=by, min_size=min_size, province=province, city=city
    )


@st.cache_data(show_spinner=False)
def _trend(_con, version: int, filters: Filters, npl_preset: str, par30_restructured: bool,
           regions: tuple[str, ...], level: str, metric: str, by: str,
           province: str | None) -> pd.DataFrame:
    data = _region_months(_con, version, filters, npl_preset, par30_restructured)
    return region_analysis.region_trend(
        data, list(regions), level=level, metric=metric, by=by, province=province
    )


@st.cache_data(show_spinner=False)
def _geojson(path: str, modified: float) -> tuple[dict, pd.DataFrame]:
    geojson = region_analysis.load_geojson(path)
    return geojson, region_analysis.join_geojson(geojson)


# Small helpers -----------------------------------------------------------------------------

def _labels(prefix: str, values) -> callable:
    """Return a widget format_func with the texts of this run's language bound.

    Streamlit may call a format_func outside the script run, where the session's language
    cannot be read, so the texts are looked up now.
    """
    texts = {value: common.tr(f"{prefix}{value}") for value in values}
    return texts.__getitem__


def _chart_labels(rate_name: str) -> dict[str, str]:
    return {
        "rate": rate_name,
        "loans": common.tr("regions.hover_loans"),
        "no_data": common.tr("regions.hover_no_data"),
        "below_min": common.tr("regions.hover_below_min"),
    }


def _display_names() -> dict[str, str]:
    """Return the chart labels of province names: English names in the English UI."""
    return region_analysis.province_names_en() if common.lang() == "en" else {}


def _region_label(value) -> str:
    return common.tr("regions.missing_value") if value is None else str(value)


def _display_table(table: pd.DataFrame, with_interval: bool) -> pd.DataFrame:
    """Return the table with translated headers, as shown and downloaded."""
    columns = {
        "region": common.tr("regions.col_region"),
        "region_code": common.tr("regions.col_code"),
        "loans": common.tr("regions.col_loans"),
        "balance": common.tr("regions.col_balance"),
        "bad_loans": common.tr("regions.col_bad_loans"),
        "bad_balance": common.tr("regions.col_bad_balance"),
        "rate": common.tr("regions.col_rate"),
        "ci_lower": common.tr("regions.col_ci_lower"),
        "ci_upper": common.tr("regions.col_ci_upper"),
        "rank": common.tr("regions.col_rank"),
        "below_min_size": common.tr("regions.col_below_min"),
        "matched": common.tr("regions.col_matched"),
    }
    if not with_interval:
        columns.pop("ci_lower")
        columns.pop("ci_upper")
    shown = table[list(columns)].copy()
    shown["region"] = shown["region"].map(_region_label)
    shown["region_code"] = shown["region_code"].fillna("")
    shown["rank"] = shown["rank"].astype("Int64")
    return shown.rename(columns=columns)


def _styled(display: pd.DataFrame):
    """Grey the rows below the minimum size, and format rates and amounts."""
    below = display[common.tr("regions.col_below_min")]
    rate_columns = [column for column in (common.tr("regions.col_rate"),
                                          common.tr("regions.col_ci_lower"),
                                          common.tr("regions.col_ci_upper"))
                    if column in display.columns]
    amount_columns = [common.tr("regions.col_balance"), common.tr("regions.col_bad_balance")]

    def grey(row: pd.Series) -> list[str]:
        style = "color: #9aa1a9" if below.loc[row.name] else ""
        return [style] * len(row)

    formats = {column: "{:.2%}" for column in rate_columns}
    formats.update({column: "{:,.2f}" for column in amount_columns})
    return display.style.apply(grey, axis=1).format(formats, na_rep="—")


def _show_table(table: pd.DataFrame, with_interval: bool, file_stem: str, key: str) -> None:
    display = _display_table(table, with_interval)
    st.dataframe(_styled(display), hide_index=True, key=f"{key}_table")
    common.download_buttons(display, file_stem, key=f"dl_{key}")


def _show_ranking(rates: region_analysis.RegionRates, rate_name: str, key: str) -> None:
    ranked = rates.table.dropna(subset=["rank"])
    excluded = int((rates.table["below_min_size"] & rates.table["region"].notna()).sum())
    if ranked.empty:
        st.info(common.tr("regions.ranking_empty"))
        return
    with_interval = rates.by == "count"
    figure = region_charts.ranking_figure(ranked, _chart_labels(rate_name), with_interval,
                                          _display_names())
    st.plotly_chart(figure, key=f"{key}_ranking_chart")
    shown = min(len(ranked), region_charts.RANKING_MAX_BARS)
    caption_key = "regions.ranking_caption" if with_interval else "regions.ranking_caption_balance"
    st.caption(common.tr(caption_key, shown=shown, ranked=len(ranked), excluded=excluded))
    chart_data = ranked.sort_values("rank").head(region_charts.RANKING_MAX_BARS)
    common.download_buttons(
        chart_data[region_analysis.REPORT_COLUMNS + ["rank"]], f"regions_ranking_{key}",
        key=f"dl_{key}_ranking",
    )


# Sections --------------------------------------------------------------------------------

def _options() -> dict:
    with st.expander(common.tr("regions.options"), expanded=True):
        columns = st.columns([2, 2, 1, 2])
        metric = columns[0].segmented_control(
            common.tr("regions.metric"), list(region_analysis.METRICS), default="m1plus",
            format_func=_labels("regions.metric_", region_analysis.METRICS), key="regions_metric",
        ) or "m1plus"
        by = columns[1].segmented_control(
            common.tr("regions.by"), list(region_analysis.BASES), default="count",
            format_func=_labels("regions.by_", region_analysis.BASES), key="regions_by",
        ) or "count"
        min_size = int(columns[2].number_input(
            common.tr("regions.min_size"), min_value=0, value=region_analysis.DEFAULT_MIN_SIZE,
            step=10, help=common.tr("regions.min_size_help"), key="regions_min_size",
        ))
        presets = list(region_analysis.CLASSIFICATION_PRESETS)
        npl_preset = columns[3].selectbox(
            common.tr("regions.npl_preset"), presets,
            index=presets.index(region_analysis.DEFAULT_PRESET),
            format_func=_labels("regions.preset_", presets), key="regions_npl_preset",
        )
        par30_restructured = st.checkbox(
            common.tr("regions.par30_restructured"), value=False, key="regions_par30_restructured"
        )
    return {
        "metric": metric,
        "by": by,
        "min_size": min_size,
        "npl_preset": npl_preset,
        "par30_restructured": par30_restructured,
    }


def _map_section(rates: region_analysis.RegionRates, rate_name: str) -> None:
    st.subheader(common.tr("regions.map_header"))
    if not rates.any_matched:
        st.info(common.tr("regions.map_not_drawn"))
        return
    columns = st.columns([1, 2])
    kind = columns[0].radio(
        common.tr("regions.map_kind"), [MAP_TILES, MAP_GEOJSON], horizontal=True,
        format_func=_labels("regions.map_", (MAP_TILES, MAP_GEOJSON)), key="regions_map_kind",
    )
    labels = _chart_labels(rate_name)
    if kind == MAP_GEOJSON:
        configured = columns[1].text_input(
            common.tr("regions.geojson_path"),
            value=os.environ.get(region_analysis.GEOJSON_ENV, ""),
            help=common.tr("regions.geojson_path_help"), key="regions_geojson_path",
        )
        path, shipped = region_analysis.geojson_path(configured)
        try:
            geojson, joined = _geojson(str(path), path.stat().st_mtime if path.exists() else 0.0)
        except ValueError as error:
            st.warning(common.tr("regions.geojson_error", error=error))
        else:
            if shipped:
                st.caption(common.tr("regions.map_in_use_shipped", path=path.name))
                st.warning(common.tr("regions.map_not_approved"))
            else:
                st.caption(common.tr("regions.map_in_use_custom", path=str(path)))
            unjoined = joined[joined["province"].isna()]
            if len(unjoined):
                st.warning(common.tr(
                    "regions.geojson_unjoined", count=len(unjoined),
                    features=", ".join(str(label) for label in unjoined["label"].head(10)),
                ))
            matched = rates.table[rates.table["matched"]]
            figure = region_charts.geojson_map_figure(geojson, joined, matched, labels)
            st.plotly_chart(figure, key="regions_geojson_chart")
            st.caption(common.tr("regions.map_legend_grey", min_size=rates.min_size))
            map_data = joined.merge(matched[region_analysis.REPORT_COLUMNS],
                                    left_on="province", right_on="region", how="left")
            common.download_buttons(map_data, "regions_map_geojson", key="dl_regions_geojson")
            return

    st.caption(common.tr("regions.map_in_use_tiles"))
    tiles = region_analysis.tile_map_frame(rates)
    st.plotly_chart(region_charts.tile_map_figure(tiles, labels, common.lang()),
                    key="regions_tile_chart")
    st.caption(common.tr("regions.map_legend_grey", min_size=rates.min_size))
    common.download_buttons(tiles, "regions_map_tiles", key="dl_regions_tiles")


def _unmatched_section(rates: region_analysis.RegionRates) -> None:
    st.subheader(common.tr("regions.unmatched_header"))
    if rates.unmatched.empty:
        st.caption(common.tr("regions.unmatched_none"))
        return
    st.warning(common.tr(
        "regions.unmatched_summary", values=len(rates.unmatched),
        loans=f"{rates.unmatched_loans:,}", missing=f"{rates.missing_loans:,}",
    ))
    display = rates.unmatched.assign(value=rates.unmatched["value"].map(_region_label)).rename(
        columns={
            "value": common.tr("regions.col_value"),
            "loans": common.tr("regions.col_loans"),
            "balance": common.tr("regions.col_balance"),
        }
    )
    st.dataframe(display.style.format({common.tr("regions.col_balance"): "{:,.2f}"}),
                 hide_index=True, key="regions_unmatched_table")
    common.download_buttons(display, "regions_unmatched", key="dl_regions_unmatched")


def _drill_section(con, version: int, filters: Filters, options: dict,
                   rates: region_analysis.RegionRates, rate_name: str) -> None:
    st.subheader(common.tr("regions.drill_header"))
    provinces = rates.table.loc[rates.table["matched"], "region"].tolist()
    if not provinces:
        st.info(common.tr("regions.drill_unavailable"))
        return
    none = common.tr("regions.drill_none")
    province = st.selectbox(common.tr("regions.drill_province"), [none] + provinces,
                            key="regions_drill_province")
    if province == none:
        return
    with_interval = options["by"] == "count"
    cities = _rates(con, version, filters, options["npl_preset"], options["par30_restructured"],
                    "city", options["metric"], options["by"], options["min_size"], province, None)
    st.markdown(f"**{common.tr('regions.drill_cities', province=province)}**")
    _show_ranking(cities, rate_name, key="regions_cities")
    _show_table(cities.table, with_interval, "regions_cities", key="regions_cities")

    city_names = cities.table.loc[cities.table["matched"], "region"].tolist()
    if not city_names:
        return
    city = st.selectbox(common.tr("regions.drill_city"), [none] + city_names,
                        key="regions_drill_city")
    if city == none:
        return
    counties = _rates(con, version, filters, options["npl_preset"], options["par30_restructured"],
                      "county", options["metric"], options["by"], options["min_size"], province, city)
    st.markdown(f"**{common.tr('regions.drill_counties', city=city)}**")
    if not counties.any_matched:
        st.caption(common.tr("regions.drill_no_counties"))
        return
    _show_ranking(counties, rate_name, key="regions_counties")
    _show_table(counties.table, with_interval, "regions_counties", key="regions_counties")


def _trend_section(con, version: int, filters: Filters, options: dict,
                   rates: region_analysis.RegionRates, rate_name: str) -> None:
    st.subheader(common.tr("regions.trend_header"))
    choices = [region for region in rates.table["region"].tolist() if region is not None]
    names = _display_names()
    picked = st.multiselect(
        common.tr("regions.trend_regions"), choices,
        default=region_analysis.default_trend_regions(rates), key="regions_trend_regions",
        format_func=lambda region, names=names: names.get(region, str(region)),
        placeholder=common.tr("common.choose_options"),
    )
    if not picked:
        st.info(common.tr("regions.trend_empty"))
        return
    trend = _trend(con, version, filters, options["npl_preset"], options["par30_restructured"],
                   tuple(picked), "province", options["metric"], options["by"], None)
    st.plotly_chart(region_charts.trend_figure(trend, _chart_labels(rate_name), _display_names()),
                    key="regions_trend_chart")
    common.download_buttons(trend, "regions_trend", key="dl_regions_trend")


def _method_note(rates: region_analysis.RegionRates | None, options: dict,
                 as_of: dt.date | None) -> None:
    text = common.tr(
        "regions.method",
        as_of=as_of.isoformat() if as_of else "—",
        npl_dpd=rates.npl_dpd if rates else region_analysis.npl_floor(options["npl_preset"]),
        preset=common.tr(f"regions.preset_{options['npl_preset']}"),
        min_size=options["min_size"],
    )
    separator = "：" if common.lang() == "zh" else ": "
    st.caption(f"{common.tr('common.method_note')}{separator}{text}")


# Page ------------------------------------------------------------------------------------

def render() -> None:
    st.title(common.tr("regions.title"))
    con = common.connection()
    version = common.data_version()
    filters = common.filters()
    options = _options()
    rate_name = common.tr(f"regions.metric_{options['metric']}")

    rates = _rates(con, version, filters, options["npl_preset"], options["par30_restructured"],
                   "province", options["metric"], options["by"], options["min_size"], None, None)
    if rates.as_of is None or rates.table.empty:
        st.info(common.tr("regions.no_data"))
        _method_note(None, options, rates.as_of)
        return

    if options["metric"] == "npl":
        st.caption(common.tr("regions.npl_floor_note", npl_dpd=rates.npl_dpd))
    _map_section(rates, rate_name)

    st.subheader(common.tr("regions.ranking_header"))
    _show_ranking(rates, rate_name, key="regions_provinces")

    st.subheader(common.tr("regions.table_header"))
    _show_table(rates.table, options["by"] == "count", "regions_provinces", key="regions_provinces")

    _unmatched_section(rates)
    _drill_section(con, version, filters, options, rates, rate_name)
    _trend_section(con, version, filters, options, rates, rate_name)
    _method_note(rates, options, rates.as_of)


render()
