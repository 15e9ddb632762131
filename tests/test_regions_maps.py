"""Region maps: the tile grid, the GeoJSON join and the figures drawn from them."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import regions
from dashboard import region_charts
from ingest import regions as reference

LABELS = {"rate": "rate", "loans": "loans", "no_data": "no data", "below_min": "below"}


def _rates_for(provinces: dict[str, tuple[int, int]], min_size: int = 30) -> regions.RegionRates:
    """RegionRates built from {province: (loans, bad_loans)} through region_rates itself."""
    rows = [
        {
            "month": pd.Timestamp("2025-06-30").date(),
            "province_text": name,
            "city_text": None,
            "county_text": None,
            "region_code": None,
            "loans": loans,
            "balance": loans * 1000.0,
            "m1plus_loans": bad,
            "m1plus_balance": bad * 1000.0,
            "par30_loans": 0,
            "par30_balance": 0.0,
            "npl_loans": 0,
            "npl_balance": 0.0,
        }
        for name, (loans, bad) in provinces.items()
    ]
    data = regions.RegionMonths(pd.DataFrame(rows), pd.Timestamp("2025-06-30").date(),
                                "bank_2023", 90, False)
    return regions.region_rates(data, min_size=min_size)


def test_tile_grid_has_all_34_units_on_distinct_tiles():
    provinces = reference.reference_table("province")
    assert set(regions.TILE_GRID) == set(provinces["code"])
    assert len(set(regions.TILE_GRID.values())) == 34


def test_tile_map_figure_draws_all_34_names():
    rates = _rates_for({"广东": (100, 10), "浙江省": (50, 2), "西藏": (5, 1)})
    tiles = regions.tile_map_frame(rates)
    assert len(tiles) == 34

    figure = region_charts.tile_map_figure(tiles, LABELS, "zh")
    texts = [cell for trace in figure.data for row in trace.text for cell in row if cell]
    for short_name in reference.reference_table("province")["short_name"]:
        assert any(text.startswith(short_name) for text in texts), short_name


def test_tile_map_colours_only_ranked_units():
    rates = _rates_for({"广东": (100, 10), "西藏": (5, 1)})
    tiles = regions.tile_map_frame(rates).set_index("code")
    assert tiles.loc["440000", "has_data"]
    assert tiles.loc["440000", "rate"] == pytest.approx(0.1)
    assert tiles.loc["540000", "below_min_size"]
    assert not tiles.loc["110000", "has_data"]

    figure = region_charts.tile_map_figure(tiles.reset_index(), LABELS, "en")
    rated = next(trace for trace in figure.data if trace.name == "rated")
    grey = next(trace for trace in figure.data if trace.name == "grey")
    guangdong = regions.TILE_GRID["440000"]
    tibet = regions.TILE_GRID["540000"]
    assert rated.z[guangdong[0]][guangdong[1]] == pytest.approx(0.1)
    assert pd.isna(rated.z[tibet[0]][tibet[1]])
    assert grey.z[tibet[0]][tibet[1]] == 1.0


def test_shipped_geojson_joins_every_feature():
    geojson = regions.load_geojson(regions.SHIPPED_GEOJSON)
    joined = regions.join_geojson(geojson)
    assert len(joined) == len(geojson["features"]) == 35
    assert joined["province"].notna().all(), joined[joined["province"].isna()]
    assert set(joined["province"]) == set(reference.reference_table("province")["name"])
    # Joined on adcode, never on the HASC codes; the Paracels (adcode null) join Hainan by name.
    assert set(joined["key"]) == {"adcode", "name_zh"}
    paracels = joined[joined["key"] == "name_zh"]
    assert paracels["province"].tolist() == ["海南省"]


def test_custom_geojson_joins_on_names(tmp_path):
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    features = [
        {"type": "Feature", "properties": {"name": "广东省"}, "geometry": square},
        {"type": "Feature", "properties": {"NAME": "内蒙古"}, "geometry": square},
        {"type": "Feature", "properties": {"code": 330000}, "geometry": square},
        {"type": "Feature", "properties": {"name": "Atlantis"}, "geometry": square},
    ]
    path = tmp_path / "custom.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")

    joined = regions.join_geojson(regions.load_geojson(path))
    assert joined["province"].tolist() == ["广东省", "内蒙古自治区", "浙江省", None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid UTF-8 JSON"),
        ('{"type": "Feature"}', "must hold a FeatureCollection"),
        ('[1, 2]', "must hold a FeatureCollection"),
    ],
)
def test_load_geojson_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.geojson"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        regions.load_geojson(path)


def test_load_geojson_missing_file(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        regions.load_geojson(tmp_path / "absent.geojson")


def test_geojson_path_order(tmp_path, monkeypatch):
    monkeypatch.delenv(regions.GEOJSON_ENV, raising=False)
    assert regions.geojson_path(None) == (regions.SHIPPED_GEOJSON, True)
    monkeypatch.setenv(regions.GEOJSON_ENV, str(tmp_path / "env.geojson"))
    assert regions.geojson_path("") == (tmp_path / "env.geojson", False)
    assert regions.geojson_path(str(tmp_path / "page.geojson")) == (tmp_path / "page.geojson", False)


def test_geojson_figure_colours_joined_features():
    geojson = regions.load_geojson(regions.SHIPPED_GEOJSON)
    joined = regions.join_geojson(geojson)
    rates = _rates_for({"广东": (100, 10), "浙江省": (50, 2), "西藏": (5, 1)})
    matched = rates.table[rates.table["matched"]]

    figure = region_charts.geojson_map_figure(geojson, joined, matched, LABELS)
    shapes = {trace.name: trace for trace in figure.data if trace.fill == "toself"}
    assert len(shapes) >= 34
    assert shapes["广东省"].fillcolor != region_charts.GREY
    assert shapes["浙江省"].fillcolor != shapes["广东省"].fillcolor
    assert shapes["西藏自治区"].fillcolor == region_charts.GREY  # below the minimum size
    assert shapes["北京市"].fillcolor == region_charts.GREY  # no data


def test_ranking_figure_orders_and_bars():
    rates = _rates_for({"广东": (100, 10), "浙江省": (50, 2), "山东": (80, 20)})
    ranked = rates.table.dropna(subset=["rank"])
    figure = region_charts.ranking_figure(ranked, LABELS, with_interval=True)
    bars = figure.data[0]
    # Plotly draws horizontal bars bottom-up, so the highest rate is last.
    assert list(bars.y) == ["浙江省", "广东省", "山东省"]
    assert bars.error_x.array[-1] == pytest.approx(ranked.iloc[0]["ci_upper"] - ranked.iloc[0]["rate"])

    english = region_charts.ranking_figure(ranked, LABELS, True, regions.province_names_en())
    assert list(english.data[0].y) == ["Zhejiang", "Guangdong", "Shandong"]
