"""Fact tables (loan_facts, month_facts) rebuilt by every write.

A random tape is imported through the product's own import. The expected fact rows come
from a plain pandas reimplementation of the rules in queries/facts_schema.sql and metrics.md:
the next month-end by month arithmetic, FPD30 from instalment 1 or from snapshots.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from ingest import facts
from ingest.api import load_files, remove_load
from queries import db
from tests.fixtures_ingest import database_snapshot, secret_file, write_csv  # noqa: F401

N_LOANS = 240
SEED = 20261204
STATUSES = ["正常", "逾期", "结清", "核销", "展期"]
STATUS_CODES = {"正常": "active", "逾期": "active", "结清": "paid_off", "核销": "charged_off",
                "展期": "extended"}


def _month_end(year: int, month: int) -> dt.date:
    return (pd.Timestamp(year=year, month=month, day=1) + pd.offsets.MonthEnd(0)).date()


def _random_tape(rng: np.random.Generator):
    loans, months, installments = [], [], []
    for number in range(N_LOANS):
        loan_id = f"F{number:05d}"
        start = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(0, 400)))
        principal = int(rng.integers(10, 500)) * 100
        loans.append([loan_id, start.isoformat(), str(principal), str(rng.choice(["消费贷", "经营贷"])),
                      str(rng.choice(["广东", "河南省", "北京"]))])
        month_number = start.year * 12 + start.month - 1
        balance = principal
        for offset in range(int(rng.integers(1, 14))):
            if offset > 0 and rng.random() < 0.12:
                continue  # a missing month-end: the row before it has no next_*
            current_month = month_number + offset
            snapshot = _month_end(current_month // 12, current_month % 12 + 1)
            status = str(rng.choice(STATUSES, p=[0.6, 0.2, 0.1, 0.05, 0.05]))
            dpd = 0 if status in ("结清",) else int(rng.choice([0, 0, 5, 31, 45, 95]))
            balance = max(balance - int(rng.integers(0, 800)), 0)
            months.append([loan_id, snapshot.isoformat(), str(dpd), str(balance), status])
            if status in ("结清", "核销"):
                break
        if rng.random() < 0.35:
            due = start + pd.DateOffset(months=1)
            due = due.date() if hasattr(due, "date") else due
            principal_due = principal // 12
            paid_days = int(rng.choice([0, 10, 29, 30, 45]))
            paid_share = float(rng.choice([1.0, 0.5]))
            installments.append([loan_id, "1", due.isoformat(), str(principal_due),
                                 (due + dt.timedelta(days=paid_days)).isoformat(),
                                 f"{principal_due * paid_share:.2f}"])
    return loans, months, installments


@pytest.fixture
def tape_db(db_path, tmp_path):
    rng = np.random.default_rng(SEED)
    loans, months, installments = _random_tape(rng)
    files = {
        "loans": write_csv(tmp_path / "loans.csv", ["借据号", "放款日期", "放款金额", "产品", "省份"], loans),
        "loan_months": write_csv(tmp_path / "months.csv", ["借据号", "统计日期", "逾期天数", "贷款余额", "贷款状态"],
                                 months),
        "installments": write_csv(tmp_path / "inst.csv",
                                  ["借据号", "期次", "应还日期", "应还本金", "实还日期", "实还本金"], installments),
    }
    report = load_files(db_path, files, as_of="2025-12-31")
    assert report.ok, report.summary("en")
    return db_path, loans, months, installments


def _read(db_path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _facts_current(db_path) -> bool:
    con = db.connect(db_path, read_only=True)
    try:
        return facts.is_current(con)
    finally:
        con.close()


def test_month_facts_match_pandas(tape_db):
    db_path, loans, months, _ = tape_db
    frame = pd.DataFrame(months, columns=["loan_id", "snapshot_date", "dpd", "balance", "status"])
    frame["snapshot_date"] = pd.to_datetime(frame["snapshot_date"])
    frame["dpd"] = frame["dpd"].astype(int)
    frame["balance"] = frame["balance"].astype(float)
    frame["status"] = frame["status"].map(STATUS_CODES)
    frame["month_number"] = frame["snapshot_date"].dt.year * 12 + frame["snapshot_date"].dt.month - 1
    origination = pd.to_datetime(pd.Series({row[0]: row[1] for row in loans}))
    frame["mob"] = frame["month_number"] - frame["loan_id"].map(
        origination.dt.year * 12 + origination.dt.month - 1)
    frame = frame.sort_values(["loan_id", "month_number"]).reset_index(drop=True)
    following = frame.groupby("loan_id").shift(-1)
    linked = following["month_number"] == frame["month_number"] + 1
    frame["next_dpd"] = following["dpd"].where(linked)
    frame["next_status"] = following["status"].where(linked)
    frame["next_balance"] = following["balance"].where(linked)

    got = _read(db_path, """
        select lf.loan_id, mf.snapshot_date, mf.month_number, mf.mob, mf.dpd,
               mf.outstanding_principal::double as balance, mf.status, mf.is_active,
               mf.next_dpd, mf.next_status, mf.next_outstanding_principal::double as next_balance,
               mf.product, mf.province
        from month_facts as mf join loan_facts as lf using (loan_key)
        order by lf.loan_id, mf.month_number""")
    assert len(got) == len(frame)
    assert (got["loan_id"].to_numpy() == frame["loan_id"].to_numpy()).all()
    assert (got["month_number"].to_numpy() == frame["month_number"].to_numpy()).all()
    assert (got["mob"].to_numpy() == frame["mob"].to_numpy()).all()
    assert (got["dpd"].to_numpy() == frame["dpd"].to_numpy()).all()
    assert (got["is_active"].to_numpy() == ~frame["status"].isin(["paid_off", "charged_off"]).to_numpy()).all()
    pd.testing.assert_series_equal(got["next_dpd"].astype(float), frame["next_dpd"].astype(float),
                                   check_names=False)
    pd.testing.assert_series_equal(got["next_status"].astype(object).where(got["next_status"].notna()),
                                   frame["next_status"].astype(object).where(frame["next_status"].notna()),
                                   check_names=False)
    pd.testing.assert_series_equal(got["next_balance"], frame["next_balance"].astype(float), check_names=False)
    # A gap in the month-ends leaves next_* empty on the row before it.
    assert frame["next_dpd"].isna().sum() > N_LOANS
    # Segment columns are the normalised ones of loans (广东 -> 广东省).
    assert set(got["province"]) == {"广东省", "河南省", "北京市"}


def test_loan_facts_fpd30_match_pandas(tape_db):
    db_path, loans, months, installments = tape_db
    month_frame = pd.DataFrame(months, columns=["loan_id", "snapshot_date", "dpd", "balance", "status"])
    month_frame["snapshot_date"] = pd.to_datetime(month_frame["snapshot_date"])
    by_installment = {}
    for loan_id, _, due, principal_due, paid_date, paid in installments:
        due_date = pd.Timestamp(due)
        in_time = float(paid) if pd.Timestamp(paid_date) < due_date + pd.Timedelta(days=30) else 0.0
        judged = due_date + pd.Timedelta(days=30) + pd.offsets.MonthEnd(0)
        by_installment[loan_id] = (judged, in_time < float(principal_due) - 1)
    expected = {}
    for loan_id, start, *_ in loans:
        if loan_id in by_installment:
            expected[loan_id] = by_installment[loan_id]
            continue
        judged = (pd.Timestamp(start) + pd.DateOffset(months=1) + pd.Timedelta(days=30)
                  + pd.offsets.MonthEnd(0))
        rows = month_frame[(month_frame["loan_id"] == loan_id) & (month_frame["snapshot_date"] <= judged)]
        if rows.empty:
            expected[loan_id] = (judged, False)
        else:
            last = rows.sort_values("snapshot_date").iloc[-1]
            expected[loan_id] = (judged, int(last["dpd"]) >= 30 or last["status"] == "核销")

    got = _read(db_path, "select loan_id, fpd30_judged_month, is_fpd30, fpd30_from_installments from loan_facts")
    assert len(got) == N_LOANS
    for row in got.itertuples():
        judged, is_fpd30 = expected[row.loan_id]
        assert pd.Timestamp(row.fpd30_judged_month) == judged, row.loan_id
        assert bool(row.is_fpd30) == is_fpd30, row.loan_id
        assert bool(row.fpd30_from_installments) == (row.loan_id in by_installment)
    assert 0 < got["is_fpd30"].sum() < N_LOANS


def test_loan_keys_dense_in_origination_order(tape_db):
    db_path, *_ = tape_db
    got = _read(db_path, "select loan_key, loan_id, origination_date from loan_facts order by loan_key")
    assert got["loan_key"].tolist() == list(range(1, N_LOANS + 1))
    expected = got.sort_values(["origination_date", "loan_id"])["loan_id"].tolist()
    assert got["loan_id"].tolist() == expected


def test_stale_facts_rebuilt(tape_db):
    db_path, *_ = tape_db
    con = db.connect(db_path)
    try:
        assert facts.is_current(con)
        con.execute("delete from loan_months where loan_id = 'F00000'")
        assert not facts.is_current(con)
    finally:
        con.close()
    assert facts.ensure_current(db_path) is True
    assert facts.ensure_current(db_path) is False
    got = _read(db_path, "select count(*) from month_facts join loan_facts using (loan_key) "
                         "where loan_id = 'F00000'")
    assert got.iloc[0, 0] == 0


def test_rejected_import_keeps_facts(tape_db, tmp_path):
    db_path, *_ = tape_db
    before = database_snapshot(db_path)
    bad = write_csv(tmp_path / "bad.csv", ["借据号", "统计日期", "逾期天数", "贷款余额"],
                    [["F00001", "2025-12-31", "-3", "100"]])
    report = load_files(db_path, {"loan_months": bad}, as_of="2025-12-31")
    assert not report.ok
    after = database_snapshot(db_path)
    for table in ("loan_facts", "month_facts", "loan_months"):
        assert after[table] == before[table], table
    assert _facts_current(db_path)


def test_removed_load_leaves_facts(tape_db):
    db_path, *_ = tape_db
    months_load = _read(db_path, "select load_id from load_log where table_name = 'loan_months'").iloc[0, 0]
    remove_load(db_path, int(months_load))
    counts = _read(db_path, "select (select count(*) from month_facts), (select count(*) from loan_facts)")
    assert counts.iloc[0, 0] == 0
    assert counts.iloc[0, 1] == N_LOANS
    assert _facts_current(db_path)


def test_ensure_current_missing_file(tmp_path):
    assert facts.ensure_current(tmp_path / "absent.duckdb") is False
    assert not (tmp_path / "absent.duckdb").exists()


def test_rebuild_recreates_changed_table(tape_db):
    db_path, *_ = tape_db
    con = db.connect(db_path)
    try:
        # An older LoanLens's table: same name, fewer columns, stale rows.
        con.execute("drop table month_facts")
        con.execute("create table month_facts (loan_key integer, snapshot_date date)")
        con.execute("insert into month_facts values (1, date '2020-01-31')")
        con.execute("begin transaction")
        facts.rebuild(con)
        con.execute("commit")
        columns = [row[0] for row in con.execute("describe month_facts").fetchall()]
        rows = con.execute("select count(*) from month_facts where snapshot_date < date '2024-01-01'").fetchone()
    finally:
        con.close()
    assert "next_dpd" in columns
    assert rows[0] == 0
