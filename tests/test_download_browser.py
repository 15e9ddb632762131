"""Downloading a cohort file from the 数据下载 page in headless Chromium.

The file saved by the browser is read back and compared with the audit row.
"""

from __future__ import annotations

import hashlib
import io

import openpyxl
import pandas as pd
import pytest

from analysis import cohort
from queries import db
from tests.browser import chromium, error_messages, open_page, running_dashboard, wait_for_script
from tests.fixtures_data import LONG_LOAN_ID, build_portfolio

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _download(page, button: str) -> bytes:
    with page.expect_download(timeout=30_000) as info:
        page.get_by_role("button", name=button).click()
    path = info.value.path()
    with open(path, "rb") as handle:
        return handle.read()


def test_download_files_read_back(tmp_path):
    portfolio = build_portfolio(tmp_path / "portfolio.duckdb")
    env = {"LOANLENS_AUTO_DEMO": "0", "LOANLENS_ADMIN": "1"}
    with running_dashboard(portfolio, extra_env=env) as base_url, chromium() as browser:
        page = browser.new_page(accept_downloads=True)
        # Start from the app's first page, as a user would, so the app frame runs too.
        open_page(page, base_url, "")
        page.get_by_role("link", name="数据下载").click()
        page.get_by_role("heading", name="数据下载").wait_for(timeout=30_000)
        wait_for_script(page)
        assert error_messages(page) == []

        page.get_by_role("button", name="生成文件").click()
        page.get_by_text("文件已生成").wait_for(timeout=30_000)
        wait_for_script(page)
        csv_bytes = _download(page, "下载文件")

        page.get_by_text("Excel (.xlsx)").click()
        wait_for_script(page)
        page.get_by_role("button", name="生成文件").click()
        page.get_by_text("文件已生成").wait_for(timeout=30_000)
        wait_for_script(page)
        xlsx_bytes = _download(page, "下载文件")
        assert error_messages(page) == []

    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    text = csv_bytes.decode("utf-8-sig")
    assert "消费贷" in text
    back = pd.read_csv(io.StringIO(text), dtype=str)
    assert LONG_LOAN_ID in set(back["loan_id"])
    assert len(back) == 5

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes)).active
    cells = {row[0].value: row[0] for row in sheet.iter_rows(min_row=2)}
    assert cells[LONG_LOAN_ID].data_type == "s"

    con = db.connect(portfolio, read_only=True)
    try:
        audit = cohort.list_downloads(con).sort_values("downloaded_at").reset_index(drop=True)
    finally:
        con.close()
    assert list(audit["file_format"]) == ["csv", "xlsx"]
    assert list(audit["row_count"]) == [5, 5]
    assert audit.loc[0, "file_sha256"] == hashlib.sha256(csv_bytes).hexdigest()
    assert audit.loc[1, "file_sha256"] == hashlib.sha256(xlsx_bytes).hexdigest()


def test_language_switch_relabels_choices(tmp_path):
    portfolio = build_portfolio(tmp_path / "portfolio.duckdb")
    with running_dashboard(portfolio, extra_env={"LOANLENS_AUTO_DEMO": "0"}) as base_url, chromium() as browser:
        page = browser.new_page()
        open_page(page, base_url, "")
        page.get_by_role("link", name="数据下载").click()
        page.get_by_role("heading", name="数据下载").wait_for(timeout=30_000)
        wait_for_script(page)
        page.get_by_text("English", exact=True).click()
        page.get_by_role("heading", name="Cohort download").wait_for(timeout=30_000)
        wait_for_script(page)
        shown = page.eval_on_selector_all(
            '[data-testid="stSelectbox"] input',
            "inputs => inputs.map(input => input.getAttribute('aria-label') + '=' + input.value)",
        )
        assert "Ever past due more than (days)=Any" in shown
        assert "One row per loan" in page.inner_text("body")
