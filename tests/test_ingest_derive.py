"""Import tests: month-end snapshots derived from installments.

The expected rows are worked out by hand from the schedule and payments below (see the
comments on each month).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ingest.api import load_files
from tests.fixtures_ingest import secret_file, table_rows, write_csv  # noqa: F401

LOANS = [["D1", "2017-01-15", "3000"], ["D2", "2017-04-01", "2000"]]
INSTALLMENTS_HEADER = ["借据号", "期次", "应还日期", "应还本金", "应还利息", "实还日期", "实还本金", "实还利息"]
INSTALLMENTS = [
    ["D1", "1", "2017-02-15", "1000", "10", "2017-02-15", "1000", "10"],
    ["D1", "2", "2017-03-15", "1000", "10", "2017-03-20", "400", "10"],  # partial payment
    ["D1", "2", "2017-03-15", "1000", "10", "2017-05-10", "600", "0"],  # rest of instalment 2
    ["D1", "3", "2017-04-15", "1000", "10", "2017-05-10", "999.50", "10"],  # within the 1-yuan tolerance
    ["D2", "1", "2017-05-01", "1000", "10", "", "", ""],
    ["D2", "2", "2017-06-01", "1000", "10", "", "", ""],
]


def _load(db_path, tmp_path, as_of="2017-06-30"):
    files = {
        "loans": write_csv(tmp_path / "loans.csv", ["借据号", "放款日期", "放款金额"], LOANS),
        "installments": write_csv(tmp_path / "inst.csv", INSTALLMENTS_HEADER, INSTALLMENTS),
    }
    return load_files(db_path, files, as_of=as_of)


def test_derived_months_hand_computed(db_path, tmp_path):
    report = _load(db_path, tmp_path)
    assert report.ok, report.summary("en")
    rows = table_rows(
        db_path, "loan_months",
        "loan_id, snapshot_date, dpd, outstanding_principal, overdue_principal, overdue_interest, status, "
        "principal_paid, is_derived", "loan_id, snapshot_date",
    )
    d = dt.date
    expected = [
        # D1: nothing due in January.
        ("D1", d(2017, 1, 31), 0, Decimal("3000.00"), Decimal("0.00"), Decimal("0.00"), "active", Decimal("0.00"), True),
        # Instalment 1 paid on its due date.
        ("D1", d(2017, 2, 28), 0, Decimal("2000.00"), Decimal("0.00"), Decimal("0.00"), "active", Decimal("1000.00"), True),
        # Instalment 2 (due 03-15) has 400 of 1000 paid: unpaid, dpd = 31 - 15 = 16.
        ("D1", d(2017, 3, 31), 16, Decimal("1600.00"), Decimal("600.00"), Decimal("0.00"), "active", Decimal("400.00"), True),
        # Instalment 3 (due 04-15) also unpaid; earliest unpaid due date 03-15: dpd = 16 + 30 = 46.
        ("D1", d(2017, 4, 30), 46, Decimal("1600.00"), Decimal("1600.00"), Decimal("10.00"), "active", Decimal("0.00"), True),
        # 600 + 999.50 paid on 05-10: 0.50 left, within 1 yuan, so paid_off; later months are not built.
        ("D1", d(2017, 5, 31), 0, Decimal("0.50"), Decimal("0.00"), Decimal("0.00"), "paid_off", Decimal("1599.50"), True),
        # D2 pays nothing: dpd from 05-01 is 30 at 05-31 and 60 at 06-30.
        ("D2", d(2017, 4, 30), 0, Decimal("2000.00"), Decimal("0.00"), Decimal("0.00"), "active", Decimal("0.00"), True),
        ("D2", d(2017, 5, 31), 30, Decimal("2000.00"), Decimal("1000.00"), Decimal("10.00"), "active", Decimal("0.00"), True),
        ("D2", d(2017, 6, 30), 60, Decimal("2000.00"), Decimal("2000.00"), Decimal("20.00"), "active", Decimal("0.00"), True),
    ]
    assert rows == expected
    assert report.files[1].derived_months == 8


def test_derived_months_bounded_by_as_of(db_path, tmp_path):
    report = _load(db_path, tmp_path, as_of="2017-05-20")
    assert report.ok, report.summary("en")
    months = table_rows(db_path, "loan_months", "loan_id, snapshot_date", "all")
    # The last month-end on or before 2017-05-20 is 2017-04-30.
    assert max(month for _, month in months) == dt.date(2017, 4, 30)


def test_reloading_installments_replaces_derived_months(db_path, tmp_path):
    assert _load(db_path, tmp_path).ok
    assert _load(db_path, tmp_path).ok
    assert len(table_rows(db_path, "loan_months")) == 8
    assert len(table_rows(db_path, "installments")) == 6
