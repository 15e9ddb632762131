"""Uploads through the 数据导入 page in headless Chromium (dashboard/views/data_import.py).

The reference for the page's result is the command-line import of the same files
(`python -m ingest load`) into a second database.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from examples import _tape, uci_taiwan
from ingest import api
from queries import db
from tests.browser import chromium, error_messages, open_page, running_dashboard, wait_for_script

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
UCI_SAMPLE = REPO_ROOT / "tests" / "fixtures" / "uci_taiwan_200.csv"
UPLOAD_INPUT = '[data-testid="stFileUploaderDropzoneInput"]'
NO_DEMO = {"LOANLENS_AUTO_DEMO": "0"}


def _open_import_page(page, base_url: str) -> None:
    """Open the app's start page, then 数据导入 from the navigation, as a user would.

    Opening /data_import first would run the page file without the app frame.
    """
    open_page(page, base_url, "")
    page.get_by_role("link", name="数据导入").click()
    page.get_by_role("heading", name="数据导入").wait_for(timeout=30_000)
    wait_for_script(page)


def _upload_and_load(page, base_url: str, files: list[Path], expect_text: str) -> None:
    """Open the page, upload ``files``, press 校验并导入 and wait for ``expect_text``."""
    _open_import_page(page, base_url)
    page.set_input_files(UPLOAD_INPUT, [str(path) for path in files])
    page.get_by_text(f"{files[-1].name} 是哪张表？").wait_for(timeout=30_000)
    wait_for_script(page)
    page.get_by_role("button", name="校验并导入").click()
    page.get_by_text(expect_text).first.wait_for(timeout=120_000)
    wait_for_script(page)


def _table(db_file: Path, sql: str) -> pd.DataFrame:
    con = db.connect(db_file, read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _new_db(path: Path) -> Path:
    db.connect(path).close()
    return path


def test_uci_upload_matches_command_line(tmp_path):
    paths = _tape.write_tables(uci_taiwan.convert(UCI_SAMPLE), tmp_path / "tape")
    cli_db = _new_db(tmp_path / "cli.duckdb")
    result = subprocess.run(
        _tape.load_command(paths, str(cli_db), "strict"), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr

    # A strict upload with one bad row first: the report shows it and nothing is stored.
    bad_loans = tmp_path / "bad" / "loans.csv"
    bad_loans.parent.mkdir()
    frame = pd.read_csv(paths["loans"], dtype=str)
    frame.loc[3, "principal"] = "-500"
    frame.to_csv(bad_loans, index=False)
    page_db = _new_db(tmp_path / "page.duckdb")

    with running_dashboard(page_db, extra_env=NO_DEMO) as base_url, chromium() as browser:
        page = browser.new_page()
        _upload_and_load(page, base_url, [bad_loans, paths["loan_months"]], "数据库保持不变")
        counts_table = page.inner_text('[data-testid="stTable"]')
        assert "principal_not_positive" in counts_table
        assert _table(page_db, "select count(*) as n from loans")["n"][0] == 0
        assert _table(page_db, "select count(*) as n from loan_months")["n"][0] == 0

        page = browser.new_page()
        _upload_and_load(page, base_url, [paths["loans"], paths["loan_months"]], "导入成功")
        assert error_messages(page) == []

    tables = (
        ("loans", "loan_id"),
        ("loan_months", "loan_id, snapshot_date"),
        ("loan_attributes", "loan_id, attribute"),
    )
    for table, order in tables:
        sql = f"select * exclude (load_id) from {table} order by {order}"  # fixed names only
        from_page = _table(page_db, sql)
        from_cli = _table(cli_db, sql)
        assert len(from_page) > 0
        pd.testing.assert_frame_equal(from_page, from_cli)


def test_gbk_csv_with_chinese_headers(tmp_path):
    folder = tmp_path / "gbk"
    folder.mkdir()
    loans = folder / "借据表.csv"
    months = folder / "月末余额表.csv"
    loans.write_bytes(
        "借据号,放款日期,放款金额(元),产品,城市\n"
        "000123,2026年1月5日,\"1,000.00\",消费贷,深圳市\n"
        "000124,2026/1/20,2500,经营贷,广州市\n".encode("gbk")
    )
    months.write_bytes(
        "借据号,统计日期,逾期天数,贷款余额\n"
        "000123,2026-01-31,0,900\n"
        "000124,2026-01-31,12,2500\n".encode("gbk")
    )
    page_db = _new_db(tmp_path / "page.duckdb")
    mappings = tmp_path / "mappings"
    env = {**NO_DEMO, "LOANLENS_MAPPINGS": str(mappings)}
    with running_dashboard(page_db, extra_env=env) as base_url, chromium() as browser:
        page = browser.new_page()
        _open_import_page(page, base_url)
        page.set_input_files(UPLOAD_INPUT, [str(loans), str(months)])
        page.get_by_text("月末余额表.csv 是哪张表？").wait_for(timeout=30_000)
        wait_for_script(page)
        body = page.inner_text("body")
        assert "gb18030" in body.lower()
        assert "表头：借据号、放款日期、放款金额(元)、产品、城市" in body

        page.get_by_label("保存当前映射为方案（名称）").fill("月度台账")
        page.get_by_label("保存当前映射为方案（名称）").press("Enter")
        wait_for_script(page)
        page.get_by_role("button", name="保存映射方案").click()
        page.get_by_text("已保存映射方案 月度台账").wait_for(timeout=30_000)
        wait_for_script(page)
        page.get_by_role("button", name="校验并导入").click()
        page.get_by_text("导入成功").first.wait_for(timeout=120_000)
        assert error_messages(page) == []

    profile = api.load_mapping(mappings / "月度台账.toml")
    assert profile.tables["loans"].columns["借据号"] == "loan_id"
    assert profile.tables["loan_months"].columns["贷款余额"] == "outstanding_principal"

    stored = _table(page_db, "select loan_id, principal, product, city from loans order by loan_id")
    assert list(stored["loan_id"]) == ["000123", "000124"]
    assert list(stored["principal"]) == [1000.0, 2500.0]
    assert list(stored["product"]) == ["消费贷", "经营贷"]
    assert _table(page_db, "select max(dpd) as dpd from loan_months")["dpd"][0] == 12


def test_quarantine_upload_loads_good_rows(tmp_path):
    paths = _tape.write_tables(uci_taiwan.convert(UCI_SAMPLE), tmp_path / "tape")
    bad_loans = tmp_path / "bad" / "loans.csv"
    bad_loans.parent.mkdir()
    frame = pd.read_csv(paths["loans"], dtype=str)
    frame.loc[[3, 7], "principal"] = "0"
    frame.to_csv(bad_loans, index=False)
    page_db = _new_db(tmp_path / "page.duckdb")
    with running_dashboard(page_db, extra_env=NO_DEMO) as base_url, chromium() as browser:
        page = browser.new_page(accept_downloads=True)
        _open_import_page(page, base_url)
        page.set_input_files(UPLOAD_INPUT, [str(bad_loans), str(paths["loan_months"])])
        page.get_by_text("loan_months.csv 是哪张表？").wait_for(timeout=30_000)
        wait_for_script(page)
        page.get_by_text("隔离模式：合格行入库，问题行另存").click()
        wait_for_script(page)
        page.get_by_role("button", name="校验并导入").click()
        page.get_by_text("问题数据已隔离").wait_for(timeout=120_000)
        wait_for_script(page)
        with page.expect_download(timeout=30_000) as info:
            page.get_by_role("button", name="下载被隔离的行及原因（CSV）").click()
        rejects = Path(info.value.path()).read_bytes().decode("utf-8-sig")

    assert _table(page_db, "select count(*) as n from loans")["n"][0] == 198
    assert "principal_not_positive" in rejects


def test_profile_cannot_keep_personal_data(tmp_path):
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    # A profile that tries to keep the borrower's name and phone number as attributes.
    (mappings / "unsafe.toml").write_text(
        '[loans.columns]\n"姓名" = "attribute"\n"手机号" = "attribute"\n', encoding="utf-8"
    )
    folder = tmp_path / "tape"
    folder.mkdir()
    loans = folder / "借据表.csv"
    months = folder / "月末余额表.csv"
    loans.write_text(
        "借据号,放款日期,放款金额,姓名,手机号,渠道备注\n"
        "A1,2026-01-05,1000,张三,13800138000,门店\n"
        "A2,2026-01-06,2000,李四,13900139000,线上\n",
        encoding="utf-8",
    )
    months.write_text("借据号,统计日期,逾期天数,贷款余额\nA1,2026-01-31,0,1000\nA2,2026-01-31,0,2000\n", encoding="utf-8")
    page_db = _new_db(tmp_path / "page.duckdb")
    env = {**NO_DEMO, "LOANLENS_MAPPINGS": str(mappings)}
    with running_dashboard(page_db, extra_env=env) as base_url, chromium() as browser:
        page = browser.new_page()
        _open_import_page(page, base_url)
        page.get_by_label("使用已保存的映射方案").click()
        page.get_by_role("option", name="unsafe").click()
        wait_for_script(page)
        page.set_input_files(UPLOAD_INPUT, [str(loans), str(months)])
        page.get_by_text("月末余额表.csv 是哪张表？").wait_for(timeout=30_000)
        wait_for_script(page)
        assert "含个人信息，只能删除或哈希" in page.inner_text("body")
        page.get_by_role("button", name="校验并导入").click()
        page.get_by_text("导入成功").first.wait_for(timeout=120_000)

    attributes = _table(page_db, "select attribute, value from loan_attributes order by attribute, value")
    # The name is dropped; the phone number survives only as a keyed hash (64 hex digits).
    assert "姓名" not in set(attributes["attribute"])
    phones = attributes.loc[attributes["attribute"] == "手机号", "value"]
    assert len(phones) == 2
    assert phones.str.fullmatch(r"[0-9a-f]{64}").all()
    stored = pd.concat([_table(page_db, "select * from loans"), attributes]).astype(str).to_numpy().ravel()
    stored_text = " ".join(stored)
    assert "张三" not in stored_text
    assert "13800138000" not in stored_text


def test_empty_upload_error_names_user_file(tmp_path):
    """An empty CSV gets the catalog message with the uploaded name, not the temporary one."""
    upload = tmp_path / "空文件.csv"
    upload.write_bytes(b"")
    database = _new_db(tmp_path / "empty.duckdb")
    with running_dashboard(database, extra_env=NO_DEMO) as base_url, chromium() as browser:
        page = browser.new_page()
        _open_import_page(page, base_url)
        page.set_input_files(UPLOAD_INPUT, [str(upload)])
        page.get_by_text("空文件.csv 是哪张表？").wait_for(timeout=30_000)
        wait_for_script(page)
        errors = error_messages(page)
    assert errors == ["无法预览上传的文件。空文件.csv：文件没有表头行。第一行应为列名。"]
