"""A small hand-made loan tape for KPI tests, written with plain SQL inserts.

Five loans over four month-ends (2025-01 .. 2025-04); the hand-calculated KPIs are in
tests/test_kpis_metrics.py next to the assertions.
"""

from __future__ import annotations

from pathlib import Path

from ingest import facts
from queries import db

HAND_TAPE_LOANS = """
insert into loans (loan_id, origination_date, principal, product, channel, province, grade, load_id)
values ('L1', '2025-01-10', 1000, '消费贷', '线上', '广东省', 'A', 1),
       ('L2', '2025-01-20', 2000, '经营贷', '线下', '浙江省', 'B', 1),
       ('L3', '2025-02-05',  500, '消费贷', '线上', '广东省', 'A', 1),
       ('L4', '2025-02-15', 3000, '经营贷', '线上', '浙江省', 'B', 1),
       ('L5', '2025-03-03', 1000, '消费贷', '线下', '广东省', 'C', 1)
"""

# (loan_id, snapshot_date, dpd, outstanding_principal, status, charged_off_amount, recovered_amount)
HAND_TAPE_MONTHS = """
insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, status,
                         charged_off_amount, recovered_amount, load_id)
values ('L1', '2025-01-31',  0, 1000, 'active',      null, null, 1),
       ('L1', '2025-02-28',  0,  900, 'active',      null, null, 1),
       ('L1', '2025-03-31', 35,  800, 'active',      null, null, 1),
       ('L1', '2025-04-30',  0,  700, 'active',      null, null, 1),
       ('L2', '2025-01-31',  0, 2000, 'active',      null, null, 1),
       ('L2', '2025-02-28',  5, 1900, 'active',      null, null, 1),
       ('L2', '2025-03-31', 36, 1900, 'active',      null, null, 1),
       ('L2', '2025-04-30', 95, 1900, 'active',      null, null, 1),
       ('L3', '2025-02-28',  0,  500, 'active',      null, null, 1),
       ('L3', '2025-03-31',  0,  400, 'active',      null, null, 1),
       ('L3', '2025-04-30',  0,    0, 'paid_off',    null, null, 1),
       ('L4', '2025-02-28',  0, 3000, 'active',      null, null, 1),
       ('L4', '2025-03-31', 16, 3000, 'restructured', null, null, 1),
       ('L4', '2025-04-30',  0, 2000, 'active',      null, null, 1),
       ('L5', '2025-03-31',  0, 1000, 'active',      null, null, 1),
       ('L5', '2025-04-30', 31,    0, 'charged_off', 1000,  200, 1)
"""

# L4 pays its first instalment (due 2025-03-15) on 2025-04-20, 36 days late: FPD30 by
# instalment although its April snapshot is current.
HAND_TAPE_INSTALLMENTS = """
insert into installments (loan_id, installment_no, due_date, principal_due, paid_date,
                          principal_paid, load_id)
values ('L4', 1, '2025-03-15', 1000, '2025-04-20', 1000, 1),
       ('L4', 2, '2025-04-15', 1000, '2025-04-20', 1000, 1)
"""

HAND_TAPE_LOAD_LOG = """
insert into load_log (load_id, table_name, file_name, file_sha256, mode, started_at, result)
values (1, 'loans', 'hand_tape.csv', 'x', 'strict', '2025-05-01 10:00:00', 'loaded')
"""


def build_hand_tape(path: Path) -> Path:
    """Create the hand-made tape database at ``path`` and return the path."""
    con = db.connect(path)
    try:
        for statement in (HAND_TAPE_LOANS, HAND_TAPE_MONTHS, HAND_TAPE_INSTALLMENTS,
                          HAND_TAPE_LOAD_LOG):
            con.execute(statement)
        # Rows inserted by hand bypass the import, which would rebuild the fact tables.
        facts.rebuild(con)
    finally:
        con.close()
    return path


PRODUCTS = ("消费贷", "经营贷", "车贷")
CHANNELS = ("线上", "线下")
PROVINCES = ("广东省", "浙江省", "四川省")


