"""Convert OpenIntro's ``loans_full_schema`` (10,000 Lending Club loans) into LoanLens tape files.

Source: the ``loans_full_schema`` data set of the OpenIntro project (R package
``openintro``), a sample of Lending Club loans issued January to March 2018. Amounts are
US dollars and are written unchanged as the loan-tape money columns.

Output (see docs/en/examples.md for every choice):

- ``loans.csv``: loan_id = the R row number, origination_date = first day of issue_month,
  principal = loan_amount, term_months = term, annual_rate = interest_rate / 100, grade,
  province = the two-letter US state (kept as written), and extra attributes sub_grade,
  loan_purpose, homeownership, application_type and verified_income.
- ``loan_months.csv``: one snapshot per loan at 2018-06-30. The data carries one status
  and no snapshot date; Current loans issued in January, February and March have paid a
  median of 5, 4 and 3 instalments, which puts the snapshot at the end of June 2018.
  loan_status -> dpd: Current 0, In Grace Period 10, Late (16-30 days) 20,
  Late (31-120 days) 60; Fully Paid -> status paid_off; Charged Off -> status
  charged_off with charged_off_amount = loan_amount - paid_principal.
  outstanding_principal = balance; principal_paid = paid_principal (paid since issue,
  because this is the first and only snapshot).

Usage::

    python examples/openintro_lendingclub.py --out out/lc [--db data/loanlens.duckdb] [--load]
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pandas as pd

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples import _tape  # noqa: E402

DEFAULT_SOURCE = _tape.REALDATA / "lendingclub-openintro-10k" / "loans_full_schema.csv"

SNAPSHOT_DATE = dt.date(2018, 6, 30)

# loan_status -> (dpd, status). The dpd of a "Late (a-b days)" band is a value inside it.
LOAN_STATUS = {
    "Current": (0, "active"),
    "In Grace Period": (10, "active"),
    "Late (16-30 days)": (20, "active"),
    "Late (31-120 days)": (60, "active"),
    "Fully Paid": (0, "paid_off"),
    "Charged Off": (0, "charged_off"),
}

ATTRIBUTES = ["sub_grade", "loan_purpose", "homeownership", "application_type", "verified_income"]


def convert(source: Path) -> dict[str, pd.DataFrame]:
    """Read the OpenIntro CSV and return the loans and loan_months tape tables.

    Raises
    ------
    ValueError
        If loan_status holds a value this converter does not map.
    """
    frame = pd.read_csv(source, keep_default_na=False, na_values=["NA"])
    frame = frame.rename(columns={frame.columns[0]: "row_number"})
    unknown = sorted(set(frame["loan_status"]) - LOAN_STATUS.keys())
    if unknown:
        raise ValueError(
            f"loan_status values {unknown} have no mapping; add them to LOAN_STATUS"
        )

    loan_id = "LC" + frame["row_number"].astype(str).str.zfill(5)
    issue = pd.to_datetime(frame["issue_month"], format="%b-%Y")
    loans = pd.DataFrame(
        {
            "loan_id": loan_id,
            "origination_date": issue.dt.strftime("%Y-%m-%d"),
            "principal": frame["loan_amount"],
            "term_months": frame["term"],
            "annual_rate": (frame["interest_rate"] / 100).round(6),
            "grade": frame["grade"],
            "province": frame["state"],
        }
    )
    for column in ATTRIBUTES:
        loans[column] = frame[column]

    dpd = frame["loan_status"].map(lambda value: LOAN_STATUS[value][0])
    status = frame["loan_status"].map(lambda value: LOAN_STATUS[value][1])
    charged_off = (frame["loan_amount"] - frame["paid_principal"]).round(2).where(
        status == "charged_off"
    )
    loan_months = pd.DataFrame(
        {
            "loan_id": loan_id,
            "snapshot_date": SNAPSHOT_DATE.isoformat(),
            "dpd": dpd,
            "outstanding_principal": frame["balance"].round(2),
            "status": status,
            "principal_paid": frame["paid_principal"].round(2),
            "interest_paid": frame["paid_interest"].round(2),
            "charged_off_amount": charged_off,
        }
    )
    return {"loans": loans, "loan_months": loan_months}


if __name__ == "__main__":
    sys.exit(
        _tape.main(
            "Convert OpenIntro loans_full_schema (Lending Club 2018) into LoanLens tape files.",
            DEFAULT_SOURCE,
            convert,
        )
    )
