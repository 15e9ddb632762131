"""Plotly figures of the Regions page: tile-grid map, GeoJSON map, ranking and trend.

The functions draw tables computed by ``analysis.regions``; they compute no statistics.
Text arrives already translated through ``labels`` so that this module needs no session.
Both maps are plain cartesian plotly traces, so the browser fetches no base map from a
CDN (plotly geo subplots download topojson), which matters on intranets.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from dashboard import chart_axes

COLORSCALE = "OrRd"
GREY = "#d5d9de"
GREY_TEXT = "#6b7480"
TILE_GAP = 3
RANKING_MAX_BARS = 40
# Map coordinates are rounded to this many degrees before drawing (about 2 km), which
# shrinks the shipped file's figure about tenfold without visible change at page size.
MAP_PRECISION_DEGREES = 0.02


def _percent(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 100:.2f}%"


def _colour_range(rates: pd.Series) -> tuple[float, float]:
    valid = rates.dropna()
    if valid.empty:
        return 0.0, 1.0
    low, high = float(valid.min()), float(valid.max())
    if high - low < 1e-9:
        high = low + 0.01
    return low, high


def tile_map_figure(tiles: pd.DataFrame, labels: dict[str, str], lang: str) -> go.Figure:
    """Draw one equal tile per province-level unit, coloured by rate.

    ``tiles`` is analysis.regions.tile_map_frame output. Units without data or below the
    minimum size are grey. ``labels`` needs keys: rate, loans, no_data, below_min.
    """
    n_rows = int(tiles["row"].max()) + 1
    n_cols = int(tiles["col"].max()) + 1
    shape = (n_rows, n_cols)
    rated = np.full(shape, np.nan)
    grey = np.full(shape, np.nan)
    text = np.full(shape, "", dtype=object)
    hover = np.full(shape, "", dtype=object)

    for tile in tiles.itertuples():
        name = tile.short_name if lang == "zh" else tile.name_en
        position = (tile.row, tile.col)
        if tile.has_data and not tile.below_min_size and not math.isnan(tile.rate):
            rated[position] = tile.rate
            text[position] = f"{name}<br>{_percent(tile.rate)}"
            hover[position] = (
                f"{tile.name}<br>{labels['rate']}: {_percent(tile.rate)}"
                f"<br>{labels['loans']}: {tile.loans:,}"
            )
        else:
            grey[position] = 1.0
            text[position] = name
            status = labels["below_min"] if tile.has_data else labels["no_data"]
            hover[position] = f"{tile.name}<br>{status}<br>{labels['loans']}: {tile.loans:,}"

    low, high = _colour_range(tiles.loc[~tiles["below_min_size"] & tiles["has_data"], "rate"])
    figure = go.Figure()
    figure.add_trace(
        go.Heatmap(
            z=grey,
            colorscale=[[0, GREY], [1, GREY]],
            showscale=False,
            xgap=TILE_GAP,
            ygap=TILE_GAP,
            text=text,
            texttemplate="%{text}",
            textfont={"color": GREY_TEXT, "size": 12},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            name="grey",
        )
    )
    figure.add_trace(
        go.Heatmap(
            z=rated,
            colorscale=COLORSCALE,
            zmin=low,
            zmax=high,
            xgap=TILE_GAP,
            ygap=TILE_GAP,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 12},
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            colorbar={"title": {"text": labels["rate"]}, "tickformat": ".1%"},
            name="rated",
        )
    )
    figure.update_xaxes(visible=False, range=[-0.5, n_cols - 0.5])
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", scaleratio=1)
    figure.update_layout(height=560, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         plot_bgcolor="white")
    return figure


def _rings(geometry: dict) -> list[list]:
    """Return the exterior rings of a Polygon or MultiPolygon geometry."""
    if not geometry:
        return []
    if geometry.get("type") == "Polygon":
        return [geometry["coordinates"][0]]
    if geometry.get("type") == "MultiPolygon":
        return [polygon[0] for polygon in geometry["coordinates"]]
    return []


def _ring_path(rings: list[list]) -> tuple[list, list]:
    """Return x, y lists of the rings, rounded and separated by None (one filled shape each).

    NOTE: holes are not drawn; province-level units have no holes that matter at page size.
    """
    xs: list = []
    ys: list = []
    for ring in rings:
        previous = None
        points = []
        for lon, lat, *_ in ring:
            point = (round(lon / MAP_PRECISION_DEGREES) * MAP_PRECISION_DEGREES,
                     round(lat / MAP_PRECISION_DEGREES) * MAP_PRECISION_DEGREES)
            if point != previous:
                points.append(point)
                previous = point
        if len(points) < 3:
            continue
        xs.extend(point[0] for point in points)
        ys.extend(point[1] for point in points)
        xs.append(None)
        ys.append(None)
    return xs, ys


def geojson_map_figure(
    geojson: dict,
    joined: pd.DataFrame,
    rates: pd.DataFrame,
    labels: dict[str, str],
) -> go.Figure:
    """Draw the GeoJSON features filled by the rate of the province each feature joins.

    ``joined`` is analysis.regions.join_geojson output; ``rates`` is the province table of
    RegionRates (matched rows). Features without a province, without data or below the
    minimum size are grey.
    """
    by_province = rates.set_index("region")
    eligible = rates[~rates["below_min_size"]]
    low, high = _colour_range(eligible["rate"])
    figure = go.Figure()
    all_lat: list[float] = []
    for feature in joined.itertuples():
        rings = _rings(geojson["features"][feature.feature].get("geometry"))
        xs, ys = _ring_path(rings)
        if not xs:
            continue
        all_lat.extend(y for y in ys if y is not None)
        colour = GREY
        hover = feature.label or ""
        if feature.province is not None and feature.province in by_province.index:
            row = by_province.loc[feature.province]
            hover = f"{feature.province}<br>{labels['loans']}: {int(row['loans']):,}"
            if not row["below_min_size"] and not math.isnan(row["rate"]):
                scaled = (row["rate"] - low) / (high - low)
                colour = sample_colorscale(COLORSCALE, [min(max(scaled, 0.0), 1.0)])[0]
                hover += f"<br>{labels['rate']}: {_percent(row['rate'])}"
            else:
                hover += f"<br>{labels['below_min']}"
        elif feature.province is not None:
            hover = f"{feature.province}<br>{labels['no_data']}"
        figure.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                fill="toself",
                fillcolor=colour,
                line={"color": "white", "width": 0.6},
                hoveron="fills",
                text=hover,
                hoverinfo="text",
                showlegend=False,
                name=feature.province or (feature.label or ""),
            )
        )
    # An invisible marker trace carries the colour bar.
    figure.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            marker={
                "colorscale": COLORSCALE,
                "cmin": low,
                "cmax": high,
                "color": [low],
                "showscale": True,
                "colorbar": {"title": {"text": labels["rate"]}, "tickformat": ".1%"},
            },
            hoverinfo="skip",
            showlegend=False,
        )
    )
    mean_lat = float(np.mean(all_lat)) if all_lat else 35.0
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x",
                        scaleratio=1 / math.cos(math.radians(mean_lat)))
    figure.update_layout(height=560, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         plot_bgcolor="white")
    return figure


def ranking_figure(table: pd.DataFrame, labels: dict[str, str], with_interval: bool,
                   display_names: dict[str, str] | None = None) -> go.Figure:
    """Draw a horizontal bar per ranked region, highest rate on top, with Wilson error bars.

    ``table`` contains the ranked rows (rank not NaN) of RegionRates.table, at most
    RANKING_MAX_BARS of them. ``display_names`` maps region names to the labels drawn
    (English province names in the English UI); other regions keep their names.
    """
    display_names = display_names or {}
    shown = table.sort_values("rank").head(RANKING_MAX_BARS).iloc[::-1]
    names = [display_names.get(region, str(region)) for region in shown["region"]]
    error = None
    if with_interval:
        error = {
            "type": "data",
            "symmetric": False,
            "array": (shown["ci_upper"] - shown["rate"]).tolist(),
            "arrayminus": (shown["rate"] - shown["ci_lower"]).tolist(),
            "color": "#555",
            "thickness": 1,
        }
    hover = [
        f"{name}<br>{labels['rate']}: {_percent(row.rate)}"
        + (f" [{_percent(row.ci_lower)}, {_percent(row.ci_upper)}]" if with_interval else "")
        + f"<br>{labels['loans']}: {row.loans:,}"
        for name, row in zip(names, shown.itertuples())
    ]
    figure = go.Figure(
        go.Bar(
            x=shown["rate"],
            y=names,
            orientation="h",
            marker={"color": "#c0392b"},
            error_x=error,
            hovertext=hover,
            hoverinfo="text",
        )
    )
    figure.update_xaxes(tickformat=".1%", title=labels["rate"], rangemode="tozero")
    figure.update_yaxes(type="category")
    figure.update_layout(height=max(260, 24 * len(shown) + 90),
                         margin={"l": 10, "r": 10, "t": 10, "b": 40})
    return figure


def trend_figure(trend: pd.DataFrame, labels: dict[str, str],
                 display_names: dict[str, str] | None = None) -> go.Figure:
    """Draw the rate by month, one line per region (labels as in ranking_figure).

    Months are plotted at their first day so that each point sits on its own month's tick.
    """
    display_names = display_names or {}
    figure = go.Figure()
    for region, rows in trend.groupby("region", sort=False):
        region = display_names.get(region, str(region))
        figure.add_trace(
            go.Scatter(
                x=chart_axes.month_start(rows["month"]),
                y=rows["rate"],
                mode="lines+markers",
                name=str(region),
                customdata=rows["loans"],
                hovertemplate=f"{region}<br>%{{x|%Y-%m}}<br>{labels['rate']}: %{{y:.2%}}"
                f"<br>{labels['loans']}: %{{customdata:,}}<extra></extra>",
            )
        )
    figure.update_yaxes(tickformat=".1%", title=labels["rate"], rangemode="tozero")
    chart_axes.apply_month_axis(figure, trend["month"].unique())
    figure.update_layout(height=380, margin={"l": 10, "r": 10, "t": 10, "b": 40},
                         legend={"orientation": "h"})
    return figure
