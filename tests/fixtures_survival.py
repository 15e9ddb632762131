"""Simulated portfolios with known hazard ratios, written to real DuckDB files.

Time to default (first month-end with dpd > 90) is exponential in months on book with a
hazard of ``base_hazard × hazard_ratio[grade]``. Time to prepayment is exponential with
``prepay_hazard``. Loans run ``term_months`` and are followed to the as-of month. Loans
originated before the tape's first month are seen from that month on (left truncation),
and only if they had neither defaulted nor paid off by then, as a real tape would show.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from analysis.filters import month_end
from ingest import facts

TRUE_HAZARD_RATIOS = {"A": 1.0, "B": 2.0, "C": 3.5}


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return month_end(dt.date(index // 12, index % 12 + 1, 1))


def simulate_portfolio(
    n_loans: int = 4000,
    seed: int = 7,
    hazard_ratios: dict[str, float] | None = None,
    base_hazard: float = 0.012,
    prepay_hazard: float = 0.02,
    term_months: int = 24,
    first_origination: dt.date = dt.date(2022, 1, 1),
    origination_months: int = 36,
    tape_start: dt.date = dt.date(2023, 1, 31),
    as_of: dt.date = dt.date(2025, 6, 30),
    event_dpd: int = 90,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (loans, loan_months) frames of a simulated portfolio.

    The dpd path of a defaulting loan climbs 30 days a month so that it first exceeds
    ``event_dpd`` at the default month-end.
    """
    hazard_ratios = hazard_ratios or TRUE_HAZARD_RATIOS
    rng = np.random.default_rng(seed)
    grades = np.array(sorted(hazard_ratios))
    grade = rng.choice(grades, size=n_loans, p=np.full(len(grades), 1 / len(grades)))
    ratio = np.array([hazard_ratios[g] for g in grade])
    default_time = rng.exponential(1 / (base_hazard * ratio))
    prepay_time = rng.exponential(1 / prepay_hazard, size=n_loans)
    default_mob = np.ceil(default_time).astype(int)
    prepay_mob = np.ceil(prepay_time).astype(int)

    start_offsets = rng.integers(0, origination_months, size=n_loans)
    origination = [
        dt.date(first_origination.year, first_origination.month, 1) + dt.timedelta(days=int(day))
        for day in rng.integers(0, 28, size=n_loans)
    ]
    origination = [
        _add_months(day, int(offset)).replace(day=min(day.day, 28)) for day, offset in zip(origination, start_offsets)
    ]
    loans = pd.DataFrame(
        {
            "loan_id": [f"L{index:06d}" for index in range(n_loans)],
            "origination_date": origination,
            "principal": np.round(rng.uniform(3000, 50000, size=n_loans), 2),
            "term_months": term_months,
            "annual_rate": np.round(rng.uniform(0.08, 0.24, size=n_loans), 4),
            "product": rng.choice(["消费贷", "经营贷"], size=n_loans),
            "channel": rng.choice(["线上", "线下"], size=n_loans),
            "province": rng.choice(["广东省", "浙江省", "四川省"], size=n_loans),
            "grade": grade,
            "score": np.round(rng.normal(600, 50, size=n_loans), 0),
            "guarantee_type": "信用",
            "is_first_loan": rng.random(n_loans) < 0.6,
            "borrower_age": rng.integers(22, 60, size=n_loans),
        }
    )

    rows = []
    as_of_index = as_of.year * 12 + as_of.month
    tape_index = tape_start.year * 12 + tape_start.month
    for position, loan in enumerate(loans.itertuples()):
        origin_index = loan.origination_date.year * 12 + loan.origination_date.month
        last_mob = as_of_index - origin_index
        if last_mob < 0:
            continue
        first_mob = max(0, tape_index - origin_index)
        d_mob, p_mob = default_mob[position], prepay_mob[position]
        end_mob = min(last_mob, d_mob, p_mob, term_months)
        if end_mob < first_mob:
            continue  # closed before the tape starts: a real tape never shows it
        for mob in range(first_mob, end_mob + 1):
            snapshot = _add_months(loan.origination_date, mob)
            status, dpd = "active", 0
            months_to_default = d_mob - mob
            if mob == d_mob:
                dpd = event_dpd + 15
                status = "active"
            elif 0 < months_to_default <= 3 and d_mob <= min(p_mob, term_months) and d_mob <= last_mob:
                dpd = max(0, event_dpd + 15 - 30 * months_to_default)
            elif mob == p_mob and p_mob < d_mob:
                status = "paid_off"
            elif mob == term_months and term_months < d_mob:
                status = "paid_off"
            rows.append((loan.loan_id, snapshot, dpd, 0 if status == "paid_off" else 1000.0, status))
    months = pd.DataFrame(rows, columns=["loan_id", "snapshot_date", "dpd", "outstanding_principal", "status"])
    return loans, months


def write_portfolio(con, loans: pd.DataFrame, months: pd.DataFrame, attributes: pd.DataFrame | None = None) -> None:
    """Insert simulated frames into the loans, loan_months (and loan_attributes) tables and
    rebuild the fact tables the reports read."""
    columns = ", ".join(loans.columns)
    con.register("sim_loans", loans)
    con.execute(f"insert into loans ({columns}, load_id) select {columns}, 1 from sim_loans")
    con.unregister("sim_loans")
    con.register("sim_months", months)
    con.execute(
        "insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, status, load_id) "
        "select loan_id, snapshot_date, dpd, outstanding_principal, status, 1 from sim_months"
    )
    con.unregister("sim_months")
    if attributes is not None:
        con.register("sim_attributes", attributes)
        con.execute(
            "insert into loan_attributes (loan_id, attribute, value, load_id) "
            "select loan_id, attribute, value, 1 from sim_attributes"
        )
        con.unregister("sim_attributes")
    con.execute(
        "insert into load_log (load_id, table_name, file_name, file_sha256, mode, started_at, result) "
        "values (1, 'loans', 'simulated', '-', 'demo', now(), 'loaded')"
    )
    facts.rebuild(con)
