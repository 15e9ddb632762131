"""The vintage and roll-rate page (dashboard/views/vintage.py) in AppTest and in Chromium.

Runs the real entry script with LOANLENS_DB pointing at a test database and switches to
the page. It is checked in both languages on the simulated tape, the hand tape, the demo
portfolio (when the generator is available) and an empty database.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from messages import t
from tests.fixtures_vintage import hand_tape, simulate_markov_tape

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGE = "views/vintage.py"
URL_PATH = "vintage-roll-rates"
# Charts: vintage curves, heatmap, matrix, cure rates, flow rates, implied loss, forecast.
CHART_COUNT = 7


@pytest.fixture(scope="module")
def simulated_path(tmp_path_factory):
    path, _ = simulate_markov_tape(tmp_path_factory.mktemp("page") / "sim.duckdb", n_loans=2000)
    return path


@pytest.fixture(scope="module")
def hand_path(tmp_path_factory):
    return hand_tape(tmp_path_factory.mktemp("page") / "hand.duckdb")


@pytest.fixture(scope="module")
def vintage_demo_db(request):
    """The shared demo database; skipped while the demo generator is not available."""
    pytest.importorskip("ingest.demo")
    return request.getfixturevalue("demo_db")


def _open(path, monkeypatch, lang: str) -> AppTest:
    monkeypatch.setenv("LOANLENS_DB", str(path))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page(PAGE).run()
    return at


def _errors(at: AppTest) -> list[str]:
    return [element.value for element in at.exception] + [element.value for element in at.error]


def _download_labels(at: AppTest) -> list[str]:
    return [element.proto.label for element in at.get("download_button")]


def _check_full_page(at: AppTest, lang: str) -> None:
    assert not _errors(at), _errors(at)
    assert at.title[0].value == t("page.vintage", lang)
    assert len(at.get("plotly_chart")) == CHART_COUNT
    # Every chart has a CSV and an Excel button, and so does the forecast's chain table.
    labels = _download_labels(at)
    assert labels.count(t("common.download_csv", lang)) == CHART_COUNT + 1
    assert labels.count(t("common.download_xlsx", lang)) == CHART_COUNT + 1
    captions = " ".join(caption.value for caption in at.caption)
    assert t("vintage.method_label", lang) in captions
    markdown = " ".join(block.value for block in at.markdown)
    assert t("vintage.forecast_method", lang, threshold=90, target=12, start="", end="")[:8] in markdown


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_simulated(simulated_path, monkeypatch, lang):
    at = _open(simulated_path, monkeypatch, lang)
    _check_full_page(at, lang)
    subheaders = [header.value for header in at.subheader]
    assert t("vintage.cure_title", lang) in subheaders


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_demo(vintage_demo_db, monkeypatch, lang):
    at = _open(vintage_demo_db, monkeypatch, lang)
    _check_full_page(at, lang)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_hand_tape(hand_path, monkeypatch, lang):
    at = _open(hand_path, monkeypatch, lang)
    assert not _errors(at), _errors(at)
    captions = " ".join(caption.value for caption in at.caption)
    # E had no April row: the matrix note reports it.
    assert t("vintage.missing_loans", lang, loans="1", balance="")[:6] in captions
    # All hand cohorts are small (under 30 loans).
    assert t("vintage.small_cohorts", lang, count=2, min_loans=30) in captions


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_empty_database(db_path, monkeypatch, lang):
    at = _open(db_path, monkeypatch, lang)
    assert not _errors(at), _errors(at)
    assert [info.value for info in at.info] == [t("vintage.no_data", lang)]
    assert len(at.get("plotly_chart")) == 0


def test_page_sidebar_filter_reaches_matrix(hand_path, monkeypatch):
    at = _open(hand_path, monkeypatch, "en")
    missing_note = t("vintage.missing_loans", "en", loans="1", balance="")[:10]
    assert missing_note in " ".join(caption.value for caption in at.caption)
    # Product p2 contains loans C and D only, so loan E (no April row) drops out.
    at.multiselect(key="flt_products").set_value(["p2"]).run()
    assert not _errors(at), _errors(at)
    assert missing_note not in " ".join(caption.value for caption in at.caption)


def test_page_controls_change_results(simulated_path, monkeypatch):
    at = _open(simulated_path, monkeypatch, "en")
    # Widget values are set together and applied by one rerun, as a form would.
    at.segmented_control(key="vintage_by").set_value("balance")
    at.segmented_control(key="vintage_basis").set_value("current")
    at.segmented_control(key="vintage_cohort").set_value("quarter")
    at.selectbox(key="vintage_threshold").set_value(90)
    at.segmented_control(key="forecast_by").set_value("balance")
    at.number_input(key="forecast_target").set_value(18)
    at.segmented_control(key="matrix_mode").set_value("window")
    at.run()
    assert not _errors(at), _errors(at)
    subheaders = [header.value for header in at.subheader]
    rate = t("vintage.rate_current_balance", "en", threshold=90)
    assert t("vintage.curves_title", "en", rate=rate) in subheaders
    assert t("vintage.forecast_title", "en", threshold=90, target=18) in subheaders
    # The window mode adds the first and last month choices.
    at.segmented_control(key="matrix_by").set_value("count")
    at.selectbox(key="matrix_from").select_index(0)
    at.run()
    assert not _errors(at), _errors(at)
    assert len(at.get("plotly_chart")) == CHART_COUNT
    subheaders = [header.value for header in at.subheader]
    matrix_titles = [header for header in subheaders if header.startswith("Migration matrix (")]
    assert len(matrix_titles) == 1
    assert "–" in matrix_titles[0]


def test_page_invalid_buckets_warn(simulated_path, monkeypatch):
    at = _open(simulated_path, monkeypatch, "en")
    at.text_input(key="vintage_bucket_bounds").input("60,30").run()
    assert not _errors(at), _errors(at)
    warnings = " ".join(warning.value for warning in at.warning)
    assert "strictly increasing" in warnings
    at.text_input(key="vintage_bucket_bounds").input("30,60,90").run()
    assert not _errors(at), _errors(at)
    assert not at.warning
    # With bounds 30,60,90 the forecast threshold offers only 30, 60 and 90.
    assert at.selectbox(key="forecast_threshold").options == ["30+", "60+", "90+"]


@pytest.mark.browser
def test_page_in_chromium(simulated_path, tmp_path):
    from tests.browser import chromium, error_messages, open_page, running_dashboard, wait_for_script

    with running_dashboard(simulated_path, extra_env={"LOANLENS_AUTO_DEMO": "0"}) as base_url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1200}, accept_downloads=True)
        # Open the app's start page, then follow the sidebar link as a user would.
        open_page(page, base_url, "", timeout=90)
        page.get_by_role("link", name=t("page.vintage", "zh")).first.click()
        page.get_by_role("tab", name=t("vintage.tab_vintage", "zh")).wait_for(timeout=60_000)
        wait_for_script(page, 60)
        assert error_messages(page) == []
        page.wait_for_selector(".js-plotly-plot", timeout=30_000)

        # The first CSV button downloads the vintage curves table.
        with page.expect_download(timeout=30_000) as download_info:
            page.get_by_role("button", name=t("common.download_csv", "zh")).first.click()
        target = tmp_path / "curves.csv"
        download_info.value.save_as(target)
        frame = pd.read_csv(io.BytesIO(target.read_bytes()), encoding="utf-8-sig")
        for column in ("vintage", "mob", "loans", "bad_loans", "rate", "is_small", "is_worse"):
            assert column in frame.columns
        assert len(frame) > 0

        for lang in ("zh", "en"):
            if lang == "en":
                page.get_by_text("English", exact=True).first.click()
                page.get_by_role("tab", name=t("vintage.tab_vintage", "en")).wait_for(timeout=60_000)
                wait_for_script(page, 60)
            tabs = page.get_by_role("tab").all_inner_texts()
            for key in ("tab_vintage", "tab_matrix", "tab_flow", "tab_forecast"):
                assert t(f"vintage.{key}", lang) in tabs
            # Every tab shows its charts without errors.
            for key in ("tab_vintage", "tab_matrix", "tab_flow", "tab_forecast"):
                page.get_by_role("tab", name=t(f"vintage.{key}", lang)).click()
                page.wait_for_timeout(500)
                assert error_messages(page) == [], (lang, key)
            assert page.locator(".js-plotly-plot").count() == CHART_COUNT