def build_random_tape(path: Path, n_loans: int = 400, seed: int = 7) -> Path:
    """Create a random tape of ``n_loans`` loans over 2024-01 .. 2025-06 and return ``path``.

    Each loan walks month by month: dpd grows by about 30 days when a payment is missed and
    returns to 0 on a cure; loans pay off, charge off (with later recoveries booked on the
    charge-off row) or stay active. A third of the loans also have a first instalment row, so
    FPD30 comes from both sources. Fixed seed, so every run builds the same tape.
    """
    import datetime as dt

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    month_ends = pd.date_range("2024-01-31", "2025-06-30", freq="ME").date
    loan_rows, month_rows, installment_rows = [], [], []
    for number in range(n_loans):
        loan_id = f"{number:06d}"
        start = int(rng.integers(0, len(month_ends) - 2))
        origination = month_ends[start].replace(day=int(rng.integers(1, 29)))
        principal = float(rng.integers(10, 200)) * 100
        loan_rows.append((loan_id, origination, principal, str(rng.choice(PRODUCTS)),
                          str(rng.choice(CHANNELS)), str(rng.choice(PROVINCES)),
                          str(rng.choice(["A", "B", "C"]))))
        dpd, balance = 0, principal
        for month in month_ends[start:]:
            status = "active"
            charged, recovered = None, None
            if dpd == 0 and rng.random() < 0.15:
                dpd = int(rng.integers(1, 40))
            elif dpd > 0:
                dpd = 0 if rng.random() < 0.3 else dpd + 30
            if dpd == 0:
                balance = max(balance - principal / 12, 0.0)
            if balance <= 1:
                status, balance = "paid_off", 0.0
            elif dpd > 180 or (dpd > 90 and rng.random() < 0.2):
                status, charged, recovered = "charged_off", round(balance, 2), round(balance * 0.1, 2)
            elif dpd > 0 and rng.random() < 0.05:
                status = "restructured"
            month_rows.append((loan_id, month, dpd, round(balance, 2), status, charged, recovered))
            if status in ("paid_off", "charged_off"):
                break
        if number % 3 == 0:
            due = (pd.Timestamp(origination) + pd.DateOffset(months=1)).date()
            delay = int(rng.choice([None, 5, 20, 29, 30, 31, 45], p=[0.05, 0.4, 0.2, 0.1, 0.1, 0.1, 0.05]) or 0)
            paid = None if delay == 0 else due + dt.timedelta(days=delay)
            installment_rows.append((loan_id, 1, due, round(principal / 12, 2), paid,
                                     round(principal / 12, 2) if paid else None))

    con = db.connect(path)
    try:
        frames = {
            "new_loans": pd.DataFrame(loan_rows, columns=["loan_id", "origination_date", "principal",
                                                          "product", "channel", "province", "grade"]),
            "new_months": pd.DataFrame(month_rows, columns=["loan_id", "snapshot_date", "dpd",
                                                            "outstanding_principal", "status",
                                                            "charged_off_amount", "recovered_amount"]),
            "new_installments": pd.DataFrame(installment_rows, columns=["loan_id", "installment_no",
                                                                        "due_date", "principal_due",
                                                                        "paid_date", "principal_paid"]),
        }
        for name, frame in frames.items():
            con.register(name, frame)
        con.execute("""
            insert into loans (loan_id, origination_date, principal, product, channel, province, grade, load_id)
            select loan_id, origination_date, principal, product, channel, province, grade, 1 from new_loans
        """)
        con.execute("""
            insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, status,
                                     charged_off_amount, recovered_amount, load_id)
            select loan_id, snapshot_date, dpd, outstanding_principal, status,
                   charged_off_amount, recovered_amount, 1
            from new_months
        """)
        con.execute("""
            insert into installments (loan_id, installment_no, due_date, principal_due, paid_date,
                                      principal_paid, load_id)
            select loan_id, installment_no, due_date, principal_due, paid_date, principal_paid, 1
            from new_installments
        """)
        con.execute(HAND_TAPE_LOAD_LOG)
        facts.rebuild(con)
    finally:
        con.close()
    return path
