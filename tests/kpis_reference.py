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


def _month_end(day) -> dt.date:
    return (pd.Timestamp(day) + pd.offsets.MonthEnd(0)).date()


def _add_month(day: dt.date) -> dt.date:
    """Same day next month, clamped to the month's last day (31 Jan -> 28/29 Feb)."""
    return (pd.Timestamp(day) + pd.DateOffset(months=1)).date()


def _fpd30_by_loan(loans: pd.DataFrame, months: pd.DataFrame, installments: pd.DataFrame) -> pd.DataFrame:
    """Return loan_id, judged_month, is_fpd30 for every loan (instalments first, else snapshots)."""
    rows = []
    with_schedule = set(installments["loan_id"]) if not installments.empty else set()
    months_by_loan = {loan_id: group.sort_values("snapshot_date") for loan_id, group in months.groupby("loan_id")}
    for loan in loans.itertuples():
        if loan.loan_id in with_schedule:
            first = installments[(installments["loan_id"] == loan.loan_id) & (installments["installment_no"] == 1)]
            due = min(first["due_date"])
            deadline = due + dt.timedelta(days=30)
            paid = first.loc[first["paid_date"].notna() & (first["paid_date"] < deadline), "principal_paid"]
            paid_total = float(paid.fillna(0).sum())
            rows.append((loan.loan_id, _month_end(deadline), paid_total < float(first["principal_due"].max()) - 1))
            continue
        first_due = _add_month(loan.origination_date)
        judged = _month_end(first_due + dt.timedelta(days=30))
        history = months_by_loan.get(loan.loan_id)
        is_fpd = False
        if history is not None:
            upto = history[history["snapshot_date"] <= judged]
            if not upto.empty:
                last = upto.iloc[-1]
                is_fpd = bool(last["dpd"] >= 30 or last["status"] == "charged_off")
        rows.append((loan.loan_id, judged, is_fpd))
    return pd.DataFrame(rows, columns=["loan_id", "judged_month", "is_fpd30"])


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
    fpd["vintage"] = [day.replace(day=1) for day in fpd["origination_date"]]
    cohorts = fpd.groupby("vintage").agg(
        judged_month=("judged_month", "max"), loans=("loan_id", "size"), fpd=("is_fpd30", "sum")
    )
    cohorts = cohorts[cohorts["judged_month"] <= max(all_months)] if all_months else cohorts

    rows = []
    for month in all_months:
        at_month = months[months["snapshot_date"] == month]
        active = at_month[~at_month["status"].isin(CLOSED)]
        balance = active["outstanding_principal"].astype(float)
        active_balance = balance.sum()
        originated = loans[[_month_end(day) == month for day in loans["origination_date"]]]
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
