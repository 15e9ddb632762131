"""Plain pandas versions of four reports, written the way an analyst's notebook would.

Each function loads the Parquet tapes exported by ``benchmarks/run.py`` (loans.parquet,
loan_months.parquet), computes the report from the definitions in the metric docs, and
returns a frame with the same columns as the ``python -m analysis`` command. They are the
speed baseline and an independent check of LoanLens's results; they read no LoanLens code.
Default settings only: M1 = 1-30 dpd buckets, ever 30+ by count, monthly cohorts,
province M1+ rate by count with a minimum size of 30 active loans.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

CLOSED = ("paid_off", "charged_off")
BUCKET_NAMES = ["C", "M1", "M2", "M3", "M4", "M5", "M6", "M7+"]
BUCKET_EDGES = [0, 30, 60, 90, 120, 150, 180]  # upper dpd bounds of C, M1 ... M6


def _read(folder: Path, as_of: str):
    loans = pd.read_parquet(folder / "loans.parquet")
    months = pd.read_parquet(
        folder / "loan_months.parquet",
        columns=["loan_id", "snapshot_date", "dpd", "outstanding_principal", "status",
                 "charged_off_amount", "recovered_amount"],
    )
    months["snapshot_date"] = pd.to_datetime(months["snapshot_date"])
    months = months[months["snapshot_date"] <= pd.Timestamp(as_of)]
    loans["origination_date"] = pd.to_datetime(loans["origination_date"])
    for frame, columns in ((loans, ["principal"]),
                           (months, ["outstanding_principal", "charged_off_amount", "recovered_amount"])):
        for column in columns:
            frame[column] = frame[column].astype(float)
    return loans, months


def _bucket(dpd: pd.Series) -> pd.Series:
    codes = np.searchsorted(np.array(BUCKET_EDGES), dpd.to_numpy(), side="left")
    return pd.Series(np.array(BUCKET_NAMES)[codes], index=dpd.index)


def vintage(folder: Path, as_of: str) -> pd.DataFrame:
    """Ever 30+ by count per monthly cohort and MOB."""
    loans, months = _read(folder, as_of)
    loans = loans[loans["origination_date"] <= pd.Timestamp(as_of)]
    merged = months.merge(loans[["loan_id", "origination_date"]], on="loan_id")
    merged["mob"] = (
        (merged["snapshot_date"].dt.year - merged["origination_date"].dt.year) * 12
        + merged["snapshot_date"].dt.month - merged["origination_date"].dt.month
    )
    bad_rows = merged[(merged["dpd"] > 30) | (merged["status"] == "charged_off")]
    first_bad = bad_rows.groupby("loan_id")["mob"].min().rename("first_bad_mob")
    loans = loans.join(first_bad, on="loan_id")
    loans["vintage"] = loans["origination_date"].dt.to_period("M")
    as_of_period = pd.Timestamp(as_of).to_period("M")

    rows = []
    for cohort, group in loans.groupby("vintage"):
        max_mob = (as_of_period - cohort).n
        first = group["first_bad_mob"].to_numpy()
        principal = group["principal"].to_numpy()
        for mob in range(max_mob + 1):
            bad = first <= mob
            rows.append({
                "vintage": str(cohort),
                "mob": mob,
                "loans": len(group),
                "principal": principal.sum(),
                "bad_loans": int(bad.sum()),
                "bad_principal": principal[bad].sum(),
                "rate": bad.sum() / len(group),
            })
    return pd.DataFrame(rows)


def rollrate(folder: Path, as_of: str) -> pd.DataFrame:
    """Migration matrix from the month before ``as_of`` to ``as_of``, by count and balance."""
    _, months = _read(folder, as_of)
    t = pd.Timestamp(as_of)
    t_minus_1 = t - pd.offsets.MonthEnd(1)
    before = months[(months["snapshot_date"] == t_minus_1) & ~months["status"].isin(CLOSED)].copy()
    after = months[months["snapshot_date"] == t].copy()
    before["from_bucket"] = _bucket(before["dpd"])
    after["to_bucket"] = _bucket(after["dpd"])
    after.loc[after["status"] == "paid_off", "to_bucket"] = "PAID"
    after.loc[after["status"] == "charged_off", "to_bucket"] = "WO"
    moves = before.merge(after[["loan_id", "to_bucket"]], on="loan_id", how="inner")
    table = (
        moves.groupby(["from_bucket", "to_bucket"])
        .agg(loans=("loan_id", "size"), balance=("outstanding_principal", "sum"))
        .reset_index()
    )
    totals = table.groupby("from_bucket")[["loans", "balance"]].transform("sum")
    table["count_share"] = table["loans"] / totals["loans"]
    table["balance_share"] = table["balance"] / totals["balance"]
    return table


def regions(folder: Path, as_of: str) -> pd.DataFrame:
    """Province M1+ rate by count at ``as_of`` with Wilson 95% intervals."""
    loans, months = _read(folder, as_of)
    active = months[(months["snapshot_date"] == pd.Timestamp(as_of)) & ~months["status"].isin(CLOSED)]
    active = active.merge(loans[["loan_id", "province"]], on="loan_id")
    active["bad"] = active["dpd"] > 0
    active["bad_balance"] = active["outstanding_principal"].where(active["bad"], 0.0)
    table = (
        active.groupby("province")
        .agg(loans=("loan_id", "size"), balance=("outstanding_principal", "sum"),
             bad_loans=("bad", "sum"), bad_balance=("bad_balance", "sum"))
        .reset_index()
        .rename(columns={"province": "region"})
    )
    table["rate"] = table["bad_loans"] / table["loans"]
    lower, upper = proportion_confint(table["bad_loans"], table["loans"], method="wilson")
    table["ci_lower"], table["ci_upper"] = lower, upper
    table["below_min_size"] = table["loans"] < 30
    return table


def kpis(folder: Path, as_of: str) -> pd.DataFrame:
    """Monthly balance, overdue and NPL rates, new loans, charge-offs and recoveries.

    FPD30 is left out: its judging rule needs each loan's first due date, which the
    notebook version does not model; the comparison skips that column.
    """
    loans, months = _read(folder, as_of)
    active = months[~months["status"].isin(CLOSED)].copy()
    balance = active["outstanding_principal"]
    active["m1_balance"] = balance.where(active["dpd"] > 0, 0.0)
    active["par30_balance"] = balance.where(active["dpd"] > 30, 0.0)
    active["npl_balance"] = balance.where(active["dpd"] > 90, 0.0)
    active["m1_loan"] = active["dpd"] > 0
    by_month = active.groupby("snapshot_date").agg(
        active_balance=("outstanding_principal", "sum"),
        active_loans=("loan_id", "size"),
        m1_balance=("m1_balance", "sum"),
        m1_loans=("m1_loan", "sum"),
        par30_balance=("par30_balance", "sum"),
        npl_balance=("npl_balance", "sum"),
    )
    flows = months.groupby("snapshot_date")[["charged_off_amount", "recovered_amount"]].sum()
    loans["month"] = loans["origination_date"] + pd.offsets.MonthEnd(0)
    new = loans.groupby("month").agg(new_loans=("loan_id", "size"), new_amount=("principal", "sum"))
    table = by_month.join(flows, how="outer").join(new, how="left").fillna(0.0)
    table = table[table.index <= pd.Timestamp(as_of)]
    result = pd.DataFrame({
        "month": table.index,
        "active_balance": table["active_balance"],
        "active_loans": table["active_loans"],
        "new_loans": table["new_loans"],
        "new_amount": table["new_amount"],
        "m1plus_balance_rate": table["m1_balance"] / table["active_balance"],
        "m1plus_count_rate": table["m1_loans"] / table["active_loans"],
        "par30_rate": table["par30_balance"] / table["active_balance"],
        "npl_rate": table["npl_balance"] / table["active_balance"],
        "chargeoff_amount": table["charged_off_amount"],
        "recovery_amount": table["recovered_amount"],
    })
    return result.reset_index(drop=True)
