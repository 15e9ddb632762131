"""The 催收策略 and 合规监测 pages in Streamlit's AppTest and in headless Chromium.

Pages run inside the real entry script (dashboard/app.py), on the demo portfolio and on an
empty database, in both languages. The expected texts come from the message catalog.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from messages import t

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGES = {"collections": "views/collections.py", "compliance": "views/compliance.py"}


def _run_page(page: str, lang: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page(PAGES[page]).run()
    return at


def _texts(at: AppTest) -> list[str]:
    elements = list(at.success) + list(at.warning) + list(at.info) + list(at.caption) + list(at.markdown)
    return [element.value for element in elements]


@pytest.fixture
def demo_env(demo_db, monkeypatch):
    monkeypatch.setenv("LOANLENS_DB", str(demo_db))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    return demo_db


@pytest.fixture
def empty_env(tmp_path, monkeypatch):
    path = tmp_path / "empty.duckdb"
    monkeypatch.setenv("LOANLENS_DB", str(path))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    return path


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_collections_page_on_demo(demo_env, demo_truth, lang):
    at = _run_page("collections", lang)
    assert not at.exception
    assert at.title[0].value == t("page.collections", lang)
    assert len(at.get("plotly_chart")) >= 4
    # Every chart has CSV and Excel buttons; tables add more.
    assert len(at.get("download_button")) >= 2 * len(at.get("plotly_chart"))
    early = demo_truth["collections"]["early"]
    texts = _texts(at)
    assert any(early["arms"][0] in text and early["arms"][1] in text for text in texts)
    assert t("collections.koujing", lang) in texts

    # The middle stage was assigned by rule, so the comparison warns.
    at.radio(key="collections_stage").set_value("middle").run()
    assert not at.exception
    warnings = [element.value for element in at.warning]
    covariate_note = t("collections.note.not_comparable", lang, covariates="X").split("X")[0]
    assert any(text.startswith(covariate_note) for text in warnings)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_collections_page_on_empty_database(empty_env, lang):
    at = _run_page("collections", lang)
    assert not at.exception
    assert t("collections.empty", lang) in [element.value for element in at.info]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_compliance_page_on_demo(demo_env, demo_truth, lang):
    at = _run_page("compliance", lang)
    assert not at.exception
    assert at.title[0].value == t("page.compliance", lang)
    breaches_label = t("compliance.metric.breaches", lang)
    metrics = {metric.label: metric.value for metric in at.metric}
    baseline = demo_truth["compliance"]["total_breach_rows"]
    assert metrics[breaches_label] == f"{baseline:,}"
    assert len(at.get("plotly_chart")) >= 6
    assert len(at.get("download_button")) >= 2 * len(at.get("plotly_chart"))
    assert t("compliance.koujing", lang) in _texts(at)

    # A lower daily call limit finds more breaches.
    at.number_input(key="compliance_max_calls").set_value(2).run()
    assert not at.exception
    metrics = {metric.label: metric.value for metric in at.metric}
    assert int(metrics[breaches_label].replace(",", "")) > baseline


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_compliance_page_on_empty_database(empty_env, lang):
    at = _run_page("compliance", lang)
    assert not at.exception
    infos = [element.value for element in at.info]
    assert t("compliance.empty", lang) in infos
    assert t("compliance.pricing.empty", lang) in infos


@pytest.mark.browser
@pytest.mark.parametrize("page_name", ["collections", "compliance"])
def test_pages_in_browser(demo_db, page_name, tmp_path):
    from tests.browser import chromium, error_messages, open_page, running_dashboard, wait_for_script

    with running_dashboard(demo_db, extra_env={"LOANLENS_AUTO_DEMO": "0"}) as base_url, chromium() as browser:
        page = browser.new_page(viewport={"width": 1500, "height": 1200}, accept_downloads=True)
        open_page(page, base_url, "", timeout=90)
        for lang in ("zh", "en"):
            if lang == "en":
                page.get_by_text("English", exact=True).first.click()
                wait_for_script(page, 60)
            page.get_by_role("link", name=t(f"page.{page_name}", lang)).first.click()
            page.get_by_role("heading", name=t(f"page.{page_name}", lang)).first.wait_for(timeout=60_000)
            wait_for_script(page, 90)
            assert error_messages(page) == [], lang
            page.wait_for_selector(".js-plotly-plot", state="attached", timeout=30_000)
            assert page.locator(".js-plotly-plot").count() >= 1, lang

            # The first CSV button downloads the first chart's data.
            with page.expect_download(timeout=30_000) as download_info:
                page.get_by_role("button", name=t("common.download_csv", lang)).first.click()
            target = tmp_path / f"{page_name}_{lang}.csv"
            download_info.value.save_as(target)
            content = target.read_bytes()
            assert content.startswith(b"\xef\xbb\xbf"), lang  # CSV with a byte-order mark
            assert len(content.splitlines()) >= 2, lang
