"""Streamed cohort files (cohort.write_download, export.export_query).

Expected values: the loan-grain rows are compared with a plain pandas reimplementation of
the cohort state on a random tape (fixed seed). The format checks use the hand-made
portfolio of tests/fixtures_data.py, with values worked out by hand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import openpyxl
import pandas as pd
import pytest

from analysis import cohort, export
from analysis.filters import Filters
from ingest import facts
from queries import db
from tests.fixtures_data import LEADING_ZERO_CODE, LONG_LOAN_ID, build_portfolio

@pytest.fixture(scope="module")
def portfolio(tmp_path_factory):
    return build_portfolio(tmp_path_factory.mktemp("stream") / "portfolio.duckdb")


@pytest.fixture
def con(portfolio):
    connection = db.connect(portfolio, read_only=True)
    yield connection
    connection.close()


@pytest.mark.parametrize("file_format", ["csv", "parquet", "xlsx", "json"])
def test_written_file_hash_and_rows(con, tmp_path, file_format):
    path = tmp_path / f"cohort.{file_format}"
    written = cohort.write_download(con, cohort.CohortFilters(), "loan", ["loan_id", "bucket_as_of"], path)
    assert written.row_count == 5
    assert written.columns == ("loan_id", "bucket_as_of")
    assert written.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no partial file left


def test_csv_starts_with_bom_and_keeps_ids(con, tmp_path):
    path = tmp_path / "cohort.csv"
    cohort.write_download(con, cohort.CohortFilters(), "loan", ["loan_id", "attr:网点代码", "principal"], path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str).set_index("loan_id")
    assert back.loc[LONG_LOAN_ID, "attr:网点代码"] == LEADING_ZERO_CODE
    assert float(back.loc[LONG_LOAN_ID, "principal"]) == 10000.0


def test_json_records_match_hand_values(con, tmp_path):
    path = tmp_path / "cohort.json"
    cohort.write_download(con, cohort.CohortFilters(), "loan", ["loan_id", "origination_date", "max_dpd"], path)
    records = {record["loan_id"]: record for record in json.loads(path.read_text(encoding="utf-8"))}
    assert records[LONG_LOAN_ID]["origination_date"] == "2026-06-15"
    assert records["L0004"]["max_dpd"] == 70


def test_xlsx_dates_and_text_ids(con, tmp_path):
    path = tmp_path / "cohort.xlsx"
    cohort.write_download(con, cohort.CohortFilters(), "loan", ["loan_id", "origination_date", "attr:网点代码"], path)
    sheet = openpyxl.load_workbook(path).active
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    assert rows[LONG_LOAN_ID][0].data_type == "s"
    assert rows[LONG_LOAN_ID][1].is_date
    assert rows[LONG_LOAN_ID][2].value == LEADING_ZERO_CODE


def test_xlsx_over_sheet_limit_leaves_no_file(con, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "EXCEL_MAX_ROWS", 4)  # header + 3 rows; the cohort has 5
    path = tmp_path / "cohort.xlsx"
    with pytest.raises(ValueError, match="Excel sheet"):
        cohort.write_download(con, cohort.CohortFilters(), "loan", ["loan_id"], path)
    assert list(tmp_path.iterdir()) == []


def test_loan_month_source_and_detail_columns(con, tmp_path):
    path = tmp_path / "months.parquet"
    columns = ["loan_id", "snapshot_date", "bucket", "overdue_interest", "is_derived", "annual_rate", "principal"]
    cohort.write_download(con, cohort.CohortFilters(cities=("杭州市",)), "loan-month", columns, path)
    table = pd.read_parquet(path)
    assert list(table.columns) == columns
    assert len(table) == 6  # L0003 and L0004, three month-ends each
    assert list(table.loc[table["loan_id"] == "L0004", "bucket"]) == ["C", "M2", "WO"]
    assert table["is_derived"].eq(False).all()
    assert table["principal"].dtype == np.float64


def test_unknown_column_rejected_before_writing(con, tmp_path):
    path = tmp_path / "x.csv"
    with pytest.raises(ValueError, match="id_card"):
        cohort.write_download(con, cohort.CohortFilters(), "loan", ["loan_id", "id_card"], path)
    assert not path.exists()


# --- random tape against a pandas reimplementation ------------------------------------

def _random_tape(path, seed: int = 7, loans: int = 150):
    """Write a random tape with gaps in the month-end rows; return (loans, months) frames."""
    rng = np.random.default_rng(seed)
    month_ends = pd.date_range("2025-01-31", "2026-09-30", freq="ME")
    loan_rows, month_rows = [], []
    for number in range(loans):
        loan_id = f"R{number:05d}"
        start = int(rng.integers(0, len(month_ends) - 1))
        origination = (month_ends[start] - pd.Timedelta(days=int(rng.integers(1, 27)))).date()
        loan_rows.append((loan_id, origination, float(rng.integers(10, 500) * 100),
                          str(rng.choice(["消费贷", "经营贷"])), str(rng.choice(["A", "B"])), str(rng.choice(["深圳市", "杭州市"]))))
        dpd = 0
        for index in range(start, min(len(month_ends), start + int(rng.integers(1, 18)))):
            if rng.random() < 0.1:
                continue  # a missing month-end
            dpd = max(0, dpd + int(rng.choice([-30, 0, 0, 15, 31])))
            status = "active"
            if rng.random() < 0.04:
                status = "charged_off" if dpd > 60 else "paid_off"
            month_rows.append((loan_id, month_ends[index].date(), dpd, 1000.0 if status == "active" else 0.0, status))
            if status != "active":
                break
    con = db.connect(path)
    try:
        con.execute(
            "insert into load_log (load_id, table_name, file_name, file_sha256, mode, started_at, "
            "finished_at, rows_read, rows_loaded, result) values (1, 'loans', 'r.csv', 'x', 'strict', "
            "now(), now(), 1, 1, 'loaded')"
        )
        con.executemany(
            "insert into loans (loan_id, origination_date, principal, product, grade, city, load_id) "
            "values (?, ?, ?, ?, ?, ?, 1)",
            loan_rows,
        )
        con.executemany(
            "insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, status, load_id) "
            "values (?, ?, ?, ?, ?, 1)",
            month_rows,
        )
        facts.rebuild(con)
    finally:
        con.close()
    loans_frame = pd.DataFrame(loan_rows, columns=["loan_id", "origination_date", "principal", "product", "grade", "city"])
    months_frame = pd.DataFrame(month_rows, columns=["loan_id", "snapshot_date", "dpd", "outstanding_principal", "status"])
    return loans_frame, months_frame


def _pandas_state(loans: pd.DataFrame, months: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Loan state at ``as_of`` computed row by row in pandas, default buckets 30/60/.../180."""
    labels = ["C", "M1", "M2", "M3", "M4", "M5", "M6", "M7+", "PAID", "WO"]
    bounds = [30, 60, 90, 120, 150, 180]
    rows = []
    for loan in loans.itertuples():
        history = months[(months["loan_id"] == loan.loan_id) & (months["snapshot_date"] <= as_of)]
        history = history.sort_values("snapshot_date")
        at = history[history["snapshot_date"] == as_of]
        last_status = history["status"].iloc[-1] if len(history) else None
        dpd = int(at["dpd"].iloc[0]) if len(at) else None
        if last_status == "paid_off":
            bucket = "PAID"
        elif last_status == "charged_off":
            bucket = "WO"
        elif dpd is None:
            bucket = None
        else:
            bucket = labels[0 if dpd <= 0 else 1 + sum(b < dpd for b in bounds)]
        if last_status in ("paid_off", "charged_off"):
            balance = 0.0
        elif len(at):
            balance = float(at["outstanding_principal"].iloc[0])
        else:
            balance = None
        rows.append({
            "loan_id": loan.loan_id,
            "mob": (as_of.year - loan.origination_date.year) * 12 + as_of.month - loan.origination_date.month,
            "status_as_of": last_status,
            "dpd_as_of": dpd,
            "bucket_as_of": bucket,
            "outstanding_principal_as_of": balance,
            "max_dpd": int(history["dpd"].max()) if len(history) else None,
            "ever_charged_off": bool((history["status"] == "charged_off").any()),
            "months_observed": len(history),
        })
    return pd.DataFrame(rows).sort_values("loan_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def random_tape(tmp_path_factory):
    path = tmp_path_factory.mktemp("random") / "random.duckdb"
    loans, months = _random_tape(path)
    return path, loans, months


@pytest.mark.parametrize("as_of", [dt.date(2026, 9, 30), dt.date(2025, 12, 31)])
def test_loan_state_matches_pandas(random_tape, tmp_path, as_of):
    db_path, loans, months = random_tape
    expected = _pandas_state(loans, months, as_of)
    columns = list(expected.columns)
    con = db.connect(db_path, read_only=True)
    try:
        path = tmp_path / "state.parquet"
        cohort.write_download(con, cohort.CohortFilters(base=Filters(as_of=as_of)), "loan", columns, path)
    finally:
        con.close()
    actual = pd.read_parquet(path)
    assert list(actual["loan_id"]) == list(expected["loan_id"])
    for column in columns[1:]:
        left = actual[column].astype(object).where(actual[column].notna(), None).tolist()
        right = expected[column].astype(object).where(expected[column].notna(), None).tolist()
        assert left == right, column
