"""End-to-end runs of the example converters through `python -m ingest load`.

Each test converts a real data set, imports it with the command line and compares the
database with a plain pandas read of the source file (the independent reference).
"""

from __future__ import annotations

import subprocess
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest

from queries import db

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _convert_and_load(script: str, out: Path, db_file: Path) -> None:
    result = subprocess.run(
        [sys.executable, f"examples/{script}", "--out", str(out), "--db", str(db_file), "--load"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"


def _scalar(db_file: Path, sql: str):
    con = db.connect(db_file, read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _fen(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _load_log_errors(db_file: Path) -> int:
    return _scalar(db_file, "select count(*) from load_log where result <> 'loaded'")


def test_uci_taiwan_loads_whole_panel(realdata, tmp_path):
    source = pd.read_csv(realdata / "uci-taiwan-credit-card" / "UCI_Credit_Card.csv")
    db_file = tmp_path / "uci.duckdb"
    _convert_and_load("uci_taiwan.py", tmp_path / "tape", db_file)

    assert _load_log_errors(db_file) == 0
    assert _scalar(db_file, "select count(*) from loans") == len(source)
    assert _scalar(db_file, "select sum(principal) from loans") == Decimal(int(source["X1"].sum()))
    assert _scalar(db_file, "select count(*) from loans where borrower_gender = 'F'") == int((source["X2"] == 2).sum())

    statuses = source[[f"X{number}" for number in range(6, 12)]]
    bills = source[[f"X{number}" for number in range(12, 18)]]
    payments = source[[f"X{number}" for number in range(18, 24)]]
    assert _scalar(db_file, "select count(*) from loan_months") == statuses.size
    assert _scalar(db_file, "select count(distinct snapshot_date) from loan_months") == 6
    assert _scalar(db_file, "select sum(outstanding_principal) from loan_months") == Decimal(int(bills.clip(lower=0).to_numpy().sum()))
    assert _scalar(db_file, "select sum(principal_paid) from loan_months") == Decimal(int(payments.to_numpy().sum()))
    assert _scalar(db_file, "select count(*) from loan_months where dpd > 0") == int((statuses >= 1).to_numpy().sum())
    assert _scalar(db_file, "select sum(dpd) from loan_months") == 30 * int(statuses.clip(lower=0).to_numpy().sum())
    # September is X6: dpd = 30 x status.
    september_late = int((source["X6"] >= 1).sum())
    assert _scalar(db_file, "select count(*) from loan_months where snapshot_date = '2005-09-30' and dpd > 0") == september_late
    assert _scalar(db_file, "select count(*) from loan_attributes where attribute = 'education'") == len(source)


def test_openintro_lendingclub_loads_snapshot(realdata, tmp_path):
    source = pd.read_csv(realdata / "lendingclub-openintro-10k" / "loans_full_schema.csv")
    db_file = tmp_path / "lc.duckdb"
    _convert_and_load("openintro_lendingclub.py", tmp_path / "tape", db_file)

    assert _load_log_errors(db_file) == 0
    assert _scalar(db_file, "select count(*) from loans") == len(source)
    assert _scalar(db_file, "select sum(principal) from loans") == Decimal(int(source["loan_amount"].sum()))
    assert _scalar(db_file, "select count(*) from loan_months") == len(source)
    expected_balance = sum(_fen(value) for value in source["balance"])
    assert _scalar(db_file, "select sum(outstanding_principal) from loan_months") == expected_balance
    status_counts = source["loan_status"].value_counts()
    assert _scalar(db_file, "select count(*) from loan_months where status = 'paid_off'") == status_counts["Fully Paid"]
    assert _scalar(db_file, "select count(*) from loan_months where status = 'charged_off'") == status_counts["Charged Off"]
    late = status_counts[["In Grace Period", "Late (16-30 days)", "Late (31-120 days)"]].sum()
    assert _scalar(db_file, "select count(*) from loan_months where dpd > 0") == late
    assert _scalar(db_file, "select count(*) from loans where grade = 'A'") == int((source["grade"] == "A").sum())
    rate = _scalar(db_file, "select avg(annual_rate) from loans")
    assert rate == pytest.approx(source["interest_rate"].mean() / 100, rel=1e-9)


def test_home_credit_loads_installments(realdata, tmp_path):
    folder = realdata / "home-credit-sample"
    source = pd.read_csv(
        folder / "installments_payments.csv",
        encoding="utf-8-sig",
        dtype={"AMT_INSTALMENT": str, "AMT_PAYMENT": str},
    )
    db_file = tmp_path / "hc.duckdb"
    _convert_and_load("home_credit.py", tmp_path / "tape", db_file)

    assert _load_log_errors(db_file) == 0
    assert _scalar(db_file, "select count(*) from loans") == source["SK_ID_PREV"].nunique()
    assert _scalar(db_file, "select count(*) from installments") == len(source)
    assert _scalar(db_file, "select sum(principal_due) from installments") == sum(map(_fen, source["AMT_INSTALMENT"]))
    assert _scalar(db_file, "select sum(principal_paid) from installments") == sum(map(_fen, source["AMT_PAYMENT"]))
    distinct = source.drop_duplicates(["SK_ID_PREV", "NUM_INSTALMENT_NUMBER", "NUM_INSTALMENT_VERSION"])
    assert _scalar(db_file, "select sum(principal) from loans") == sum(map(_fen, distinct["AMT_INSTALMENT"]))
    # Month-ends are derived from the installments for every loan.
    assert _scalar(db_file, "select count(distinct loan_id) from loan_months where is_derived") == source["SK_ID_PREV"].nunique()


def test_home_credit_refuses_output_in_repository(realdata):
    result = subprocess.run(
        [sys.executable, "examples/home_credit.py", "--out", str(REPO_ROOT / "out" / "hc")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "inside the repository" in result.stderr
    assert not (REPO_ROOT / "out" / "hc").exists()
