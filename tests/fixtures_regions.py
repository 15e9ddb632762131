"""Loan tapes for region tests: a hand-made tape with mixed region spellings, and the
OpenIntro Lending Club subset loaded as a one-snapshot tape.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from ingest import facts
from queries import db

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OPENINTRO_CSV = FIXTURES / "openintro_loans_2000.csv"
OPENINTRO_SNAPSHOT = dt.date(2018, 6, 30)

# Lending Club status -> (dpd, status) at the snapshot. Late ranges take a day inside
# the range: the grace period is 1-15 days, "Late (31-120 days)" sits in M3 (61-90).
OPENINTRO_STATUS = {
    "Current": (0, "active"),
    "In Grace Period": (10, "active"),
    "Late (16-30 days)": (20, "active"),
    "Late (31-120 days)": (75, "active"),
    "Fully Paid": (0, "paid_off"),
    "Charged Off": (150, "charged_off"),
}

MIXED_AS_OF = dt.date(2025, 6, 30)


def _load_log(con, load_id: int, file_name: str) -> None:
    con.execute(
        "insert into load_log (load_id, table_name, file_name, file_sha256, mode, started_at, result) "
        "values (?, 'loans', ?, 'x', 'strict', '2025-07-01 10:00:00', 'loaded')",
        [load_id, file_name],
    )


def _insert(con, loans: pd.DataFrame, months: pd.DataFrame) -> None:
    con.register("loans_frame", loans)
    con.register("months_frame", months)
    loan_columns = ", ".join(loans.columns)
    month_columns = ", ".join(months.columns)
    con.execute(f"insert into loans ({loan_columns}) select {loan_columns} from loans_frame")
    con.execute(f"insert into loan_months ({month_columns}) select {month_columns} from months_frame")
    con.unregister("loans_frame")
    con.unregister("months_frame")
    # Rows inserted by hand bypass the import, which would rebuild the fact tables.
    facts.rebuild(con)


def build_openintro_db(path: Path) -> Path:
    """Load the OpenIntro subset: state as province text, one snapshot at 2018-06-30."""
    source = pd.read_csv(OPENINTRO_CSV)
    dpd_status = source["loan_status"].map(OPENINTRO_STATUS)
    loans = pd.DataFrame(
        {
            "loan_id": "LC" + source["row"].astype(str),
            "origination_date": pd.to_datetime(source["issue_month"], format="%b-%Y").dt.date,
            "principal": source["loan_amount"].astype(float),
            "province": source["state"],
            "grade": source["grade"],
            "load_id": 1,
        }
    )
    months = pd.DataFrame(
        {
            "loan_id": loans["loan_id"],
            "snapshot_date": OPENINTRO_SNAPSHOT,
            "dpd": [value[0] for value in dpd_status],
            "outstanding_principal": source["balance"].astype(float),
            "status": [value[1] for value in dpd_status],
            "load_id": 1,
        }
    )
    con = db.connect(path)
    try:
        _insert(con, loans, months)
        _load_log(con, 1, "openintro_loans_2000.csv")
    finally:
        con.close()
    return path


# Province spellings of the mixed tape and how many loans each gets. 广东, 广东省 and
# 440000 are one province; 广栋省 is misspelt; None is missing.
MIXED_PROVINCES = {
    "广东": 40,
    "广东省": 35,
    "440000": 25,
    "广栋省": 12,
    "浙江省": 60,
    " 浙江 ": 5,
    "内蒙古": 20,  # below a minimum size of 30 once paid-off loans are removed
    None: 8,
}
MIXED_CITIES = {"广东": ["深圳", "广州市", "440300"], "浙江省": ["杭州市", "宁波"]}


def build_mixed_db(path: Path, seed: int = 11) -> Path:
    """Write the mixed-spelling tape: three month-ends (2025-04 .. 2025-06), random dpd.

    Every loan has a snapshot in each month; about 10% are paid off in the last month, so
    the active count differs from the loan count.
    """
    rng = np.random.default_rng(seed)
    loan_rows, month_rows = [], []
    number = 0
    for province, count in MIXED_PROVINCES.items():
        for _ in range(count):
            number += 1
            loan_id = f"M{number:04d}"
            cities = MIXED_CITIES.get(province if province != "广东省" else "广东", [None])
            city = cities[number % len(cities)]
            code = "330100" if province == " 浙江 " else None
            loan_rows.append(
                {
                    "loan_id": loan_id,
                    "origination_date": dt.date(2025, 1, 1 + number % 28),
                    "principal": float(rng.integers(1_000, 50_000)),
                    "province": province,
                    "city": city,
                    "region_code": code,
                    "load_id": 1,
                }
            )
            for month in (dt.date(2025, 4, 30), dt.date(2025, 5, 31), MIXED_AS_OF):
                dpd = int(rng.choice([0, 0, 0, 0, 0, 12, 45, 100, 200]))
                status = "active"
                if month == MIXED_AS_OF and rng.random() < 0.1:
                    status, dpd = "paid_off", 0
                month_rows.append(
                    {
                        "loan_id": loan_id,
                        "snapshot_date": month,
                        "dpd": dpd,
                        "outstanding_principal": float(rng.integers(0, 30_000)),
                        "status": status,
                        "load_id": 1,
                    }
                )
    con = db.connect(path)
    try:
        _insert(con, pd.DataFrame(loan_rows), pd.DataFrame(month_rows))
        _load_log(con, 1, "mixed.csv")
    finally:
        con.close()
    return path


# Region codes of the county tape: 鼓楼区 of 南京市 and of 徐州市 (both 江苏省) and 西湖区 of
# 杭州市. Loan K3 is the only overdue one (dpd 40).
COUNTY_CODES = {"K1": "320106", "K2": "320106", "K3": "320302", "K4": "330106"}


def build_county_db(path: Path, copies: int = 1) -> Path:
    """Write a one-month tape (2025-01-31) identified by region_code only.

    ``copies`` repeats every loan (with suffixed ids) to lift regions over a minimum size.
    """
    loans, months = [], []
    for copy in range(copies):
        for loan_id, code in COUNTY_CODES.items():
            full_id = f"{loan_id}-{copy}"
            loans.append({"loan_id": full_id, "origination_date": dt.date(2025, 1, 1),
                          "principal": 1000.0, "region_code": code, "load_id": 1})
            months.append({"loan_id": full_id, "snapshot_date": dt.date(2025, 1, 31),
                           "dpd": 40 if loan_id == "K3" else 0,
                           "outstanding_principal": 1000.0, "status": "active", "load_id": 1})
    con = db.connect(path)
    try:
        _insert(con, pd.DataFrame(loans), pd.DataFrame(months))
        _load_log(con, 1, "counties.csv")
    finally:
        con.close()
    return path
