"""Convert the Home Credit ``installments_payments`` sample into LoanLens tape files.

Source: Kaggle competition "Home Credit Default Risk" (2018), Home Credit Group. The data
has no open licence: use it only for internal tests. This script reads it at run time
and writes to the folder given with ``--out``; never write that folder into the
repository.

The data has no calendar dates, only days relative to each client's current
application. This script places every relative day on one anchor date, 2018-05-31, so
``date = ANCHOR_DATE + DAYS_*`` and the extraction date (as_of_date) is the anchor.

Output (see docs/en/examples.md for every choice):

- ``loans.csv``: one loan per SK_ID_PREV found in installments_payments.
  origination_date = anchor + DAYS_DECISION of previous_application (every loan in the
  sample is decided before its first due day); principal = sum of AMT_INSTALMENT over
  the distinct instalments (NUM_INSTALMENT_NUMBER, NUM_INSTALMENT_VERSION) of the loan in
  the file; term_months = CNT_PAYMENT, empty when 0 (revolving loans); product = NAME_CONTRACT_TYPE;
  channel = CHANNEL_TYPE; borrower_id = SK_ID_CURR (hashed by the import); AMT_CREDIT,
  NAME_PORTFOLIO and NAME_YIELD_GROUP as extra attributes.
- ``installments.csv``: one row per payment row of the source. installment_no numbers
  the distinct (NUM_INSTALMENT_NUMBER, NUM_INSTALMENT_VERSION) pairs of a loan from 1 in
  that order; due_date = anchor + DAYS_INSTALMENT; paid_date = anchor +
  DAYS_ENTRY_PAYMENT; principal_due = AMT_INSTALMENT; principal_paid = AMT_PAYMENT.
  Partial payments of one instalment stay several rows with the same installment_no.

Usage::

    python examples/home_credit.py --out /tmp/hc [--db /tmp/hc.duckdb] [--load]
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples import _tape  # noqa: E402

DEFAULT_SOURCE = _tape.REALDATA / "home-credit-sample"

# Day 0 of every DAYS_* column. The real application dates are not published.
ANCHOR_DATE = dt.date(2018, 5, 31)

# DAYS_* value that Home Credit uses for "not applicable".
DAYS_SENTINEL = 365243

AMOUNT_COLUMNS = ("AMT_INSTALMENT", "AMT_PAYMENT")
FEN = Decimal("0.01")


def to_fen(text: str) -> Decimal:
    """Round a source amount (e.g. '15737.985') to the fen, halves away from zero."""
    return Decimal(text).quantize(FEN, rounding=ROUND_HALF_UP)


def _days_to_dates(days: pd.Series) -> pd.Series:
    """Return ISO dates ``ANCHOR_DATE + days``; the sentinel and missing values become empty."""
    valid = days.where(days != DAYS_SENTINEL)
    dates = pd.Timestamp(ANCHOR_DATE) + pd.to_timedelta(valid, unit="D")
    return dates.dt.strftime("%Y-%m-%d")


def convert(source: Path) -> dict[str, pd.DataFrame]:
    """Read installments_payments and previous_application; return loans and installments.

    Raises
    ------
    ValueError
        If a loan in installments_payments has no previous_application row, or its
        decision day is later than its first due day.
    """
    # Amounts are read as text and rounded as decimals, so totals are exact to the fen.
    payments = pd.read_csv(
        source / "installments_payments.csv",
        encoding="utf-8-sig",
        dtype={column: str for column in AMOUNT_COLUMNS},
    )
    for column in AMOUNT_COLUMNS:
        payments[column] = payments[column].map(to_fen)
    applications = pd.read_csv(
        source / "previous_application.csv", encoding="utf-8-sig", dtype={"AMT_CREDIT": str}
    )
    payments = payments.sort_values(
        ["SK_ID_PREV", "NUM_INSTALMENT_NUMBER", "NUM_INSTALMENT_VERSION", "DAYS_ENTRY_PAYMENT"],
        kind="stable",
    ).reset_index(drop=True)

    # installment_no: rank of (number, version) within the loan, 1-based.
    schedule_key = payments[["SK_ID_PREV", "NUM_INSTALMENT_NUMBER", "NUM_INSTALMENT_VERSION"]]
    first_of_instalment = ~schedule_key.duplicated()
    payments["installment_no"] = first_of_instalment.astype(int).groupby(
        payments["SK_ID_PREV"]
    ).cumsum()

    # One AMT_INSTALMENT per distinct instalment: partial-payment rows repeat it.
    schedule = payments[first_of_instalment]
    per_loan = schedule.groupby("SK_ID_PREV").agg(
        principal=("AMT_INSTALMENT", "sum"), first_due_day=("DAYS_INSTALMENT", "min")
    )
    loans = per_loan.join(applications.set_index("SK_ID_PREV"), how="left")
    missing = loans.index[loans["DAYS_DECISION"].isna()]
    if len(missing):
        raise ValueError(
            f"{len(missing)} loans have no previous_application row, e.g. {list(missing[:5])}"
        )
    late = loans.index[loans["DAYS_DECISION"] > loans["first_due_day"]]
    if len(late):
        raise ValueError(
            f"{len(late)} loans are decided after their first due day, e.g. {list(late[:5])}"
        )

    loans_table = pd.DataFrame(
        {
            "loan_id": loans.index.astype(str),
            "borrower_id": loans["SK_ID_CURR"].astype("int64").astype(str),
            "origination_date": _days_to_dates(loans["DAYS_DECISION"]).to_numpy(),
            "principal": loans["principal"].to_numpy(),
            # Revolving loans have CNT_PAYMENT 0: no contractual term, left empty.
            "term_months": loans["CNT_PAYMENT"].astype("Int64").where(loans["CNT_PAYMENT"] > 0).to_numpy(),
            "product": loans["NAME_CONTRACT_TYPE"].to_numpy(),
            "channel": loans["CHANNEL_TYPE"].to_numpy(),
            "amt_credit": loans["AMT_CREDIT"].to_numpy(),
            "name_portfolio": loans["NAME_PORTFOLIO"].to_numpy(),
            "name_yield_group": loans["NAME_YIELD_GROUP"].to_numpy(),
        }
    )

    installments = pd.DataFrame(
        {
            "loan_id": payments["SK_ID_PREV"].astype(str),
            "installment_no": payments["installment_no"],
            "due_date": _days_to_dates(payments["DAYS_INSTALMENT"]),
            "principal_due": payments["AMT_INSTALMENT"],
            "paid_date": _days_to_dates(payments["DAYS_ENTRY_PAYMENT"]),
            "principal_paid": payments["AMT_PAYMENT"],
            "as_of_date": ANCHOR_DATE.isoformat(),
        }
    )
    return {"loans": loans_table, "installments": installments}


if __name__ == "__main__":
    sys.exit(
        _tape.main(
            "Convert the Home Credit installments sample into LoanLens tape files "
            "(internal tests only; write outside the repository).",
            DEFAULT_SOURCE,
            convert,
            outside_repo=True,
        )
    )
