"""First and warm page loads of every dashboard page in headless Chromium.

A page load is timed from the navigation start until Streamlit reports that the page's
script run has finished (the moment that state began, not the end of the settle wait). The first load of each page after the server starts runs its queries with
empty result caches; warm loads open the same page again in a new browser tab.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from dashboard.common import PAGE_URL_PATHS
from tests.browser import chromium, error_messages, open_page, running_dashboard


def _timed_load(browser, base_url: str, page_name: str) -> tuple[float, list[str]]:
    page = browser.new_page()
    open_page(page, base_url, PAGE_URL_PATHS[page_name], timeout=120)
    # open_page returns after the finished state has held for a settle period. The load time
    # ends when that state began and starts at the navigation start (performance.timeOrigin).
    seconds = page.evaluate("() => (window.__loanlensDoneSince - performance.timeOrigin) / 1000")
    errors = error_messages(page)
    page.close()
    return seconds, errors


def measure_pages(db_path: Path, runs: int) -> dict:
    """Return {page: {first_s, median_s, seconds, errors}} for every page."""
    results: dict = {}
    with running_dashboard(db_path, timeout=120) as base_url, chromium() as browser:
        for page_name in PAGE_URL_PATHS:
            try:
                first_s, errors = _timed_load(browser, base_url, page_name)
                warm = [_timed_load(browser, base_url, page_name)[0] for _ in range(runs)]
            except Exception as error:  # noqa: BLE001 - a failed page is recorded, not fatal
                results[page_name] = {"error": f"{type(error).__name__}: {error}"[:300]}
                continue
            results[page_name] = {
                "first_s": first_s,
                "median_s": statistics.median(warm),
                "seconds": warm,
                "errors": errors,
            }
    return results
