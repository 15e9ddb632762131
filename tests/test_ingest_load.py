"""Import tests: modes, idempotency, validation rules, error texts and the load log.

Expected counts are worked out by hand from the rows written in each test.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import duckdb
import pytest

from ingest.api import ColumnMapping, list_loads, load_files, load_mapping, remove_load, save_mapping
from ingest.load import UsageError
from tests.fixtures_ingest import (  # noqa: F401  (secret_file is an autouse fixture)
    LOANS_HEADER,
    LOANS_ROWS,
    MONTHS_HEADER,
    MONTHS_ROWS,
    database_snapshot,
    secret_file,
    table_rows,
    write_csv,
)

AS_OF = "2017-12-31"


def _files(tmp_path, loans_rows=LOANS_ROWS, months_rows=MONTHS_ROWS, months_name="months.csv"):
    return {
        "loans": write_csv(tmp_path / "loans.csv", LOANS_HEADER, loans_rows),
        "loan_months": write_csv(tmp_path / months_name, MONTHS_HEADER, months_rows),
    }


def test_same_month_twice_same_counts(db_path, tmp_path):
    first = load_files(db_path, _files(tmp_path), as_of=AS_OF)
    assert first.ok
    counts_before = {table: len(table_rows(db_path, table)) for table in ("loans", "loan_months")}
    second = load_files(db_path, _files(tmp_path), as_of=AS_OF)
    assert second.ok
    counts_after = {table: len(table_rows(db_path, table)) for table in ("loans", "loan_months")}
    assert counts_before == counts_after == {"loans": 3, "loan_months": 3}
    assert second.files[1].months_replaced == ["2017-03"]


def test_new_month_appends_and_replaced_month_drops_rows(db_path, tmp_path):
    assert load_files(db_path, _files(tmp_path), as_of=AS_OF).ok
    april = [[row[0], "2017-04-30", "0", "100", "正常"] for row in MONTHS_ROWS]
    assert load_files(db_path, {"loan_months": write_csv(tmp_path / "apr.csv", MONTHS_HEADER, april)},
                      as_of=AS_OF).ok
    assert len(table_rows(db_path, "loan_months")) == 6
    # A corrected March file with one loan fewer replaces the whole month.
    march = [MONTHS_ROWS[0], MONTHS_ROWS[1]]
    assert load_files(db_path, {"loan_months": write_csv(tmp_path / "mar.csv", MONTHS_HEADER, march)},
                      as_of=AS_OF).ok
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        per_month = con.execute(
            "select snapshot_date, count(*) from loan_months group by all order by all").fetchall()
    finally:
        con.close()
    assert per_month == [(dt.date(2017, 3, 31), 2), (dt.date(2017, 4, 30), 3)]


def test_strict_failure_leaves_database_unchanged(db_path, tmp_path):
    assert load_files(db_path, _files(tmp_path), as_of=AS_OF).ok
    before = database_snapshot(db_path)
    bad_loans = [row[:] for row in LOANS_ROWS] + [["L0009", "2017-03-01", "-5", "12", "0.1", "p", "广东"]]
    bad_months = MONTHS_ROWS + [["L0009", "2017-04-30", "0", "100", "正常"]]
    report = load_files(db_path, _files(tmp_path / ".." / tmp_path.name, bad_loans, bad_months, "m2.csv"),
                        as_of=AS_OF)
    assert not report.ok
    assert report.counts_by_rule == {"principal_not_positive": 1}
    after = database_snapshot(db_path)
    new_log = after.pop("load_log")
    old_log = before.pop("load_log")
    assert after == before
    assert new_log[: len(old_log)] == old_log
    added = new_log[len(old_log):]
    assert [row[14] for row in added] == ["rejected", "rejected"]


def test_quarantine_accounting(db_path, tmp_path):
    loans = [row[:] for row in LOANS_ROWS]
    loans[1][2] = "abc"  # invalid amount
    loans.append(["合计", "", "25000", "", "", "", ""])
    months = MONTHS_ROWS + [["L0003", "2017-03-31", "-1", "100", "正常"],  # duplicate key and negative dpd
                            ["NOPE", "2017-03-31", "0", "100", "正常"]]  # unknown loan
    report = load_files(db_path, _files(tmp_path, loans, months), mode="quarantine", as_of=AS_OF)
    assert report.ok
    for file_report in report.files:
        assert file_report.rows_read == file_report.rows_loaded + file_report.rows_rejected + file_report.footer_rows
    loans_report, months_report = report.files
    assert (loans_report.rows_read, loans_report.rows_loaded, loans_report.rows_rejected,
            loans_report.footer_rows) == (4, 2, 1, 1)
    # Month rows rejected: L0002 (its loan was rejected), both L0003 rows (duplicate key), NOPE.
    assert (months_report.rows_read, months_report.rows_loaded, months_report.rows_rejected) == (5, 1, 4)
    assert report.counts_by_rule == {"invalid_amount": 1, "loan_not_found": 2, "duplicate_key": 2,
                                     "dpd_negative": 1}
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        assert con.execute("select count(distinct (table_name, line_no)) from rejects").fetchone()[0] == 5
        assert con.execute("select count(*) from loans").fetchone()[0] == 2
    finally:
        con.close()
    assert report.rejects_csv is None


def test_quarantine_rejects_csv_written(db_path, tmp_path):
    loans = [row[:] for row in LOANS_ROWS]
    loans[1][2] = "abc"
    report = load_files(db_path, _files(tmp_path, loans), mode="quarantine", as_of=AS_OF,
                        rejects_dir=tmp_path / "out")
    text = (tmp_path / "out").glob("rejects-*.csv").__next__().read_text(encoding="utf-8-sig")
    assert report.rejects_csv.endswith(".csv")
    assert "invalid_amount" in text
    assert "abc" in text
    assert "不是有效金额" in text


def test_error_names_file_line_column_value_fix(db_path, tmp_path):
    loans = [row[:] for row in LOANS_ROWS]
    loans[2][1] = "2017-13-01"
    report = load_files(db_path, _files(tmp_path, loans), as_of=AS_OF)
    assert not report.ok
    (error,) = report.errors
    assert (error.file, error.line, error.column, error.value, error.rule) == (
        "loans.csv", 4, "放款日期", "2017-13-01", "invalid_date")
    for text in (error.message_en, error.message_zh):
        assert "loans.csv" in text
        assert "4" in text
        assert "放款日期" in text
        assert "2017-13-01" in text
    assert "2017-02-03" in error.fix_en
    assert "2017年2月3日" in error.fix_zh
    assert report.counts_by_rule == {"invalid_date": 1}
    data = report.to_dict()
    assert data["errors"][0]["message_zh"] == error.message_zh


def test_every_rule_has_both_texts():
    import messages

    rules = ["malformed_row", "missing_value", "invalid_date", "invalid_timestamp", "invalid_amount",
             "invalid_integer", "invalid_number", "invalid_boolean", "invalid_code", "invalid_region_code",
             "principal_not_positive", "invalid_term", "invalid_rate", "date_in_future", "dpd_negative",
             "outstanding_negative", "invalid_installment_no", "amount_negative", "duplicate_key",
             "inconsistent_schedule", "loan_not_found", "snapshot_before_origination", "row_after_close",
             "missing_column", "duplicate_column", "encoding_unknown", "empty_file", "file_not_found",
             "unsupported_format", "sheet_not_found", "duplicate_loan_id", "encoding_suspect",
             "encoding_mismatch"]
    for rule in rules:
        for part in ("message", "fix"):
            for lang in ("zh", "en"):
                text = messages.t(f"ingest.rule.{rule}.{part}", lang, file="f", line=2, column="c", value="v")
                assert text.strip()


def test_missing_required_column(db_path, tmp_path):
    header = [name for name in LOANS_HEADER if name != "放款日期"]
    rows = [[value for name, value in zip(LOANS_HEADER, row) if name != "放款日期"] for row in LOANS_ROWS]
    files = {"loans": write_csv(tmp_path / "loans.csv", header, rows),
             "loan_months": write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)}
    report = load_files(db_path, files, as_of=AS_OF)
    assert not report.ok
    assert report.counts_by_rule == {"missing_column": 1}
    assert report.errors[0].column == "origination_date"


def test_snapshot_rules(db_path, tmp_path):
    months = [
        ["000123456789012345", "2017-01-31", "0", "100", "正常"],  # before origination month (2017-02)
        ["L0002", "2018-02-28", "0", "100", "正常"],  # after the as-of date
        ["L0003", "2017-03-31", "0", "-1", "正常"],  # negative outstanding
    ]
    report = load_files(db_path, _files(tmp_path, months_rows=months), as_of=AS_OF)
    assert report.counts_by_rule == {"snapshot_before_origination": 1, "date_in_future": 1,
                                     "outstanding_negative": 1}


def test_rows_after_close_rejected_except_recovery(db_path, tmp_path):
    months = [
        ["000123456789012345", "2017-03-31", "0", "0", "结清"],
        ["000123456789012345", "2017-04-30", "0", "0", "结清"],  # after payoff: error
        ["L0002", "2017-03-31", "95", "0", "核销"],
        ["L0002", "2017-04-30", "0", "0", "核销"],  # recovery row after write-off: allowed
        ["L0003", "2017-03-31", "0", "100", "正常"],
    ]
    report = load_files(db_path, _files(tmp_path, months_rows=months), as_of=AS_OF)
    assert report.counts_by_rule == {"row_after_close": 1}
    assert report.errors[0].line == 3


def test_row_after_close_uses_months_in_database(db_path, tmp_path):
    months = [[row[0], "2017-03-31", "0", "0", "结清"] for row in MONTHS_ROWS]
    assert load_files(db_path, _files(tmp_path, months_rows=months), as_of=AS_OF).ok
    april = [["L0002", "2017-04-30", "0", "100", "正常"]]
    report = load_files(db_path, {"loan_months": write_csv(tmp_path / "apr.csv", MONTHS_HEADER, april)},
                        as_of=AS_OF)
    assert report.counts_by_rule == {"row_after_close": 1}


def test_loan_id_may_exist_in_database(db_path, tmp_path):
    assert load_files(db_path, _files(tmp_path), as_of=AS_OF).ok
    april = [[row[0], "2017-04-30", "0", "100", "正常"] for row in MONTHS_ROWS]
    report = load_files(db_path, {"loan_months": write_csv(tmp_path / "apr.csv", MONTHS_HEADER, april)},
                        as_of=AS_OF)
    assert report.ok, report.summary("en")


def test_mapping_headers_and_values(db_path, tmp_path):
    header = ["编号", "发放日", "本金", "产品代码", "贷款五级"]
    rows = [["M1", "2017-02-03", "1000", "A01", "x"], ["M2", "2017-02-03", "2000", "B02", "y"]]
    months = [["M1", "2017-03-31", "0", "900", "ZC"], ["M2", "2017-03-31", "0", "0", "JQ"]]
    mapping = ColumnMapping.from_toml("""
