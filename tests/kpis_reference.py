"""Plain pandas reimplementation of the monthly KPIs, the independent source for KPI tests.

It reads whole tables with ``select *`` and applies the metric definitions row by row in
pandas, sharing no SQL with ``queries/kpis.sql``. Other test areas (for example a UCI panel
test) can call :func:`reference_monthly_kpis` on any LoanLens database connection.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

CLOSED = ("paid_off", "charged_off")


def _month_ends(days: pd.Series) -> pd.Series:
    """Month-end of each date, as Timestamps."""
    return pd.to_datetime(days) + pd.offsets.MonthEnd(0)


def _fpd30_by_loan(loans: pd.DataFrame, months: pd.DataFrame, installments: pd.DataFrame) -> pd.DataFrame:
    """Return loan_id, judged_month, is_fpd30 for every loan (instalments first, else snapshots)."""
    scheduled = installments[installments["installment_no"] == 1].copy()
    scheduled["due_date"] = pd.to_datetime(scheduled["due_date"])
    scheduled["paid_date"] = pd.to_datetime(scheduled["paid_date"])
    first_due = scheduled.groupby("loan_id")["due_date"].min().rename("first_due")
    scheduled = scheduled.join(first_due, on="loan_id")
    deadline = scheduled["first_due"] + pd.Timedelta(days=30)
    scheduled["paid_in_time"] = scheduled["principal_paid"].astype(float).fillna(0).where(
        scheduled["paid_date"].notna() & (scheduled["paid_date"] < deadline), 0.0
    )
    by_schedule = scheduled.groupby("loan_id").agg(
        first_due=("first_due", "first"),
        principal_due=("principal_due", "max"),
        paid=("paid_in_time", "sum"),
    )
    by_schedule["judged_month"] = _month_ends(by_schedule["first_due"] + pd.Timedelta(days=30))
    by_schedule["is_fpd30"] = by_schedule["paid"] < by_schedule["principal_due"].astype(float) - 1
    by_schedule = by_schedule.reset_index()[["loan_id", "judged_month", "is_fpd30"]]

    # Loans without a schedule: first due = origination + 1 month (clamped to month-end).
    others = loans[~loans["loan_id"].isin(by_schedule["loan_id"])][["loan_id", "origination_date"]].copy()
    first_due_dates = [pd.Timestamp(day) + pd.DateOffset(months=1) for day in others["origination_date"]]
    others["judged_month"] = _month_ends(pd.Series(first_due_dates, index=others.index) + pd.Timedelta(days=30))
    history = others.merge(months, on="loan_id", how="left")
    history = history[pd.to_datetime(history["snapshot_date"]) <= history["judged_month"]]
    last = history.sort_values("snapshot_date").groupby("loan_id").tail(1)
    last = last.assign(is_fpd30=(last["dpd"] >= 30) | (last["status"] == "charged_off"))
    others = others.merge(last[["loan_id", "is_fpd30"]], on="loan_id", how="left")
    others["is_fpd30"] = others["is_fpd30"].fillna(False).astype(bool)
    return pd.concat([by_schedule, others[["loan_id", "judged_month", "is_fpd30"]]], ignore_index=True)


def reference_monthly_kpis(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.date | None = None,
    npl_dpd: int = 90,
    loan_ids: set[str] | None = None,
) -> pd.DataFrame:
    """Compute the KPI report table with pandas: one row per month-end up to ``as_of``.

    ``loan_ids`` restricts the loans (the shared filters, applied by the caller). Columns
    match ``analysis.kpis.REPORT_COLUMNS`` plus fpd30_cohort; month is a date.
    """
    loans = con.execute("select * from loans").df()
    months = con.execute("select * from loan_months").df()
    installments = con.execute("select * from installments").df()
    for frame, columns in ((loans, ["origination_date"]), (months, ["snapshot_date"]),
                           (installments, ["due_date", "paid_date"])):
        for column in columns:
            frame[column] = [None if pd.isna(value) else pd.Timestamp(value).date() for value in frame[column]]
    all_months = sorted(set(months["snapshot_date"]))
    if as_of is None:
        as_of = max(all_months)
    all_months = [month for month in all_months if month <= as_of]

    if loan_ids is not None:
        loans = loans[loans["loan_id"].isin(loan_ids)]
    months = months[months["loan_id"].isin(set(loans["loan_id"]))]
    installments = installments[installments["loan_id"].isin(set(loans["loan_id"]))]

    fpd = _fpd30_by_loan(loans[loans["origination_date"] <= as_of], months, installments)
    fpd = fpd.merge(loans[["loan_id", "origination_date"]], on="loan_id")
    fpd["judged_month"] = [stamp.date() for stamp in fpd["judged_month"]]
    fpd["vintage"] = [day.replace(day=1) for day in fpd["origination_date"]]
    cohorts = fpd.groupby("vintage").agg(
        judged_month=("judged_month", "max"), loans=("loan_id", "size"), fpd=("is_fpd30", "sum")
    )
    cohorts = cohorts[cohorts["judged_month"] <= max(all_months)] if all_months else cohorts

    loans = loans.assign(origination_month=[stamp.date() for stamp in _month_ends(loans["origination_date"])])
    rows = []
    for month in all_months:
        at_month = months[months["snapshot_date"] == month]
        active = at_month[~at_month["status"].isin(CLOSED)]
        balance = active["outstanding_principal"].astype(float)
        active_balance = balance.sum()
        originated = loans[loans["origination_month"] == month]
        judged = cohorts[cohorts["judged_month"] <= month]
        if judged.empty:
            fpd_rate, fpd_cohort = np.nan, pd.NaT
        else:
            latest = judged.index.max()
            fpd_rate, fpd_cohort = judged.loc[latest, "fpd"] / judged.loc[latest, "loans"], latest

        def share(mask) -> float:
            return balance[mask].sum() / active_balance if active_balance else np.nan

        rows.append({
            "month": month,
            "active_balance": active_balance,
            "active_loans": len(active),
            "new_loans": len(originated),
            "new_amount": originated["principal"].astype(float).sum(),
            "m1plus_balance_rate": share(active["dpd"] > 0),
            "m1plus_count_rate": (active["dpd"] > 0).sum() / len(active) if len(active) else np.nan,
            "par30_rate": share(active["dpd"] > 30),
            "npl_rate": share(active["dpd"] > npl_dpd),
            "fpd30_count_rate": fpd_rate,
            "chargeoff_amount": at_month["charged_off_amount"].astype(float).fillna(0).sum(),
            "recovery_amount": at_month["recovered_amount"].astype(float).fillna(0).sum(),
            "fpd30_cohort": fpd_cohort,
        })
    return pd.DataFrame(rows)
