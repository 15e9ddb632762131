"""Loan states at each cohort's latest MOB (query vintage_state_mix) against plain pandas.

The reference below recomputes the state of every loan from the raw loan and month frames,
independently of the SQL and of the fact tables. The random tape (fixed seed) contains
the cases the query must count correctly. Some loans miss the month-end at the target
MOB, some have rows booked after a charge-off, some were bad and cured before paying off,
and some were originated after the as-of month.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.buckets import parse_buckets
from analysis.filters import Filters, month_end
from analysis.vintage import load_state_mix
from queries import db
from tests.fixtures_vintage import LOAN_COLUMNS, MONTH_COLUMNS, write_tape

FIRST_MONTH = dt.date(2024, 1, 31)
N_MONTHS = 18
AS_OF = dt.date(2025, 4, 30)


def _month_ends(count: int) -> list[dt.date]:
    ends = [FIRST_MONTH]
    for _ in range(count - 1):
        ends.append(month_end(ends[-1] + dt.timedelta(days=1)))
    return ends


def _random_tape(seed: int = 23, n_loans: int = 500) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw loans that walk between current, late, paid off and charged off each month."""
    rng = np.random.default_rng(seed)
    ends = _month_ends(N_MONTHS)
    loan_rows, month_rows = [], []
    for number in range(n_loans):
        loan_id = f"R{number:04d}"
        first = int(rng.integers(0, N_MONTHS))
        origination = ends[first].replace(day=int(rng.integers(1, 28)))
        principal = float(rng.integers(100, 5000) * 10)
        product = ["p1", "p2"][number % 2]
        loan_rows.append((loan_id, origination, principal, product, "app", "广东省", "A"))
        dpd = 0
        for index in range(first, N_MONTHS):
            draw = rng.random()
            if index > first and draw < 0.04:
                month_rows.append((loan_id, ends[index], 0, 0.0, "paid_off", None))
                break
            if dpd >= 90 and draw < 0.3:
                month_rows.append((loan_id, ends[index], dpd + 30, 0.0, "charged_off", principal))
                # Some lenders keep booking the charged-off loan while recovering it.
                for later in range(index + 1, min(index + 3, N_MONTHS)):
                    if rng.random() < 0.5:
                        month_rows.append((loan_id, ends[later], dpd + 30, 0.0, "charged_off", None))
                break
            if index > first:
                if rng.random() < 0.15:
                    dpd += 30
                elif rng.random() < 0.5:
                    dpd = 0
            # About one month-end in twelve is missing from the tape.
            if rng.random() < 0.08:
                continue
            month_rows.append((loan_id, ends[index], dpd, principal, "active", None))
    loans = pd.DataFrame(loan_rows, columns=LOAN_COLUMNS)
    months = pd.DataFrame(month_rows, columns=MONTH_COLUMNS)
    return loans, months


def _month_number(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def reference_state_mix(
    loans: pd.DataFrame,
    months: pd.DataFrame,
    as_of: dt.date,
    threshold: int,
    bounds: list[int],
    quarterly: bool,
) -> pd.DataFrame:
    """Count loans and principal per (vintage, state code) at each cohort's latest MOB."""
    loans = loans[loans["origination_date"] <= as_of].copy()
    origination = loans["origination_date"].map(_month_number)
    vintage = origination - (origination % 12 % 3 if quarterly else 0)
    last_origination = vintage + (2 if quarterly else 0)
    loans["vintage"] = vintage
    loans["reached_mob"] = _month_number(as_of) - last_origination
    loans["target"] = origination + loans["reached_mob"]
    loans = loans[loans["reached_mob"] >= 0]

    rows = months.merge(loans[["loan_id", "target"]], on="loan_id")
    rows["month"] = rows["snapshot_date"].map(_month_number)
    rows = rows[rows["month"] <= rows["target"]]
    rows = rows.assign(
        bad=(rows["dpd"] > threshold) | (rows["status"] == "charged_off"),
        paid=rows["status"] == "paid_off",
    )
    flags = rows.groupby("loan_id")[["bad", "paid"]].any()
    target_dpd = rows[rows["month"] == rows["target"]].set_index("loan_id")["dpd"]

    states = loans.set_index("loan_id")
    states["bad"] = flags["bad"].reindex(states.index, fill_value=False)
    states["paid"] = flags["paid"].reindex(states.index, fill_value=False)
    states["target_dpd"] = target_dpd.reindex(states.index)

    def code(row) -> float:
        if row["bad"]:
            return len(bounds) + 4
        if row["paid"]:
            return len(bounds) + 2
        if pd.isna(row["target_dpd"]):
            return np.nan
        if row["target_dpd"] <= 0:
            return 0
        return 1 + sum(bound < row["target_dpd"] for bound in bounds)

    states["state_code"] = states.apply(code, axis=1)
    grouped = states.groupby(["vintage", "state_code"], dropna=False).agg(
        loan_count=("principal", "size"), principal=("principal", "sum")
    )
    grouped = grouped.reset_index()
    grouped["vintage"] = [dt.date(number // 12, number % 12 + 1, 1) for number in grouped["vintage"]]
    return grouped


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    loans, months = _random_tape()
    path = write_tape(tmp_path_factory.mktemp("state_mix") / "tape.duckdb", loans, months)
    connection = db.connect(path, read_only=True)
    yield connection, loans, months
    connection.close()


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(state_code=frame["state_code"].astype(float).fillna(-1))
    return frame.sort_values(["vintage", "state_code"]).reset_index(drop=True)


@pytest.mark.parametrize(
    ("cohort", "threshold", "bounds", "products"),
    [
        ("month", 30, [30, 60, 90, 120, 150, 180], ()),
        ("quarter", 30, [30, 60, 90, 120, 150, 180], ()),
        ("month", 60, [30, 90], ("p1",)),
        ("quarter", 0, [30], ("p2",)),
    ],
)
def test_state_mix_matches_pandas(tape, cohort, threshold, bounds, products):
    con, loans, months = tape
    buckets = parse_buckets(",".join(map(str, bounds)))
    filters = Filters(as_of=AS_OF, products=products)
    actual = _sorted(load_state_mix(con, filters, buckets, threshold, cohort))

    chosen = loans[loans["product"].isin(products)] if products else loans
    expected = _sorted(
        reference_state_mix(chosen, months, AS_OF, threshold, bounds, cohort == "quarter")
    )

    assert len(actual) == len(expected)
    assert actual["vintage"].tolist() == expected["vintage"].tolist()
    assert actual["state_code"].tolist() == expected["state_code"].tolist()
    assert actual["loan_count"].tolist() == expected["loan_count"].tolist()
    assert np.allclose(actual["principal"], expected["principal"], rtol=0, atol=0.005)


def test_state_mix_has_missing_snapshots(tape):
    con, _, _ = tape
    buckets = parse_buckets("30,60,90,120,150,180")
    mix = load_state_mix(con, Filters(as_of=AS_OF), buckets, 30)
    # The tape drops month-ends at random, so some open loans have no state at MOB k.
    assert mix["state_code"].isna().any()
    assert (mix["state"] == "EVER").any()
    assert (mix["state"] == "PAID").any()
