"""A small hand-made loan tape for KPI tests, written with plain SQL inserts.

Five loans over four month-ends (2025-01 .. 2025-04); the hand-calculated KPIs are in
tests/test_kpis_metrics.py next to the assertions.
"""

from __future__ import annotations

from pathlib import Path

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
    finally:
        con.close()
    return path
