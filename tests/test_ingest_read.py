"""Import tests: encodings, file forms, value parsing and line numbers.

Expected values are written by hand from the input rows, or summed independently with
Python's Decimal from the same CSV text.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from decimal import Decimal
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.api import load_files
from tests.fixtures_ingest import (  # noqa: F401  (secret_file is an autouse fixture)
    LOANS_HEADER,
    LOANS_ROWS,
    MONTHS_HEADER,
    MONTHS_ROWS,
    secret_file,
    table_rows,
    write_csv,
)

AS_OF = "2017-12-31"


def _load(db_path, tmp_path, loans_rows, *, loans_header=LOANS_HEADER, encoding="utf-8", delimiter=",",
          months_rows=MONTHS_ROWS, mode="strict", name="loans.csv"):
    loans = write_csv(tmp_path / name, loans_header, loans_rows, encoding=encoding, delimiter=delimiter)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, months_rows)
    return load_files(db_path, {"loans": loans, "loan_months": months}, mode=mode, as_of=AS_OF)


def test_encodings_gbk_gb18030_bom_identical(tmp_path):
    results = {}
    for encoding in ("gbk", "gb18030", "utf-8-sig", "utf-8"):
        folder = tmp_path / encoding
        folder.mkdir()
        report = _load(folder / "db.duckdb", folder, LOANS_ROWS, encoding=encoding)
        assert report.ok, report.summary("en")
        results[encoding] = table_rows(folder / "db.duckdb", "loans")
        expected_encoding = {"gbk": "gb18030", "gb18030": "gb18030", "utf-8-sig": "utf-8-sig", "utf-8": "utf-8"}
        assert report.files[0].encoding == expected_encoding[encoding]
    assert results["gbk"] == results["utf-8-sig"]
    assert results["gb18030"] == results["utf-8-sig"]
    assert results["utf-8"] == results["utf-8-sig"]
    assert results["gbk"][0][0] == "000123456789012345"


def test_gb18030_character_outside_gbk(tmp_path):
    rows = [row[:] for row in LOANS_ROWS]
    rows[0][5] = "䶮𠀀贷"  # neither character exists in GBK
    with pytest.raises(UnicodeEncodeError):
        "䶮".encode("gbk")
    stored = {}
    for encoding in ("gb18030", "utf-8-sig"):
        folder = tmp_path / encoding
        folder.mkdir()
        report = _load(folder / "db.duckdb", folder, rows, encoding=encoding)
        assert report.ok, report.summary("en")
        stored[encoding] = table_rows(folder / "db.duckdb", "loans", "loan_id, product")
    assert stored["gb18030"] == stored["utf-8-sig"]
    assert ("000123456789012345", "䶮𠀀贷") in stored["gb18030"]


@pytest.mark.parametrize("delimiter", ["\t", ";", "|"])
def test_delimiter_sniffed(db_path, tmp_path, delimiter):
    report = _load(db_path, tmp_path, LOANS_ROWS, delimiter=delimiter)
    assert report.ok, report.summary("en")
    assert report.files[0].delimiter == delimiter
    assert len(table_rows(db_path, "loans")) == 3


def test_null_tokens(db_path, tmp_path):
    rows = [row[:] for row in LOANS_ROWS]
    rows[0][3] = "\\N"
    rows[1][3] = "NA"
    rows[2][3] = ""
    rows[0][5] = "NULL"
    rows[1][5] = "—"
    report = _load(db_path, tmp_path, rows)
    assert report.ok, report.summary("en")
    assert table_rows(db_path, "loans", "loan_id, term_months, product") == [
        ("000123456789012345", None, None),
        ("L0002", None, None),
        ("L0003", None, "消费贷"),
    ]


def test_date_forms_csv(db_path, tmp_path):
    forms = ["2017-02-03", "2017/2/3", "20170203", "2017年2月3日", "2017-02-03 10:00:00"]
    rows = [[f"D{i}", form, "1000", "12", "0.18", "p", "广东"] for i, form in enumerate(forms)]
    months = [[f"D{i}", "2017-03-31", "0", "1000", "正常"] for i in range(len(forms))]
    report = _load(db_path, tmp_path, rows, months_rows=months)
    assert report.ok, report.summary("en")
    dates = {row[1] for row in table_rows(db_path, "loans", "loan_id, origination_date")}
    assert dates == {dt.date(2017, 2, 3)}


def test_impossible_and_ambiguous_dates_rejected(db_path, tmp_path):
    rows = [row[:] for row in LOANS_ROWS]
    rows[0][1] = "2017-02-30"
    rows[1][1] = "03/05/2017"
    report = _load(db_path, tmp_path, rows)
    assert not report.ok
    assert report.counts_by_rule == {"invalid_date": 2}
    lines = sorted(error.line for error in report.errors)
    assert lines == [2, 3]


def test_far_future_sentinel_is_no_date(db_path, tmp_path):
    header = ["借据号", "期次", "应还日期", "应还本金", "还款日期", "实还本金"]
    rows = [
        ["L0002", "1", "2017-04-05", "2500", "9999-12-31", "0"],
        ["L0002", "2", "2017-05-05", "2500", "2017-05-05", "2500"],
    ]
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS)
    installments = write_csv(tmp_path / "inst.csv", header, rows)
    report = load_files(db_path, {"loans": loans, "installments": installments}, as_of=AS_OF)
    assert report.ok, report.summary("en")
    paid = table_rows(db_path, "installments", "installment_no, paid_date")
    assert paid == [(1, None), (2, dt.date(2017, 5, 5))]


def test_xlsx_dates_and_excel_serial(db_path, tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "放款明细"
    sheet.append(LOANS_HEADER)
    sheet.append(["X1", dt.datetime(2017, 2, 3), 1000, 12, 0.18, "p", "广东"])  # date cell
    sheet.append(["X2", 42769, 1000.5, 12, 0.18, "p", "广东"])  # Excel serial 42769 = 2017-02-03
    sheet.append(["X3", "2017年2月3日", "1,000", 12, 0.18, "p", "广东"])
    sheet.append(["X4", "20170203", "¥1000", 12, 0.18, "p", "广东"])
    path = tmp_path / "loans.xlsx"
    workbook.save(path)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER,
                       [[f"X{i}", "2017-03-31", "0", "900", "正常"] for i in range(1, 5)])
    report = load_files(db_path, {"loans": path, "loan_months": months}, as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert report.files[0].sheet == "放款明细"
    rows = table_rows(db_path, "loans", "loan_id, origination_date, principal")
    assert rows == [
        ("X1", dt.date(2017, 2, 3), Decimal("1000.00")),
        ("X2", dt.date(2017, 2, 3), Decimal("1000.50")),
        ("X3", dt.date(2017, 2, 3), Decimal("1000.00")),
        ("X4", dt.date(2017, 2, 3), Decimal("1000.00")),
    ]


def test_amount_forms_and_wanyuan_header(db_path, tmp_path):
    header = ["借据号", "放款日期", "放款金额（万元）", "期数", "年利率", "产品", "省份"]
    rows = [
        ["A1", "2017-02-03", "1.25", "12", "0.18", "p", "广东"],
        ["A2", "2017-02-03", "1,234.5678", "12", "0.18", "p", "广东"],
    ]
    months = [["A1", "2017-03-31", "0", "¥12,000.50", "正常"], ["A2", "2017-03-31", "0", "3000元", "正常"]]
    report = _load(db_path, tmp_path, rows, loans_header=header, months_rows=months)
    assert report.ok, report.summary("en")
    assert table_rows(db_path, "loans", "loan_id, principal") == [
        ("A1", Decimal("12500.00")),
        ("A2", Decimal("12345678.00")),
    ]
    assert table_rows(db_path, "loan_months", "loan_id, outstanding_principal") == [
        ("A1", Decimal("12000.50")),
        ("A2", Decimal("3000.00")),
    ]


def test_amount_value_in_wanyuan(db_path, tmp_path):
    rows = [row[:] for row in LOANS_ROWS]
    rows[1][2] = "0.5万元"
    report = _load(db_path, tmp_path, rows)
    assert report.ok, report.summary("en")
    assert ("L0002", Decimal("5000.00")) in table_rows(db_path, "loans", "loan_id, principal")


def test_footer_row_excluded_and_reported(db_path, tmp_path):
    rows = LOANS_ROWS + [["合计", "", "25,000.75", "", "", "", ""]]
    report = _load(db_path, tmp_path, rows)
    assert report.ok, report.summary("en")
    loans_report = report.files[0]
    assert loans_report.footer_rows == 1
    assert loans_report.footer_lines == [5]
    assert loans_report.rows_read == 4
    assert loans_report.rows_loaded == 3
    assert len(table_rows(db_path, "loans")) == 3


def test_loan_id_leading_zeros_exact(db_path, tmp_path):
    report = _load(db_path, tmp_path, LOANS_ROWS)
    assert report.ok
    ids = [row[0] for row in table_rows(db_path, "loans", "loan_id")]
    assert "000123456789012345" in ids


def test_types_from_whole_file_after_row_25000(db_path, tmp_path):
    count = 30_000
    rows = [[f"{i:08d}", "2017-02-03", str(1000 + i), "12", "0.18", "p", "广东"] for i in range(count)]
    rows[27_000][2] = "2500.75"  # a decimal in an integer-looking amount column
    rows[28_000][0] = "0002800A"  # a letter in an id column that looked numeric
    months = [[row[0], "2017-03-31", "0", "100", "正常"] for row in rows]
    report = _load(db_path, tmp_path, rows, months_rows=months)
    assert report.ok, report.summary("en")
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        assert con.execute("select principal from loans where loan_id = ?", [rows[27_000][0]]).fetchone()[0] == \
            Decimal("2500.75")
        assert con.execute("select count(*) from loans where loan_id = '0002800A'").fetchone()[0] == 1
        assert con.execute("select count(*) from loans where loan_id = '00000007'").fetchone()[0] == 1
    finally:
        con.close()


def test_totals_reconcile_to_fen(db_path, tmp_path):
    generator = random.Random(20261204)
    rows = []
    for i in range(2_000):
        amount = Decimal(generator.randint(100_00, 500_000_00)) / 100
        rows.append([f"T{i}", "2017-02-03", f"{amount:,.2f}", "12", "0.18", "p", "广东"])
    months = [[row[0], "2017-03-31", "0", row[2], "正常"] for row in rows]
    report = _load(db_path, tmp_path, rows, months_rows=months)
    assert report.ok, report.summary("en")
    # Independent total: Python Decimal over the file text.
    with (tmp_path / "loans.csv").open(encoding="utf-8") as handle:
        expected = sum(Decimal(row["放款金额(元)"].replace(",", "")) for row in csv.DictReader(handle))
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        stored = con.execute("select sum(principal) from loans").fetchone()[0]
        logged = con.execute("select amount_totals from load_log where table_name = 'loans'").fetchone()[0]
    finally:
        con.close()
    assert stored == expected
    assert report.files[0].amount_totals["principal"] == f"{expected:.2f}"
    assert f'"{expected:.2f}"' in logged


def test_rate_scale_decided_per_column(db_path, tmp_path):
    rows = [row[:] for row in LOANS_ROWS]
    rows[0][4], rows[1][4], rows[2][4] = "0.5", "18", "18.0％"
    report = _load(db_path, tmp_path, rows)
    assert report.ok, report.summary("en")
    assert report.files[0].rate_scale == {"annual_rate": "percent"}
    rates = [row[1] for row in table_rows(db_path, "loans", "loan_id, annual_rate")]
    assert rates == pytest.approx([0.005, 0.18, 0.18])


def test_multiline_cell_keeps_line_numbers(db_path, tmp_path):
    header = LOANS_HEADER + ["备注"]
    rows = [row + ["ok"] for row in LOANS_ROWS]
    rows[0][7] = "第一行\n第二行\n第三行"
    rows[2][2] = "abc"  # invalid amount on the fourth record, which starts on physical line 6
    path = tmp_path / "loans.csv"
    write_csv(path, header, rows)
    assert path.read_text(encoding="utf-8").splitlines()[5].startswith("L0003")
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    report = load_files(db_path, {"loans": path, "loan_months": months}, as_of=AS_OF)
    assert report.counts_by_rule == {"invalid_amount": 1}
    assert report.errors[0].line == 6


def test_blank_line_keeps_line_numbers(db_path, tmp_path):
    path = tmp_path / "loans.csv"
    lines = [",".join(LOANS_HEADER), ",".join(LOANS_ROWS[0]).replace("12,000.50", "12000.50"), "",
             ",".join(LOANS_ROWS[1]), ",".join(LOANS_ROWS[2]).replace("8000.25", "x")]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    report = load_files(db_path, {"loans": path, "loan_months": months}, as_of=AS_OF)
    assert report.counts_by_rule == {"invalid_amount": 1}
    assert report.errors[0].line == 5


def test_parquet_input(db_path, tmp_path):
    table = pa.table({
        "loan_id": ["P1", "P2"],
        "origination_date": [dt.date(2017, 2, 3), dt.date(2017, 3, 1)],
        "principal": pa.array([Decimal("1000.10"), Decimal("2000.20")], type=pa.decimal128(18, 2)),
        "annual_rate": [0.18, 0.2],
    })
    path = tmp_path / "loans.parquet"
    pq.write_table(table, path)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER,
                       [["P1", "2017-03-31", "0", "900", "正常"], ["P2", "2017-03-31", "0", "2000.20", "正常"]])
    report = load_files(db_path, {"loans": path, "loan_months": months}, as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert table_rows(db_path, "loans", "loan_id, origination_date, principal, annual_rate") == [
        ("P1", dt.date(2017, 2, 3), Decimal("1000.10"), 0.18),
        ("P2", dt.date(2017, 3, 1), Decimal("2000.20"), 0.2),
    ]


def test_small_chunks_keep_blank_lines_and_encoding(db_path, tmp_path, monkeypatch):
    from ingest import readers

    monkeypatch.setattr(readers, "CHUNK_BYTES", 7)  # chunk borders fall inside lines and characters
    lines = [",".join(LOANS_HEADER), ",".join(LOANS_ROWS[0]).replace("12,000.50", "12000.50"), "", "",
             ",".join(LOANS_ROWS[1]), "", ",".join(LOANS_ROWS[2]).replace("8000.25", "坏")]
    path = tmp_path / "loans.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("gb18030"))
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    report = load_files(db_path, {"loans": path, "loan_months": months}, as_of=AS_OF)
    assert report.files[0].encoding == "gb18030"
    assert report.counts_by_rule == {"invalid_amount": 1}
    assert report.errors[0].line == 7
    assert report.errors[0].value == "坏"


def test_gbk_after_long_ascii_start(db_path, tmp_path):
    # The first 256 KiB are ASCII, so only DuckDB's reader sees the GBK bytes further on.
    rows = [[f"A{i:06d}", "2017-02-03", "1000", "12", "0.18", "p", "x"] for i in range(12_000)]
    rows.append(["A999999", "2017-02-03", "1000", "12", "0.18", "消费贷", "广东"])
    months = [[row[0], "2017-03-31", "0", "100", "正常"] for row in rows]
    report = _load(db_path, tmp_path, rows, encoding="gbk", months_rows=months)
    assert report.ok, report.summary("en")
    assert report.files[0].encoding == "gb18030"
    assert ("A999999", "消费贷") in table_rows(db_path, "loans", "loan_id, product")


def test_sub_fen_amounts_rounded_with_warning(db_path, tmp_path):
    rows = [row[:] for row in LOANS_ROWS]
    rows[1][2] = "5000.125"
    report = _load(db_path, tmp_path, rows)
    assert report.ok, report.summary("en")
    assert ("L0002", Decimal("5000.13")) in table_rows(db_path, "loans", "loan_id, principal")
    assert report.files[0].warnings == [
        "放款金额(元): 1 value(s) have more than two decimals and were rounded to the fen"]
