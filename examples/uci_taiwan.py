"""Convert the UCI "default of credit card clients" panel into LoanLens tape files.

Source: Yeh, I-C. and Lien, C-H. (2009), UCI Machine Learning Repository,
doi:10.24432/C55S3H, licence CC BY 4.0. One row per credit-card account of a Taiwanese
bank with six monthly repayment statuses (Apr..Sep 2005). Amounts are NT$ and are written
unchanged as the loan-tape money columns (the contract's unit is yuan; these examples
only exercise the import).

Output (see docs/en/examples.md for every choice):

- ``loans.csv``: loan_id = ID, principal = credit limit X1, origination_date = 2005-03-01
  for every account (the real opening dates are not in the data), borrower_age = X5,
  borrower_gender = X2 (1 -> M, 2 -> F), product = credit_card, and the extra attributes
  education (X3) and marriage (X4) as labels.
- ``loan_months.csv``: one row per account and month-end 2005-04-30 .. 2005-09-30.
  dpd = 30 * k for repayment status k >= 1 (k months late) and 0 for -2, -1 and 0;
  outstanding_principal = max(bill amount, 0); principal_paid = the payment made in that
  month (X18 = September .. X23 = April), which settles the previous month's bill.

Usage::

    python examples/uci_taiwan.py --out out/uci [--db data/loanlens.duckdb] [--load]
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples import _tape  # noqa: E402

DEFAULT_SOURCE = _tape.REALDATA / "uci-taiwan-credit-card" / "UCI_Credit_Card.csv"

# Placeholder disbursement date: the panel starts with April 2005 and gives no opening
# dates, so every account is dated the month before the first snapshot.
ORIGINATION_DATE = dt.date(2005, 3, 1)

# Month-end of each panel month with its repayment-status, bill and payment columns.
# The source orders the months backwards: X6, X12 and X18 are September 2005.
MONTHS = [
    (dt.date(2005, 9, 30), "X6", "X12", "X18"),
    (dt.date(2005, 8, 31), "X7", "X13", "X19"),
    (dt.date(2005, 7, 31), "X8", "X14", "X20"),
    (dt.date(2005, 6, 30), "X9", "X15", "X21"),
    (dt.date(2005, 5, 31), "X10", "X16", "X22"),
    (dt.date(2005, 4, 30), "X11", "X17", "X23"),
]

GENDER = {1: "M", 2: "F"}
EDUCATION = {1: "graduate_school", 2: "university", 3: "high_school", 4: "others"}
MARRIAGE = {1: "married", 2: "single", 3: "others"}

# Days past due per month of delay: status k >= 1 means k months late.
DAYS_PER_MONTH_LATE = 30


def status_to_dpd(status: pd.Series) -> pd.Series:
    """Map UCI repayment status to days past due.

    -2 (no balance), -1 (paid duly) and 0 (revolving, minimum paid) are current (0 days);
    k >= 1 months late becomes 30 * k days.
    """
    return (status.clip(lower=0) * DAYS_PER_MONTH_LATE).astype(int)


def _label(codes: pd.Series, labels: dict[int, str]) -> pd.Series:
    """Return code labels; codes the UCI documentation does not define become 'undocumented_<code>'."""
    return codes.map(lambda code: labels.get(code, f"undocumented_{code}"))


def _whole_amounts(panel: pd.DataFrame, columns: list[str]) -> None:
    """Turn amount columns into int64 in place (the file writes some as 5.00E+05).

    Raises
    ------
    ValueError
        If an amount has a fractional part, which the UCI data never has.
    """
    for column in columns:
        values = panel[column].astype(float)
        if not (values == values.round()).all():
            raise ValueError(f"column {column} has fractional amounts; expected whole NT$")
        panel[column] = values.astype("int64")


def convert(source: Path) -> dict[str, pd.DataFrame]:
    """Read the UCI CSV and return the loans and loan_months tape tables."""
    panel = pd.read_csv(source)
    _whole_amounts(panel, ["X1", *(f"X{number}" for number in range(12, 24))])

    loans = pd.DataFrame(
        {
            "loan_id": panel["ID"].astype(str),
            "origination_date": ORIGINATION_DATE.isoformat(),
            "principal": panel["X1"],
            "product": "credit_card",
            "borrower_age": panel["X5"],
            "borrower_gender": panel["X2"].map(GENDER),
            "education": _label(panel["X3"], EDUCATION),
            "marriage": _label(panel["X4"], MARRIAGE),
        }
    )

    months = []
    for month_end, status_column, bill_column, payment_column in reversed(MONTHS):
        months.append(
            pd.DataFrame(
                {
                    "loan_id": panel["ID"].astype(str),
                    "snapshot_date": month_end.isoformat(),
                    "dpd": status_to_dpd(panel[status_column]),
                    "outstanding_principal": np.maximum(panel[bill_column], 0),
                    "status": "active",
                    "principal_paid": panel[payment_column],
                }
            )
        )
    loan_months = pd.concat(months, ignore_index=True)
    return {"loans": loans, "loan_months": loan_months}


if __name__ == "__main__":
    sys.exit(
        _tape.main(
            "Convert the UCI Taiwan credit-card panel into LoanLens tape files.",
            DEFAULT_SOURCE,
            convert,
        )
    )
