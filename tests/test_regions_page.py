"""The Regions page (dashboard/views/regions.py) in Streamlit's AppTest and in Chromium.

Runs the real entry script with LOANLENS_DB pointing at a test database and switches to
the page, in both languages, on the mixed-spelling tape, the OpenIntro sample, the demo
portfolio and an empty database.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from messages import t
from tests.fixtures_regions import build_county_db, build_mixed_db, build_openintro_db

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE = "views/regions.py"


@pytest.fixture(scope="module")
def mixed_path(tmp_path_factory):
    return build_mixed_db(tmp_path_factory.mktemp("page") / "mixed.duckdb")


@pytest.fixture(scope="module")
def openintro_path(tmp_path_factory):
    return build_openintro_db(tmp_path_factory.mktemp("page") / "openintro.duckdb")


def _open(path, monkeypatch, lang: str) -> AppTest:
    monkeypatch.setenv("LOANLENS_DB", str(path))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    monkeypatch.delenv("LOANLENS_GEOJSON", raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page(PAGE).run()
    return at


def _download_labels(at: AppTest) -> list[str]:
    return [element.proto.label for element in at.get("download_button")]


def _plotly_count(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_mixed_tape(mixed_path, monkeypatch, lang):
    at = _open(mixed_path, monkeypatch, lang)
    assert not at.exception, [error.value for error in at.exception]
    assert at.title[0].value == t("regions.title", lang)
    subheaders = [header.value for header in at.subheader]
    for key in ("map_header", "ranking_header", "table_header", "unmatched_header",
                "drill_header", "trend_header"):
        assert t(f"regions.{key}", lang) in subheaders, key
    # Map, ranking and trend charts, each with CSV and Excel downloads, plus the tables.
    assert _plotly_count(at) == 3
    assert len(_download_labels(at)) >= 10
    captions = " ".join(caption.value for caption in at.caption)
    assert t("common.method_note", lang) in captions
    assert t("regions.map_in_use_tiles", lang) in captions
    # 广栋省 (11 active loans) and 6 loans without a province, from tests/fixtures_regions.py.
    summary = t("regions.unmatched_summary", lang, values=2, loans="17", missing="6")
    assert summary in [warning.value for warning in at.warning]
    unmatched = at.dataframe[1].value
    assert "广栋省" in unmatched.iloc[:, 0].tolist()
    assert t("regions.missing_value", lang) in unmatched.iloc[:, 0].tolist()


def test_page_drill_down_and_geojson(mixed_path, monkeypatch):
    at = _open(mixed_path, monkeypatch, "zh")
    province = at.selectbox(key="regions_drill_province")
    province.select("浙江省").run()
    assert not at.exception
    assert any("浙江省 各城市" in markdown.value for markdown in at.markdown)
    city = at.selectbox(key="regions_drill_city")
    assert city.options[1:] == ["杭州市", "宁波市"]
    city.select("杭州市").run()
    assert not at.exception
    assert t("regions.drill_no_counties", "zh") in [caption.value for caption in at.caption]

    at.radio(key="regions_map_kind").set_value("geojson").run()
    assert not at.exception
    warnings = [warning.value for warning in at.warning]
    assert t("regions.map_not_approved", "zh") in warnings
    captions = " ".join(caption.value for caption in at.caption)
    assert "china_provinces_ne.geojson" in captions


def test_page_drill_down_to_counties(tmp_path, monkeypatch):
    path = build_county_db(tmp_path / "counties.duckdb", copies=20)
    at = _open(path, monkeypatch, "zh")
    at.selectbox(key="regions_drill_province").select("江苏省").run()
    at.selectbox(key="regions_drill_city").select("南京市").run()
    assert not at.exception
    assert any("南京市 各区县" in markdown.value for markdown in at.markdown)
    counties = at.dataframe[-1].value
    assert counties.iloc[:, 0].tolist() == ["鼓楼区"]
    assert counties["在贷笔数"].tolist() == [40]
    # Province ranking, city ranking, county ranking and trend.
    assert _plotly_count(at) == 5


def test_page_bad_geojson_path_falls_back(mixed_path, monkeypatch, tmp_path):
    at = _open(mixed_path, monkeypatch, "en")
    at.radio(key="regions_map_kind").set_value("geojson").run()
    at.text_input(key="regions_geojson_path").input(str(tmp_path / "absent.geojson")).run()
    assert not at.exception
    assert any("Cannot read the GeoJSON file" in warning.value for warning in at.warning)


def test_page_metric_switches(mixed_path, monkeypatch):
    at = _open(mixed_path, monkeypatch, "en")
    for metric, by in [("par30", "count"), ("npl", "balance"), ("m1plus", "balance")]:
        at.segmented_control(key="regions_metric").set_value(metric).run()
        at.segmented_control(key="regions_by").set_value(by).run()
        assert not at.exception, (metric, by)
        assert _plotly_count(at) == 3, (metric, by)
        floor_note = t("regions.npl_floor_note", "en", npl_dpd=90)
        assert (floor_note in [caption.value for caption in at.caption]) == (metric == "npl")
        headers = at.dataframe[0].value.columns.tolist()
        assert ("95% CI lower" in headers) == (by == "count"), (metric, by)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_us_states_rank_without_map(openintro_path, monkeypatch, lang):
    at = _open(openintro_path, monkeypatch, lang)
    assert not at.exception
    assert t("regions.map_not_drawn", lang) in [info.value for info in at.info]
    assert _plotly_count(at) == 2  # ranking and trend, no map
    table = at.dataframe[0].value
    assert "CA" in table.iloc[:, 0].tolist()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_empty_database(tmp_path, monkeypatch, lang):
    at = _open(tmp_path / "empty.duckdb", monkeypatch, lang)
    assert not at.exception
    assert t("regions.no_data", lang) in [info.value for info in at.info]
    assert _plotly_count(at) == 0


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_demo_portfolio(demo_db, monkeypatch, lang):
    at = _open(demo_db, monkeypatch, lang)
    assert not at.exception
    assert _plotly_count(at) == 3


@pytest.mark.browser
def test_page_in_chromium(mixed_path):
    from tests.browser import (
        chromium, error_messages, open_page, running_dashboard, wait_for_script,
    )

    with running_dashboard(mixed_path, extra_env={"LOANLENS_AUTO_DEMO": "0"}) as base_url, \
            chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        # Start from the home page and follow the sidebar link, as a user does.
        open_page(page, base_url, "", timeout=90)
        page.get_by_role("link", name="区域分布").click()
        wait_for_script(page, timeout=90)
        assert page.url.endswith("regions-map")
        assert error_messages(page) == []
        page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 3
        main = page.inner_text('[data-testid="stMain"]')
        assert "区域分布" in main
        assert "口径" in main
        # Tables are drawn on a canvas; the unmatched-values warning is text.
        assert "2 个地区值" in main
        # The tile map draws its tile labels as SVG text.
        tile_text = page.locator(".js-plotly-plot").first.inner_text()
        assert "广东" in tile_text
        assert "新疆" in tile_text

        # The first CSV button downloads the tile map's data: one row per unit.
        with page.expect_download(timeout=60_000) as download:
            page.get_by_role("button", name="下载 CSV").first.click()
        tiles = pd.read_csv(download.value.path(), encoding="utf-8-sig", dtype={"code": str})
        assert len(tiles) == 34
        assert tiles.loc[tiles["code"] == "440000", "rate"].notna().all()

        page.get_by_text("English", exact=True).first.click()
        page.wait_for_function(
            "() => document.body.innerText.includes('Regional overdue rates')", timeout=60_000
        )
        wait_for_script(page, timeout=60)
        assert error_messages(page) == []
        assert "Guangdong" in page.locator(".js-plotly-plot").first.inner_text()
        assert page.get_by_role("button", name="Download CSV").count() >= 5


@pytest.mark.browser
def test_trend_ticks_in_chromium(demo_db):
    """The trend's month ticks end at the as-of month of the demo (2026-11), not a month later."""
    from tests.browser import chromium, open_page, running_dashboard

    with running_dashboard(demo_db, extra_env={"LOANLENS_AUTO_DEMO": "0"}) as base_url, \
            chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        open_page(page, base_url, "regions-map", timeout=90)
        page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        trend = page.locator(".js-plotly-plot").last
        trend.scroll_into_view_if_needed()
        ticks = [text.strip() for text in trend.locator(".xtick text").all_text_contents()]
    assert ticks[0] == "2025-11"
    assert ticks[-1] == "2026-11"
    assert len(ticks) == 13
