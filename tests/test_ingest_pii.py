"""Import tests: personal data is transformed or dropped and never stored in clear.

Expected ages and regions are worked out by hand from the ID numbers; hashes are checked
against Python's hmac module.
"""

from __future__ import annotations

import hashlib
import hmac

import duckdb

from ingest import pii
from ingest.api import ColumnMapping, load_files, preview_file
from tests.fixtures_ingest import (  # noqa: F401  (secret_file is an autouse fixture)
    ID_NUMBER,
    ID_NUMBER_2,
    ID_PATTERN,
    MONTHS_HEADER,
    all_text_values,
    secret_file,
    write_csv,
)

AS_OF = "2017-12-31"
HEADER = ["借据号", "客户号", "放款日期", "放款金额", "身份证号码", "客户姓名", "手机号", "家庭地址",
          "紧急联系人电话", "银行账户"]
ROWS = [
    ["L1", "C001", "2017-02-03", "1000", ID_NUMBER, "张三", "13812345678", "北京市朝阳区某路1号",
     "13987654321", "4111111111111111"],
    ["L2", "C002", "2017-12-30", "2000", ID_NUMBER_2, "李四", "+86 139-0000-1111", "深圳市南山区某路2号",
     "13711112222", "6011000990139424"],
]


def _load(db_path, tmp_path, rows=ROWS, header=HEADER, mode="strict"):
    loans = write_csv(tmp_path / "loans.csv", header, rows)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER,
                       [[row[0], "2017-12-31", "0", "100", "正常"] for row in rows])
    return load_files(db_path, {"loans": loans, "loan_months": months}, mode=mode, as_of=AS_OF)


def test_idcard_never_stored_but_region_age_kept(db_path, tmp_path):
    report = _load(db_path, tmp_path)
    assert report.ok, report.summary("en")
    values = all_text_values(db_path)
    for table, column, value in values:
        assert ID_NUMBER not in value, (table, column)
        assert ID_NUMBER_2 not in value, (table, column)
        assert not ID_PATTERN.search(value), (table, column, value)
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute(
            "select loan_id, region_code, province, city, borrower_age, borrower_gender from loans order by loan_id"
        ).fetchall()
    finally:
        con.close()
    # 110105 = 北京市朝阳区, born 1949-12-31, 17th digit 2 (even) = F; age on 2017-02-03 is 67.
    # 440305 = 深圳市南山区, born 1990-03-07, 17th digit 3 (odd) = M; age on 2017-12-30 is 27.
    assert rows == [
        ("L1", "110105", "北京市", "北京市", 67, "F"),
        ("L2", "440305", "广东省", "深圳市", 27, "M"),
    ]


def test_personal_columns_listed_in_report(db_path, tmp_path):
    report = _load(db_path, tmp_path)
    personal = report.files[0].columns_personal
    assert personal == {
        "客户号": "pii:hash",
        "身份证号码": "pii:idcard",
        "客户姓名": "pii:drop",
        "手机号": "pii:hash",
        "家庭地址": "pii:drop",
        "紧急联系人电话": "pii:drop",
        "银行账户": "pii:hash",  # detected by value pattern (16 digits passing the Luhn check)
    }


def test_names_phones_addresses_absent(db_path, tmp_path):
    _load(db_path, tmp_path)
    text = " ".join(value for _, _, value in all_text_values(db_path))
    for clear in ("张三", "李四", "13812345678", "139-0000-1111", "13987654321", "朝阳区某路", "4111111111111111"):
        assert clear not in text


def test_hashes_are_hmac_sha256(db_path, tmp_path, secret_file):
    _load(db_path, tmp_path)
    key = bytes.fromhex(secret_file.read_text().strip())
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        borrower = con.execute("select borrower_id from loans where loan_id = 'L2'").fetchone()[0]
        phone = con.execute(
            "select value from loan_attributes where loan_id = 'L2' and attribute = '手机号'").fetchone()[0]
    finally:
        con.close()
    assert borrower == hmac.new(key, b"C002", hashlib.sha256).hexdigest()
    # The phone is normalised (spaces, dashes and +86 removed) before hashing.
    assert phone == hmac.new(key, b"13900001111", hashlib.sha256).hexdigest()


def test_secret_created_once_with_private_mode(secret_file):
    first = pii.load_secret()
    second = pii.load_secret()
    assert first == second
    assert len(first) == 32
    assert secret_file.stat().st_mode & 0o777 == 0o600


