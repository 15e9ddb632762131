"""Deep links to every page, opened as a fresh server's first request, in headless Chromium."""

import shutil

import pytest

from dashboard.common import PAGE_URL_PATHS
from tests.browser import chromium, error_messages, open_page, running_dashboard

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_copy(demo_db, tmp_path):
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, path)
    shutil.copy(demo_db.with_name("demo_truth.json"), tmp_path / "demo_truth.json")
    return path


def test_deep_link_first_request_renders_page(demo_copy):
    # A deep link as the very first request used to show Streamlit's "Page not found" dialog
    # while the page modules sat in a folder named pages/.
    with running_dashboard(demo_copy) as base_url, chromium() as browser:
        page = browser.new_page()
        open_page(page, base_url, PAGE_URL_PATHS["vintage"], timeout=120)
        assert page.query_selector('[role="dialog"]') is None
        assert error_messages(page) == []
        assert page.url.endswith(PAGE_URL_PATHS["vintage"])


def test_pages_request_only_localhost(demo_copy):
    external = []
    with running_dashboard(demo_copy) as base_url, chromium() as browser:
        page = browser.new_page()

        def record(request):
            if not request.url.startswith((base_url, "data:", "blob:")):
                external.append(request.url)

        page.on("request", record)
        for name, url_path in PAGE_URL_PATHS.items():
            open_page(page, base_url, url_path, timeout=120)
            assert error_messages(page) == [], name
    assert external == []
