"""The survival page in headless Chromium on the demo portfolio: both languages, three
charts drawn, no error boxes, and the curve data downloadable as CSV.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.survival import KM_COLUMNS
from dashboard.common import PAGE_URL_PATHS
from tests.browser import chromium, error_messages, open_page, running_dashboard, wait_for_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PLOTLY_CHART = '[data-testid="stPlotlyChart"]'


@pytest.fixture
def demo_copy(request, tmp_path) -> Path:
    pytest.importorskip("ingest.demo")
    target = tmp_path / "demo.duckdb"
    shutil.copy(request.getfixturevalue("demo_db"), target)
    return target


def _download(page, label: str) -> bytes:
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=label).first.click()
    return Path(info.value.path()).read_bytes()


def test_survival_page_in_both_languages(demo_copy):
    with running_dashboard(demo_copy) as base_url, chromium() as browser:
        page = browser.new_page(accept_downloads=True)
        # Start from the home page and use the sidebar link, as a user does.
        open_page(page, base_url, "", timeout=120)
        page.get_by_role("link", name="生存分析").click()
        wait_for_script(page, timeout=120)
        assert page.url.endswith(PAGE_URL_PATHS["survival"])
        assert error_messages(page) == []
        main = page.inner_text('[data-testid="stMain"]')
        assert "生存曲线（Kaplan–Meier）" in main
        assert "口径" in main
        # Kaplan–Meier and cumulative incidence; the Cox forest plot after its button.
        page.wait_for_selector(PLOTLY_CHART, timeout=60_000)
        assert page.locator(PLOTLY_CHART).count() == 2
        page.get_by_role("button", name="拟合 Cox 模型").click()
        wait_for_script(page, timeout=120)
        assert error_messages(page) == []
        assert page.locator(PLOTLY_CHART).count() == 3

        table = pd.read_csv(io.BytesIO(_download(page, "下载 CSV")), encoding="utf-8-sig")
        assert list(table.columns) == KM_COLUMNS
        assert sorted(table["segment"].unique()) == ["A", "B", "C", "D", "E"]

        page.get_by_text("English", exact=True).first.click()
        wait_for_script(page, timeout=120)
        assert error_messages(page) == []
        main = page.inner_text('[data-testid="stMain"]')
        assert "Survival curves (Kaplan–Meier)" in main
        assert "Log-rank test" in main
        assert page.locator(PLOTLY_CHART).count() == 3
