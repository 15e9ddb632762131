"""A LoanLens database built from the UCI "default of credit card clients" panel (Taiwan, 2005).

Source: Yeh, I-C. & Lien, C-H. (2009), UCI Machine Learning Repository, dataset 350,
doi:10.24432/C55S3H, licence CC BY 4.0. The file is read from the shared real-data folder.

Mapping used here (a test fixture, not the product's import path):

- one loan per account: loan_id = ID, principal = credit limit X1 (NT$ taken as yuan),
  grade = education code X3 as text, origination 2005-01-15 for every account, so April
  2005 is MOB 3;
- six month-end snapshots, April to September 2005: repayment status X11 (April) .. X6
  (September), bill amount X17 (April) .. X12 (September);
- status k >= 1 (k months late) -> dpd = 30 * k; -2, -1 and 0 (no balance, paid duly,
  revolving) -> dpd 0; outstanding principal = bill amount clipped at 0; status active.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from tests.fixtures_vintage import write_tape

UCI_FILE = Path("uci-taiwan-credit-card") / "UCI_Credit_Card.csv"
UCI_ORIGINATION = dt.date(2005, 1, 15)
UCI_AS_OF = dt.date(2005, 9, 30)
# (month-end, repayment status column, bill amount column), oldest first.
UCI_MONTHS = (
    (dt.date(2005, 4, 30), "X11", "X17"),
    (dt.date(2005, 5, 31), "X10", "X16"),
    (dt.date(2005, 6, 30), "X9", "X15"),
    (dt.date(2005, 7, 31), "X8", "X14"),
    (dt.date(2005, 8, 31), "X7", "X13"),
    (dt.date(2005, 9, 30), "X6", "X12"),
)


def uci_frames(realdata: Path, n_accounts: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (loans, loan_months) frames built from the UCI file, optionally the first n accounts."""
    raw = pd.read_csv(realdata / UCI_FILE)
    if n_accounts is not None:
        raw = raw.head(n_accounts)
    loans = pd.DataFrame(
        {
            "loan_id": raw["ID"].astype(str),
            "origination_date": UCI_ORIGINATION,
            "principal": raw["X1"].astype(float),
            "product": "credit_card",
            "channel": "bank",
            "province": None,
            "grade": raw["X3"].astype(str),
        }
    )
    parts = []
    for month_end, status_column, bill_column in UCI_MONTHS:
        months_late = raw[status_column].astype(int)
        parts.append(
            pd.DataFrame(
                {
                    "loan_id": raw["ID"].astype(str),
                    "snapshot_date": month_end,
                    "dpd": (months_late.clip(lower=0) * 30).astype(int),
                    "outstanding_principal": raw[bill_column].astype(float).clip(lower=0),
                    "status": "active",
                    "charged_off_amount": None,
                }
            )
        )
    return loans, pd.concat(parts, ignore_index=True)


def uci_tape(path: Path, realdata: Path, n_accounts: int | None = None) -> Path:
    """Write the UCI panel as a LoanLens database at ``path``."""
    loans, months = uci_frames(realdata, n_accounts)
    return write_tape(path, loans, months)
