"""Cohort selection and download files (analysis/cohort.py, queries/cohort.sql).

Expected values are worked out by hand from the rows in tests/fixtures_data.py.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import openpyxl
import pandas as pd
import pytest

from analysis import cohort, export
from analysis.filters import Filters
from queries import db
from tests.fixtures_data import LEADING_ZERO_CODE, LONG_LOAN_ID, build_portfolio

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def portfolio(tmp_path: Path) -> Path:
    return build_portfolio(tmp_path / "portfolio.duckdb")


@pytest.fixture(scope="module")
def shared_portfolio(tmp_path_factory) -> Path:
    """One portfolio for the tests that only read it."""
    return build_portfolio(tmp_path_factory.mktemp("shared") / "portfolio.duckdb")


@pytest.fixture
def read_only_con(shared_portfolio: Path):
    connection = db.connect(shared_portfolio, read_only=True)
    yield connection
    connection.close()


def _ids(con, **kwargs) -> list[str]:
    return sorted(cohort.select_loans(con, cohort.CohortFilters(**kwargs)).loans["loan_id"])


def test_selection_state_at_latest_month(read_only_con):
    selection = cohort.select_loans(read_only_con, cohort.CohortFilters())
    loans = selection.loans.set_index("loan_id")
    assert selection.as_of == dt.date(2026, 9, 30)
    assert loans.loc[LONG_LOAN_ID, "bucket_as_of"] == "M2"
    assert loans.loc["L0002", "bucket_as_of"] == "PAID"
    assert loans.loc["L0003", "bucket_as_of"] == "C"
    assert loans.loc["L0004", "bucket_as_of"] == "WO"
    assert loans.loc["L0005", "bucket_as_of"] == "M1"
    assert selection.balance == pytest.approx(8500 + 7000 + 2900)
    assert selection.loan_month_count == 13
    assert loans.loc["L0004", "max_dpd"] == 70


def test_selection_earlier_as_of(read_only_con):
    selection = cohort.select_loans(read_only_con, cohort.CohortFilters(base=Filters(as_of=dt.date(2026, 8, 31))))
    loans = selection.loans.set_index("loan_id")
    assert loans.loc[LONG_LOAN_ID, "bucket_as_of"] == "M1"
    assert loans.loc["L0004", "bucket_as_of"] == "M2"
    assert selection.balance == pytest.approx(8500 + 7500 + 2000 + 3000)
    assert selection.loan_month_count == 9


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"cities": ("杭州市",)}, ["L0003", "L0004"]),
        ({"buckets": ("M2",)}, [LONG_LOAN_ID]),
        ({"buckets": ("C", "WO")}, ["L0003", "L0004"]),
        ({"ever_dpd": 0}, [LONG_LOAN_ID, "L0004", "L0005"]),
        ({"ever_dpd": 30}, [LONG_LOAN_ID, "L0004"]),
        ({"ever_dpd": 60}, ["L0004"]),
        ({"strategies": ("challenger",)}, ["L0004"]),  # L0005's action is after the as-of month
        ({"strategies": ("champion", "challenger")}, [LONG_LOAN_ID, "L0004"]),
        ({"attributes": (("网点代码", (LEADING_ZERO_CODE,)),)}, [LONG_LOAN_ID, "L0003"]),
        (
            {"attributes": (("网点代码", (LEADING_ZERO_CODE,)), ("客户类型", ("新客",)))},
            [LONG_LOAN_ID],
        ),
        (
            {"attributes": (("网点代码", (LEADING_ZERO_CODE,)), ("客户类型", ("新客", "老客")))},
            [LONG_LOAN_ID, "L0003"],
        ),
        ({"base": Filters(products=("经营贷",), grades=("C",))}, ["L0004"]),
        ({"base": Filters(vintage_from=dt.date(2026, 7, 1), vintage_to=dt.date(2026, 7, 1))}, ["L0003", "L0004"]),
    ],
)
def test_selection_filters(read_only_con, kwargs, expected):
    assert _ids(read_only_con, **kwargs) == sorted(expected)


HOSTILE_VALUES = [
    "深圳市'; drop table loans; --",
    "' or '1'='1",
    "A\" or \"1\"=\"1",
    "select * from loans",
    "%",
    "*",
]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_filter_values_select_nothing(shared_portfolio, value):
    con = db.connect(shared_portfolio, read_only=True)
    try:
        assert _ids(con, cities=(value,)) == []
        assert _ids(con, strategies=(value,)) == []
        assert _ids(con, attributes=((value, (value,)),)) == []
        assert _ids(con, attributes=(("网点代码", (value,)),)) == []
        assert _ids(con, base=Filters(products=(value,), provinces=(value,))) == []
    finally:
        con.close()
    con = db.connect(shared_portfolio, read_only=True)
    try:
        assert con.execute("select count(*) from loans").fetchone()[0] == 5
        assert con.execute("select count(*) from loan_months").fetchone()[0] == 13
    finally:
        con.close()


def test_unknown_bucket_rejected(read_only_con):
    with pytest.raises(ValueError, match="invalid bucket label"):
        cohort.select_loans(read_only_con, cohort.CohortFilters(buckets=("M99",)))


@pytest.mark.parametrize(
    "columns",
    [["loan_id", "principal; drop table loans"], ["name"], ["attr:不存在"], [], ["loan_id", "loan_id"]],
)
def test_columns_outside_allow_list_rejected(read_only_con, columns):
    selection = cohort.select_loans(read_only_con, cohort.CohortFilters())
    with pytest.raises(ValueError):
        cohort.cohort_table(read_only_con, selection, "loan", columns)


def test_grain_checked(read_only_con):
    with pytest.raises(ValueError, match="grain"):
        cohort.allowed_columns(read_only_con, "borrower")


def test_loan_month_table(read_only_con):
    selection = cohort.select_loans(read_only_con, cohort.CohortFilters(cities=("杭州市",)))
    table = cohort.cohort_table(
        read_only_con, selection, "loan-month", ["loan_id", "snapshot_date", "bucket", "mob", "product", "attr:网点代码"]
    )
    assert len(table) == 6
    l4 = table[table["loan_id"] == "L0004"].set_index("snapshot_date")["bucket"]
    assert list(l4) == ["C", "M2", "WO"]
    l3 = table[table["loan_id"] == "L0003"]
    assert list(l3["mob"]) == [0, 1, 2]  # originated 2026-07: July is MOB 0
    assert set(l3["attr:网点代码"]) == {LEADING_ZERO_CODE}
    assert table[table["loan_id"] == "L0004"]["attr:网点代码"].isna().all()


def test_xlsx_keeps_ids_and_codes_as_text(read_only_con, tmp_path):
    selection = cohort.select_loans(read_only_con, cohort.CohortFilters())
    table = cohort.cohort_table(read_only_con, selection, "loan", ["loan_id", "origination_date", "attr:网点代码"])
    path = tmp_path / "cohort.xlsx"
    path.write_bytes(export.table_bytes(table, "xlsx"))
    sheet = openpyxl.load_workbook(path).active
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    assert rows[LONG_LOAN_ID][0].data_type == "s"
    assert rows[LONG_LOAN_ID][2].value == LEADING_ZERO_CODE
    assert rows[LONG_LOAN_ID][1].is_date
    assert rows[LONG_LOAN_ID][1].value.date() == dt.date(2026, 6, 15)


def test_csv_has_bom_and_chinese(read_only_con):
    selection = cohort.select_loans(read_only_con, cohort.CohortFilters())
    table = cohort.cohort_table(read_only_con, selection, "loan", ["loan_id", "product", "city"])
    data = export.table_bytes(table, "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype=str)
    assert "深圳市" in set(back["city"])
    assert LONG_LOAN_ID in set(back["loan_id"])


def test_record_download_row(portfolio):
    con = db.connect(portfolio)
    try:
        cohort.record_download(
            con,
            user_name="analyst",
            filters=cohort.CohortFilters(cities=("深圳市",)),
            grain="loan",
            columns=["loan_id"],
            file_format="csv",
            row_count=1,
            sha256="ab" * 32,
        )
        audit = cohort.list_downloads(con)
    finally:
        con.close()
    assert len(audit) == 1
    assert audit.loc[0, "user_name"] == "analyst"
    assert json.loads(audit.loc[0, "filters"])["cities"] == ["深圳市"]


def _run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", "cohort", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def run_in_process(monkeypatch, capsys):
    """Run `python -m analysis cohort` in this process; return (exit code, stderr).

    The audit row is written by the command's after_write hook inside main.
    """
    from analysis import cli

    def run(*arguments: str) -> tuple[int, str]:
        code = cli.main(["cohort", *arguments])
        return code, capsys.readouterr().err

    return run


def _audit(portfolio: Path) -> pd.DataFrame:
    con = db.connect(portfolio, read_only=True)
    try:
        return cohort.list_downloads(con)
    finally:
        con.close()


def test_cli_subprocess_writes_xlsx_and_audit_row(portfolio, tmp_path):
    out = tmp_path / "cohort.xlsx"
    result = _run_cli(
        "--db", str(portfolio), "--out", str(out), "--ever-dpd", "30",
        "--attribute", f"网点代码={LEADING_ZERO_CODE}", "--columns", "loan_id,bucket_as_of,attr:网点代码",
    )
    assert result.returncode == 0, result.stderr
    audit = _audit(portfolio)
    assert len(audit) == 1
    assert audit.loc[0, "row_count"] == 1  # ever 30+ and 网点代码 000123: only the long id
    assert audit.loc[0, "file_sha256"] == cohort.file_sha256(out.read_bytes())
    assert audit.loc[0, "columns"] == "loan_id,bucket_as_of,attr:网点代码"
    sheet = openpyxl.load_workbook(out).active
    assert [cell.value for cell in sheet[2]] == [LONG_LOAN_ID, "M2", LEADING_ZERO_CODE]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_cli_formats_audited(portfolio, tmp_path, suffix, run_in_process):
    out = tmp_path / f"cohort.{suffix}"
    code, stderr = run_in_process("--db", str(portfolio), "--out", str(out), "--bucket", "C,M1")
    assert code == 0, stderr
    audit = _audit(portfolio)
    assert len(audit) == 1
    assert audit.loc[0, "row_count"] == 2  # L0003 (C) and L0005 (M1)
    assert audit.loc[0, "file_format"] == suffix
    assert audit.loc[0, "file_sha256"] == cohort.file_sha256(out.read_bytes())


def test_cli_loan_month_grain(portfolio, tmp_path, run_in_process):
    out = tmp_path / "months.csv"
    code, stderr = run_in_process("--db", str(portfolio), "--out", str(out), "--grain", "loan-month", "--city", "杭州市")
    assert code == 0, stderr
    back = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    assert len(back) == 6
    assert _audit(portfolio).loc[0, "grain"] == "loan-month"


def test_cli_rejects_unknown_column(portfolio, tmp_path, run_in_process):
    code, stderr = run_in_process("--db", str(portfolio), "--out", str(tmp_path / "x.csv"), "--columns", "loan_id,id_card")
    assert code == 2  # a usage error: the column is not on the allow-list
    assert "id_card" in stderr
    assert len(_audit(portfolio)) == 0


def test_cli_requires_out(portfolio, run_in_process):
    code, stderr = run_in_process("--db", str(portfolio))
    assert code == 2
    assert "--out" in stderr


def test_cli_hostile_values_change_nothing(portfolio, tmp_path, run_in_process):
    out = tmp_path / "x.csv"
    code, stderr = run_in_process(
        "--db", str(portfolio), "--out", str(out), "--city", "x'); delete from loans; --",
        "--attribute", "a=b' or '1'='1",
    )
    assert code == 0, stderr
    assert len(pd.read_csv(out, encoding="utf-8-sig")) == 0
    con = duckdb.connect(str(portfolio), read_only=True)
    try:
        assert con.execute("select count(*) from loans").fetchone()[0] == 5
    finally:
        con.close()
    assert _audit(portfolio).loc[0, "row_count"] == 0


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"cities": ("杭州市",)}, {"ever_dpd": 0}, {"base": Filters(as_of=dt.date(2026, 8, 31))}, {"cities": ("无",)}],
)
def test_summary_matches_selection(read_only_con, kwargs):
    filters = cohort.CohortFilters(**kwargs)
    summary = cohort.summarise(read_only_con, filters)
    selection = cohort.select_loans(read_only_con, filters)
    assert summary.as_of == selection.as_of
    assert summary.loan_count == selection.loan_count
    assert summary.balance == pytest.approx(selection.balance)
    assert summary.loan_month_count == selection.loan_month_count