def test_unmatched_column_detected_by_values(db_path, tmp_path):
    header = ["借据号", "放款日期", "放款金额", "zjhm", "lxfs"]
    rows = [["L1", "2017-02-03", "1000", ID_NUMBER, "13812345678"],
            ["L2", "2017-02-03", "1000", ID_NUMBER_2, "13912345678"]]
    report = _load(db_path, tmp_path, rows, header)
    assert report.ok, report.summary("en")
    assert report.files[0].columns_personal == {"zjhm": "pii:idcard", "lxfs": "pii:hash"}
    for _, _, value in all_text_values(db_path):
        assert not ID_PATTERN.search(value)
        assert "13812345678" not in value


def _load_with_mapping(db_path, tmp_path, rows, header, mapping):
    loans = write_csv(tmp_path / "loans.csv", header, rows)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER,
                       [[row[0], "2017-12-31", "0", "100", "正常"] for row in rows])
    return load_files(db_path, {"loans": loans, "loan_months": months}, as_of=AS_OF, mapping=mapping)


FREE_TEXT_HEADER = ["借据号", "放款日期", "放款金额", "备注", "Remarks", "还款说明", "营销活动"]
FREE_TEXT_ROWS = [["L1", "2017-02-03", "1000", "客户张三电话13800138000", "call Li Si", "王五代还", "A"],
                  ["L2", "2017-02-03", "1000", "正常", "ok", "正常", "B"]]


def test_free_text_columns_dropped_by_default(db_path, tmp_path):
    # Names in free text cannot be found by pattern, so the whole column is dropped.
    report = _load(db_path, tmp_path, FREE_TEXT_ROWS, FREE_TEXT_HEADER)
    assert report.ok, report.summary("en")
    stored = {value for _, _, value in all_text_values(db_path)}
    for text in ("张三", "Li Si", "王五", "13800138000"):
        assert not any(text in value for value in stored), text
    assert table_rows_attributes(db_path) == [("L1", "营销活动", "A"), ("L2", "营销活动", "B")]
    file_report = report.files[0]
    assert file_report.columns_free_text == ["备注", "Remarks", "还款说明"]
    assert {name: file_report.columns_personal[name] for name in file_report.columns_free_text} == {
        "备注": "pii:drop", "Remarks": "pii:drop", "还款说明": "pii:drop"}
    assert "自由文本列" in report.summary("zh") and "备注" in report.summary("zh")
    assert "Free-text columns" in report.summary("en")
    assert report.to_dict()["files"][0]["columns_free_text"] == ["备注", "Remarks", "还款说明"]


def test_free_text_kept_by_mapping_is_masked(db_path, tmp_path):
    header = ["借据号", "放款日期", "放款金额", "备注"]
    rows = [["L1", "2017-02-03", "1000", f"核实身份证{ID_NUMBER}，电话13812345678"],
            ["L2", "2017-02-03", "1000", "正常"]]
    mapping = ColumnMapping.from_toml('[loans.columns]\n"备注" = "attribute"\n')
    report = _load_with_mapping(db_path, tmp_path, rows, header, mapping)
    assert report.ok
    assert report.files[0].columns_free_text == []
    assert report.files[0].columns_attributes == ["备注"]
    assert table_rows_attributes(db_path) == [("L1", "备注", "核实身份证***，电话***"), ("L2", "备注", "正常")]


def table_rows_attributes(db_path) -> list:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute("select loan_id, attribute, value from loan_attributes order by all").fetchall()
    finally:
        con.close()


def test_rejects_raw_row_has_no_personal_data(db_path, tmp_path):
    rows = [row[:] for row in ROWS]
    rows[1][3] = "abc"  # invalid principal -> quarantined
    report = _load(db_path, tmp_path, rows, mode="quarantine")
    assert report.ok
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        raw_rows = [row[0] for row in con.execute(
            "select raw_row from rejects where table_name = 'loans'").fetchall()]
        month_rules = [row[0] for row in con.execute(
            "select rule from rejects where table_name = 'loan_months'").fetchall()]
    finally:
        con.close()
    assert len(raw_rows) == 1
    assert month_rules == ["loan_not_found"]  # the month row of the rejected loan follows it
    assert "借据号" in raw_rows[0]
    for clear in (ID_NUMBER_2, "李四", "13900001111", "139-0000-1111", "深圳市南山区某路", "6011000990139424", "C002"):
        assert clear not in raw_rows[0]


def test_preview_masks_personal_columns(tmp_path):
    loans = write_csv(tmp_path / "loans.csv", HEADER, ROWS)
    preview = preview_file(loans, "loans")
    assert preview.proposed["身份证号码"] == "pii:idcard"
    assert preview.proposed["借据号"] == "loan_id"
    assert preview.rows.shape == (2, len(HEADER))
    assert ID_NUMBER not in preview.rows.to_string()