[loans.columns]
"编号" = "loan_id"
"发放日" = "origination_date"
"本金" = "principal"
"产品代码" = "product"

[loans.values.product]
"A01" = "消费贷"

[loan_months.values.status]
"ZC" = "active"
"JQ" = "paid_off"
""")
    path = tmp_path / "mapping.toml"
    save_mapping(mapping, path)
    assert load_mapping(path).to_toml() == mapping.to_toml()
    files = {"loans": write_csv(tmp_path / "loans.csv", header, rows),
             "loan_months": write_csv(tmp_path / "months.csv", MONTHS_HEADER, months)}
    report = load_files(db_path, files, mapping=load_mapping(path), as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert report.files[0].columns_attributes == ["贷款五级"]
    assert table_rows(db_path, "loans", "loan_id, product") == [("M1", "消费贷"), ("M2", "B02")]
    assert table_rows(db_path, "loan_months", "loan_id, status") == [("M1", "active"), ("M2", "paid_off")]
    assert table_rows(db_path, "loan_attributes", "loan_id, attribute, value") == [
        ("M1", "贷款五级", "x"), ("M2", "贷款五级", "y")]


def test_unknown_status_is_error(db_path, tmp_path):
    months = [row[:] for row in MONTHS_ROWS]
    months[0][4] = "M3+"
    report = load_files(db_path, _files(tmp_path, months_rows=months), as_of=AS_OF)
    assert report.counts_by_rule == {"invalid_code": 1}


def test_mapping_rejects_unknown_column():
    with pytest.raises(ValueError, match="not a contract column"):
        ColumnMapping.from_toml('[loans.columns]\n"x" = "nonsense"\n')


def test_load_log_and_remove_load(db_path, tmp_path):
    report = load_files(db_path, _files(tmp_path), as_of=AS_OF)
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        log = list_loads(con)
    finally:
        con.close()
    assert set(log["result"]) == {"loaded"}
    assert len(log) == 2
    assert all(len(value) == 64 for value in log["file_sha256"])
    months_id = report.load_ids["loan_months"]
    assert remove_load(db_path, months_id) == 3
    assert table_rows(db_path, "loan_months") == []
    assert table_rows(db_path, "load_log", "result", "load_id") == [("loaded",), ("removed",)]


def test_usage_errors(db_path, tmp_path):
    with pytest.raises(UsageError):
        load_files(db_path, {"loan_months": tmp_path / "m.csv"})
    with pytest.raises(UsageError):
        load_files(db_path, {"loans": tmp_path / "l.csv"}, mode="lenient")
    with pytest.raises(UsageError):
        load_files(db_path, {"loans": write_csv(tmp_path / "l.csv", LOANS_HEADER, LOANS_ROWS)})


def test_actions_loaded_and_dpd_filled(db_path, tmp_path):
    files = _files(tmp_path, months_rows=[["L0002", "2017-03-31", "20", "5000", "逾期"],
                                          ["L0003", "2017-03-31", "0", "8000.25", "正常"],
                                          ["000123456789012345", "2017-03-31", "0", "100", "正常"]])
    header = ["借据号", "催收时间", "催收方式", "联系对象", "是否接通", "催收结果", "回款金额"]
    rows = [["L0002", "2017-03-25 10:00:00", "电催", "本人", "是", "承诺还款", "0"],
            ["L0002", "2017-03-28 09:30:00", "短信", "本人", "否", "无人接听", ""]]
    files["collection_actions"] = write_csv(tmp_path / "actions.csv", header, rows)
    report = load_files(db_path, files, as_of=AS_OF)
    assert report.ok, report.summary("en")
    # dpd 20 at 2017-03-31 means 14 days on 03-25 and 17 days on 03-28.
    assert table_rows(db_path, "collection_actions", "action_time, channel, contact_target, connected, outcome, "
                                                     "dpd_at_action", "all") == [
        (dt.datetime(2017, 3, 25, 10), "manual_call", "borrower", True, "promise_to_pay", 14),
        (dt.datetime(2017, 3, 28, 9, 30), "sms", "borrower", False, "no_answer", 17),
    ]
    again = load_files(db_path, {"collection_actions": tmp_path / "actions.csv"}, as_of=AS_OF)
    assert again.ok
    assert len(table_rows(db_path, "collection_actions")) == 2


def test_amount_totals_in_load_log(db_path, tmp_path):
    load_files(db_path, _files(tmp_path), as_of=AS_OF)
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        totals = con.execute("select amount_totals from load_log where table_name = 'loans'").fetchone()[0]
    finally:
        con.close()
    assert totals == '{"principal": "25000.75"}'
    assert sum(Decimal(row[2].replace(",", "")) for row in LOANS_ROWS) == Decimal("25000.75")


def test_unreadable_file_logged_as_rejected(db_path, tmp_path):
    files = _files(tmp_path)
    files["collection_actions"] = tmp_path / "actions.csv"
    files["collection_actions"].write_bytes(b"\xff\xfe\xfa\x00\x81")
    report = load_files(db_path, files, mode="quarantine", as_of=AS_OF)
    assert report.counts_by_rule == {"encoding_unknown": 1}
    assert report.errors[0].file == "actions.csv"
    assert table_rows(db_path, "load_log", "table_name, result", "load_id") == [
        ("loans", "loaded"), ("loan_months", "loaded"), ("collection_actions", "rejected")]
