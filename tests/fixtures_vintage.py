"""Small loan tapes for the vintage and roll-rate tests, written into real DuckDB files.

``write_tape`` loads plain pandas frames of loans and month-end snapshots through the
storage schema. ``hand_tape`` is a 5-loan, 4-month tape whose every transition the tests
spell out. ``simulate_markov_tape`` draws a portfolio from a known monthly transition
matrix, so the tests can check that the roll rates recover it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.filters import month_end
from ingest import facts
from queries import db

LOAN_COLUMNS = ["loan_id", "origination_date", "principal", "product", "channel", "province", "grade"]
MONTH_COLUMNS = [
    "loan_id", "snapshot_date", "dpd", "outstanding_principal", "status", "charged_off_amount",
]


def write_tape(path: Path, loans: pd.DataFrame, months: pd.DataFrame) -> Path:
    """Create a LoanLens database at ``path`` holding ``loans`` and ``months``; return the path."""
    con = db.connect(path)
    try:
        loans = loans.reindex(columns=LOAN_COLUMNS)
        months = months.reindex(columns=MONTH_COLUMNS)
        con.register("loans_input", loans)
        con.register("months_input", months)
        con.execute(
            """
            insert into loans (loan_id, origination_date, principal, product, channel,
                               province, grade, load_id)
            select loan_id, origination_date::date, principal::decimal(18, 2), product,
                   channel, province, grade, 1
            from loans_input
            """
        )
        con.execute(
            """
            insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal,
                                     status, charged_off_amount, load_id)
            select loan_id, snapshot_date::date, dpd, outstanding_principal::decimal(18, 2),
                   status, charged_off_amount::decimal(18, 2), 1
            from months_input
            """
        )
        con.execute(
            """
            insert into load_log (load_id, table_name, file_name, file_sha256, mode,
                                  started_at, result)
            values (1, 'loan_months', 'fixture', 'fixture', 'demo', now(), 'loaded')
            """
        )
        # Rows inserted by hand bypass the import, which would rebuild the fact tables.
        facts.rebuild(con)
    finally:
        con.close()
    return path


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# The hand-made tape. As-of 2026-04-30. Loans A-D originate in January 2026, E in
# February. Each row: loan, month-end, dpd, outstanding principal, status.
HAND_AS_OF = _date("2026-04-30")
HAND_LOANS = pd.DataFrame(
    {
        "loan_id": ["A", "B", "C", "D", "E"],
        "origination_date": [_date(d) for d in ["2026-01-05", "2026-01-10", "2026-01-20", "2026-01-31", "2026-02-14"]],
        "principal": [1000.0, 2000.0, 1500.0, 3000.0, 500.0],
        "product": ["p1", "p1", "p2", "p2", "p1"],
        "channel": ["app"] * 5,
        "province": ["广东省"] * 5,
        "grade": ["A"] * 5,
    }
)
HAND_MONTHS = pd.DataFrame(
    [
        # A: C -> M1 -> M2 -> M3
        ("A", "2026-01-31", 0, 1000.0, "active", None),
        ("A", "2026-02-28", 15, 900.0, "active", None),
        ("A", "2026-03-31", 45, 900.0, "active", None),
        ("A", "2026-04-30", 75, 900.0, "active", None),
        # B: C -> C -> C -> PAID
        ("B", "2026-01-31", 0, 2000.0, "active", None),
        ("B", "2026-02-28", 0, 1800.0, "active", None),
        ("B", "2026-03-31", 0, 1600.0, "active", None),
        ("B", "2026-04-30", 0, 0.0, "paid_off", None),
        # C: C -> M1 -> C (cured) -> C
        ("C", "2026-01-31", 0, 1500.0, "active", None),
        ("C", "2026-02-28", 20, 1500.0, "active", None),
        ("C", "2026-03-31", 0, 1300.0, "active", None),
        ("C", "2026-04-30", 0, 1200.0, "active", None),
        # D: C -> M1 -> M2 -> WO
        ("D", "2026-01-31", 0, 3000.0, "active", None),
        ("D", "2026-02-28", 10, 3000.0, "active", None),
        ("D", "2026-03-31", 40, 3000.0, "active", None),
        ("D", "2026-04-30", 70, 0.0, "charged_off", 3000.0),
        # E: C -> C -> no snapshot in April (missing)
        ("E", "2026-02-28", 0, 500.0, "active", None),
        ("E", "2026-03-31", 0, 450.0, "active", None),
    ],
    columns=MONTH_COLUMNS,
)
HAND_MONTHS["snapshot_date"] = [_date(d) for d in HAND_MONTHS["snapshot_date"]]


def hand_tape(path: Path) -> Path:
    """Write the hand-made 5-loan, 4-month tape to ``path``."""
    return write_tape(path, HAND_LOANS, HAND_MONTHS)


# A known monthly transition matrix over C, M1..M7+ (default buckets), PAID and WO, used to
# simulate a portfolio. Row = bucket at t-1; columns C, M1..M7+, PAID, WO.
SIM_STATES = ["C", "M1", "M2", "M3", "M4", "M5", "M6", "M7+", "PAID", "WO"]
SIM_MATRIX = np.array(
    [
        # C     M1    M2    M3    M4    M5    M6    M7+   PAID  WO
        [0.920, 0.050, 0, 0, 0, 0, 0, 0, 0.030, 0],
        [0.400, 0.100, 0.480, 0, 0, 0, 0, 0, 0.020, 0],
        [0.150, 0.050, 0.100, 0.700, 0, 0, 0, 0, 0, 0],
        [0.080, 0, 0.020, 0.100, 0.800, 0, 0, 0, 0, 0],
        [0.050, 0, 0, 0.020, 0.080, 0.850, 0, 0, 0, 0],
        [0.030, 0, 0, 0, 0.020, 0.050, 0.900, 0, 0, 0],
        [0.020, 0, 0, 0, 0, 0.010, 0.050, 0.920, 0, 0],
        [0.010, 0, 0, 0, 0, 0, 0, 0.690, 0, 0.300],
    ]
)
SIM_DPD = {"C": 0, "M1": 15, "M2": 45, "M3": 75, "M4": 105, "M5": 135, "M6": 165, "M7+": 200}


def simulate_markov_tape(
    path: Path,
    n_loans: int = 6000,
    first_month: str = "2024-01-31",
    n_months: int = 24,
    seed: int = 7,
) -> tuple[Path, dt.date]:
    """Simulate loans originated over ``n_months`` months from ``SIM_MATRIX``.

    Each loan starts in C at MOB 0 with a principal between 1,000 and 20,000 yuan that
    does not change until it leaves (so balance shares equal count shares in expectation).
    Returns the database path and the as-of month (the last simulated month-end).
    """
    rng = np.random.default_rng(seed)
    start = _date(first_month)
    month_ends = [start]
    for _ in range(n_months - 1):
        month_ends.append(month_end(month_ends[-1] + dt.timedelta(days=1)))
    origination_index = rng.integers(0, n_months, size=n_loans)
    principals = rng.integers(100, 2000, size=n_loans) * 10.0
    cumulative = SIM_MATRIX.cumsum(axis=1)
    loan_rows, month_rows = [], []
    for number in range(n_loans):
        loan_id = f"S{number:06d}"
        first = origination_index[number]
        origination = month_ends[first].replace(day=int(rng.integers(1, 28)))
        loan_rows.append((loan_id, origination, principals[number], "sim", "app", "广东省", "B"))
        state = 0
        for index in range(first, n_months):
            if index > first:
                state = int(np.searchsorted(cumulative[state], rng.random(), side="right"))
                state = min(state, len(SIM_STATES) - 1)
            label = SIM_STATES[state]
            if label == "PAID":
                month_rows.append((loan_id, month_ends[index], 0, 0.0, "paid_off", None))
                break
            if label == "WO":
                month_rows.append((loan_id, month_ends[index], 200, 0.0, "charged_off", principals[number]))
                break
            month_rows.append((loan_id, month_ends[index], SIM_DPD[label], principals[number], "active", None))
    loans = pd.DataFrame(loan_rows, columns=LOAN_COLUMNS)
    months = pd.DataFrame(month_rows, columns=MONTH_COLUMNS)
    return write_tape(path, loans, months), month_ends[-1]


# A plain pandas reimplementation of the vintage and roll-rate definitions, written
# independently of the SQL, so tests can compare the two on the same tape.

CLOSED = ("paid_off", "charged_off")


def _month_index(dates) -> pd.Series:
    stamps = pd.to_datetime(pd.Series(dates))
    return stamps.dt.year * 12 + stamps.dt.month


def reference_bucket(dpd: np.ndarray, bounds: list[int]) -> np.ndarray:
    """Bucket codes by dpd: 0 for dpd <= 0, else 1 + the number of bounds below dpd."""
    dpd = np.asarray(dpd)
    return np.where(dpd <= 0, 0, 1 + np.searchsorted(np.asarray(bounds), dpd, side="left"))


def reference_vintage(
    loans: pd.DataFrame, months: pd.DataFrame, as_of: dt.date, threshold: int, quarterly: bool = False
) -> pd.DataFrame:
    """Vintage cells with the columns of query ``vintage_cells``, computed with pandas."""
    loans = loans[pd.to_datetime(loans["origination_date"]) <= pd.Timestamp(as_of)].copy()
    origination = pd.to_datetime(loans["origination_date"])
    loans["origination_index"] = _month_index(origination).to_numpy()
    period = "Q" if quarterly else "M"
    loans["vintage"] = origination.dt.to_period(period).dt.start_time.dt.date.to_numpy()
    last_month_offset = 2 if quarterly else 0
    months = months[pd.to_datetime(months["snapshot_date"]) <= pd.Timestamp(as_of)]
    rows = months.merge(loans[["loan_id", "origination_index", "vintage", "principal"]], on="loan_id")
    rows = rows.assign(mob=_month_index(rows["snapshot_date"]).to_numpy() - rows["origination_index"])

    # First MOB at which each loan is bad (dpd above the threshold, or charged off).
    bad = rows[(rows["dpd"] > threshold) | (rows["status"] == "charged_off")]
    first_bad = bad.groupby("loan_id")["mob"].min()
    loans["first_bad_mob"] = loans["loan_id"].map(first_bad)
    new_bad = loans.dropna(subset=["first_bad_mob"]).groupby(["vintage", "first_bad_mob"]).agg(
        new_count=("loan_id", "size"), new_principal=("principal", "sum")
    )
    current = rows[(rows["dpd"] > threshold) & ~rows["status"].isin(CLOSED)]
    current = current.groupby(["vintage", "mob"]).agg(
        current_bad_count=("loan_id", "size"), current_bad_balance=("outstanding_principal", "sum")
    )

    as_of_index = as_of.year * 12 + as_of.month
    out = []
    for vintage, cohort in loans.groupby("vintage"):
        reached = as_of_index - (vintage.year * 12 + vintage.month + last_month_offset)
        ever_count, ever_principal = 0, 0.0
        for mob in range(0, reached + 1):
            if (vintage, mob) in new_bad.index:
                ever_count += int(new_bad.loc[(vintage, mob), "new_count"])
                ever_principal += float(new_bad.loc[(vintage, mob), "new_principal"])
            has_current = (vintage, mob) in current.index
            out.append(
                {
                    "vintage": vintage,
                    "mob": mob,
                    "loan_count": len(cohort),
                    "principal": float(cohort["principal"].sum()),
                    "ever_bad_count": ever_count,
                    "ever_bad_principal": ever_principal,
                    "current_bad_count": int(current.loc[(vintage, mob), "current_bad_count"]) if has_current else 0,
                    "current_bad_balance": float(current.loc[(vintage, mob), "current_bad_balance"]) if has_current else 0.0,
                }
            )
    return pd.DataFrame(out)


def reference_transitions(
    months: pd.DataFrame, month: dt.date, bounds: list[int], loan_ids=None
) -> pd.DataFrame:
    """Transitions t-1 -> t for one month t as (from_code, to_code, loan_count, balance,
    next_balance); to_code -1 marks a loan with no snapshot at t. snapshot_date contains dates."""
    if loan_ids is not None:
        months = months[months["loan_id"].isin(set(loan_ids))]
    previous_month = month.replace(day=1) - dt.timedelta(days=1)
    previous = months[(months["snapshot_date"] == previous_month) & ~months["status"].isin(CLOSED)]
    current = months[months["snapshot_date"] == month]
    pairs = previous.merge(current, on="loan_id", how="left", suffixes=("_prev", "_next"))
    n = len(bounds)
    to_code = reference_bucket(pairs["dpd_next"].fillna(0).to_numpy(), bounds)
    to_code = np.where(pairs["status_next"] == "paid_off", n + 2, to_code)
    to_code = np.where(pairs["status_next"] == "charged_off", n + 3, to_code)
    to_code = np.where(pairs["status_next"].isna(), -1, to_code)
    pairs = pairs.assign(
        from_code=reference_bucket(pairs["dpd_prev"].to_numpy(), bounds),
        to_code=to_code,
        next_balance=pairs["outstanding_principal_next"].fillna(0.0),
    )
    return (
        pairs.groupby(["from_code", "to_code"])
        .agg(
            loan_count=("loan_id", "size"),
            balance=("outstanding_principal_prev", "sum"),
            next_balance=("next_balance", "sum"),
        )
        .reset_index()
    )


def reference_bucket_balances(months: pd.DataFrame, month: dt.date, bounds: list[int]) -> dict[int, float]:
    """Active outstanding principal by bucket code at one month-end (snapshot_date as dates)."""
    active = months[(months["snapshot_date"] == month) & ~months["status"].isin(CLOSED)]
    codes = reference_bucket(active["dpd"].to_numpy(), bounds)
    return active.groupby(codes)["outstanding_principal"].sum().to_dict()
