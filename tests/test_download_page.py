"""Streamlit AppTest of the 数据下载 page (dashboard/views/data_download.py).

Expected counts are worked out by hand from tests/fixtures_data.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analysis import cohort, export
from queries import db
from tests.fixtures_data import build_portfolio

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "data_download.py")


def _page(db_file: Path, lang: str, monkeypatch, admin: bool = False) -> AppTest:
    monkeypatch.setenv("LOANLENS_DB", str(db_file))
    if admin:
        monkeypatch.setenv("LOANLENS_ADMIN", "1")
    else:
        monkeypatch.delenv("LOANLENS_ADMIN", raising=False)
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.session_state["lang"] = lang
    return app.run()


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    return build_portfolio(tmp_path / "portfolio.duckdb")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_portfolio(portfolio, lang, monkeypatch):
    app = _page(portfolio, lang, monkeypatch)
    assert not app.exception
    metrics = [metric.value for metric in app.metric]
    assert metrics[0] == "5"
    assert metrics[2] == "5"
    assert app.button(key="dl_prepare").disabled is False


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_empty_database(db_path, lang, monkeypatch):
    app = _page(db_path, lang, monkeypatch, admin=True)
    assert not app.exception
    expected = "数据库中还没有借据数据" if lang == "zh" else "The database holds no loans yet"
    assert any(expected in info.value for info in app.info)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_demo_data(demo_db, lang, monkeypatch):
    app = _page(demo_db, lang, monkeypatch)
    assert not app.exception
    assert int(app.metric[0].value.replace(",", "")) > 0


def test_filters_change_live_count(portfolio, monkeypatch):
    app = _page(portfolio, "en", monkeypatch)
    app.multiselect(key="dl_city").set_value(["杭州市"]).run()
    assert app.metric[0].value == "2"
    app.selectbox(key="dl_ever_dpd_en").set_value(60).run()
    assert app.metric[0].value == "1"
    app.radio(key="dl_grain").set_value("loan-month").run()
    assert app.metric[2].value == "3"  # L0004 has three month-ends


def test_prepare_records_audit_row(portfolio, monkeypatch):
    app = _page(portfolio, "en", monkeypatch, admin=True)
    app.multiselect(key="dl_bucket").set_value(["C", "M1"]).run()
    app.button(key="dl_prepare").click().run()
    assert not app.exception
    prepared = app.session_state["data_download_prepared"]
    assert prepared["rows"] == 2  # L0003 (C) and L0005 (M1)
    con = db.connect(portfolio, read_only=True)
    try:
        audit = cohort.list_downloads(con)
    finally:
        con.close()
    assert len(audit) == 1
    assert audit.loc[0, "row_count"] == 2
    assert audit.loc[0, "file_sha256"] == hashlib.sha256(prepared["data"]).hexdigest()
    assert audit.loc[0, "file_format"] == "csv"
    assert '"buckets": ["C", "M1"]' in audit.loc[0, "filters"]
    assert prepared["data"].startswith(b"\xef\xbb\xbf")


def test_changed_filter_marks_file_stale(portfolio, monkeypatch):
    app = _page(portfolio, "en", monkeypatch)
    app.button(key="dl_prepare").click().run()
    assert len(app.success) == 1
    app.multiselect(key="dl_city").set_value(["成都市"]).run()
    assert len(app.success) == 0
    assert any("prepare the file again" in caption.value for caption in app.caption)


def test_excel_limit_offers_other_formats(portfolio, monkeypatch):
    monkeypatch.setattr(export, "EXCEL_MAX_ROWS", 4)  # 5 loans + header do not fit
    app = _page(portfolio, "en", monkeypatch)
    app.radio(key="dl_format").set_value("xlsx").run()
    assert any("exceed Excel's limit" in warning.value for warning in app.warning)
    assert app.button(key="dl_prepare").disabled is True
    app.radio(key="dl_format").set_value("parquet").run()
    assert app.button(key="dl_prepare").disabled is False


def test_audit_hidden_without_admin(portfolio, monkeypatch):
    app = _page(portfolio, "en", monkeypatch, admin=False)
    assert not any("Download audit" in header.value for header in app.subheader)
    app = _page(portfolio, "en", monkeypatch, admin=True)
    assert any("Download audit" in header.value for header in app.subheader)


def test_prepared_xlsx_keeps_text_ids(portfolio, monkeypatch):
    import io

    import openpyxl

    from tests.fixtures_data import LEADING_ZERO_CODE, LONG_LOAN_ID

    app = _page(portfolio, "zh", monkeypatch)
    app.radio(key="dl_format").set_value("xlsx").run()
    app.multiselect(key="dl_columns_loan").set_value(["loan_id", "origination_date", "attr:网点代码", "city"]).run()
    app.button(key="dl_prepare").click().run()
    assert not app.exception
    sheet = openpyxl.load_workbook(io.BytesIO(app.session_state["data_download_prepared"]["data"])).active
    assert [cell.value for cell in sheet[1]] == ["loan_id", "origination_date", "attr:网点代码", "city"]
    first = {row[0].value: row for row in sheet.iter_rows(min_row=2)}[LONG_LOAN_ID]
    assert first[0].data_type == "s"
    assert first[1].is_date
    assert first[2].value == LEADING_ZERO_CODE
    assert first[3].value == "深圳市"


def test_attribute_filter_selects_loans(portfolio, monkeypatch):
    app = _page(portfolio, "en", monkeypatch)
    app.multiselect(key="dl_attributes").set_value(["网点代码"]).run()
    app.multiselect(key="dl_attr_网点代码").set_value(["000123"]).run()
    assert app.metric[0].value == "2"  # the long id and L0003


def test_attribute_with_many_values_takes_text(portfolio, monkeypatch):
    original = cohort.filter_options
    # With at most 1 listed value per attribute, 网点代码 (2 values) is offered as free text.
    monkeypatch.setattr(cohort, "filter_options", lambda con, max_values=500: original(con, max_values=1))
    app = _page(portfolio, "en", monkeypatch)
    app.multiselect(key="dl_attributes").set_value(["网点代码"]).run()
    app.text_input(key="dl_attr_text_网点代码").input("000456, 000123").run()
    assert app.metric[0].value == "3"
