"""Roll-rate queries on month_facts against a plain pandas self-join of the raw rows.

month_facts carries each row's next month-end (next_dpd, next_status,
next_outstanding_principal), which must stay null across a gap in a loan's month-ends.
The random tape (fixed seed) has such gaps, payoffs, charge-offs and loans of several
products. The expected values pair each active t-1 row with the same loan's row at t in
pandas, as the metric definition states it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.buckets import DEFAULT_BUCKETS, parse_buckets
from analysis.filters import Filters, month_end
from analysis.rollrate import flow_rates, load_flow_links, load_transitions
from queries import db
from tests.fixtures_vintage import write_tape

SEED = 4_242
N_LOANS = 300
FIRST_MONTH = dt.date(2025, 1, 31)
N_MONTHS = 14


def _month_end(index: int) -> dt.date:
    year, month = divmod(FIRST_MONTH.month - 1 + index, 12)
    return month_end(dt.date(FIRST_MONTH.year + year, month + 1, 1))


def _random_tape(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    loans, months = [], []
    for number in range(N_LOANS):
        loan_id = f"R{number:04d}"
        start = int(rng.integers(0, N_MONTHS - 2))
        loans.append(
            {
                "loan_id": loan_id,
                "origination_date": _month_end(start).replace(day=1),
                "principal": 10_000.0,
                "product": str(rng.choice(["cash", "shop"])),
                "channel": "app",
                "province": "P",
                "grade": str(rng.choice(["A", "B"])),
            }
        )
        dpd, balance = 0, 10_000.0
        for index in range(start, N_MONTHS):
            if rng.random() < 0.08:
                continue  # a missing month-end
            roll = rng.random()
            status = "active"
            if roll < 0.04:
                status = "paid_off"
            elif roll < 0.07 and dpd > 90:
                status = "charged_off"
            elif roll < 0.45:
                dpd += int(rng.integers(25, 36))
            elif roll < 0.6:
                dpd = 0
            balance = round(balance * 0.95, 2)
            months.append(
                {
                    "loan_id": loan_id,
                    "snapshot_date": _month_end(index),
                    "dpd": dpd,
                    "outstanding_principal": 0.0 if status == "paid_off" else balance,
                    "status": status,
                    "charged_off_amount": balance if status == "charged_off" else 0.0,
                }
            )
            if status != "active":
                break
    return pd.DataFrame(loans), pd.DataFrame(months)


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    loans, months = _random_tape(np.random.default_rng(SEED))
    path = write_tape(tmp_path_factory.mktemp("rollrate_facts") / "tape.duckdb", loans, months)
    con = db.connect(path, read_only=True)
    yield con, loans, months
    con.close()


def _pairs(loans: pd.DataFrame, months: pd.DataFrame, month: dt.date, as_of: dt.date, products) -> pd.DataFrame:
    """Active rows at t-1 of loans in scope, left-joined to the same loan's row at t."""
    scope = loans[loans["origination_date"] <= as_of]
    if products:
        scope = scope[scope["product"].isin(products)]
    previous_end = month.replace(day=1) - dt.timedelta(days=1)
    previous = months[
        (months["snapshot_date"] == previous_end)
        & (previous_end < as_of)
        & ~months["status"].isin(["paid_off", "charged_off"])
        & months["loan_id"].isin(scope["loan_id"])
    ]
    current = months[(months["snapshot_date"] == month) & (months["snapshot_date"] <= as_of)]
    return previous.merge(current, on="loan_id", how="left", suffixes=("", "_t"))


def _code(buckets, dpd, status) -> float:
    if pd.isna(status):
        return np.nan
    if status == "paid_off":
        return buckets.paid_code
    if status == "charged_off":
        return buckets.wo_code
    return buckets.code_of_dpd(int(dpd))


CASES = [
    (Filters(as_of=_month_end(N_MONTHS - 1)), DEFAULT_BUCKETS),
    (Filters(as_of=_month_end(N_MONTHS - 3), products=("cash",)), parse_buckets("29,59,89")),
    (Filters(as_of=_month_end(N_MONTHS - 4) - dt.timedelta(days=5)), parse_buckets("30")),
]


@pytest.mark.parametrize(("filters", "buckets"), CASES)
def test_transitions_match_pandas(tape, filters, buckets):
    con, loans, months = tape
    first, last = _month_end(1), _month_end(N_MONTHS - 1)
    actual = load_transitions(con, filters, buckets, first, last)

    expected_parts = []
    for index in range(1, N_MONTHS):
        month = _month_end(index)
        pairs = _pairs(loans, months, month, filters.as_of, filters.products)
        if pairs.empty:
            continue
        pairs["from_code"] = [buckets.code_of_dpd(dpd) for dpd in pairs["dpd"]]
        pairs["to_code"] = [_code(buckets, d, s) for d, s in zip(pairs["dpd_t"], pairs["status_t"])]
        pairs["next_balance"] = pairs["outstanding_principal_t"].fillna(0.0)
        grouped = pairs.groupby(["from_code", "to_code"], dropna=False).agg(
            loan_count=("loan_id", "size"),
            balance=("outstanding_principal", "sum"),
            next_balance=("next_balance", "sum"),
        )
        expected_parts.append(grouped.reset_index().assign(month=month))
    expected = pd.concat(expected_parts, ignore_index=True)

    key = ["month", "from_code", "to_code"]
    actual = actual.assign(to_code=actual["to_code"].astype(float)).sort_values(key, na_position="last")
    expected = expected.sort_values(key, na_position="last")
    assert len(actual) == len(expected)
    assert list(actual["month"]) == list(expected["month"])
    assert list(actual["from_code"]) == list(expected["from_code"].astype(int))
    np.testing.assert_array_equal(actual["to_code"].to_numpy(), expected["to_code"].to_numpy())
    assert list(actual["loan_count"]) == list(expected["loan_count"])
    np.testing.assert_allclose(actual["balance"], expected["balance"], rtol=1e-12)
    np.testing.assert_allclose(actual["next_balance"], expected["next_balance"], rtol=1e-12)


def test_tape_has_gaps_after_active_rows(tape):
    # Without such rows the gap handling of next_* would go untested.
    _, loans, months = tape
    pairs = pd.concat(
        _pairs(loans, months, _month_end(index), _month_end(N_MONTHS - 1), ())
        for index in range(1, N_MONTHS)
    )
    assert pairs["status_t"].isna().sum() > 10


@pytest.mark.parametrize(("filters", "buckets"), CASES)
def test_flow_links_match_pandas(tape, filters, buckets):
    con, loans, months = tape
    first, last = _month_end(1), _month_end(N_MONTHS - 1)
    actual = load_flow_links(con, filters, buckets, first, last).set_index("month")

    low = buckets.upper_bounds[-2] if len(buckets.upper_bounds) > 1 else 0
    high = buckets.upper_bounds[-1]
    for index in range(1, N_MONTHS):
        month = _month_end(index)
        pairs = _pairs(loans, months, month, filters.as_of, filters.products)
        arrived = (pairs["status_t"] != "paid_off") & (pairs["status_t"] != "charged_off") & (pairs["dpd_t"] > high)
        from_before = (pairs["dpd"] > low) & (pairs["dpd"] <= high)
        roll_in = pairs.loc[arrived & from_before, "outstanding_principal_t"].sum()
        write_off = pairs.loc[pairs["status_t"] == "charged_off", "outstanding_principal"].sum()
        has_row = month in actual.index
        assert has_row == bool((arrived | (pairs["status_t"] == "charged_off")).any()), month
        if has_row:
            assert actual.loc[month, "open_roll_in_balance"] == pytest.approx(roll_in, rel=1e-12), month
            assert actual.loc[month, "write_off_balance"] == pytest.approx(write_off, rel=1e-12), month


def test_flow_rates_c_to_m1_match_pandas(tape):
    con, loans, months = tape
    filters = CASES[0][0]
    table = flow_rates(con, filters, DEFAULT_BUCKETS).table
    link = table[(table["from_bucket"] == "C") & (table["to_bucket"] == "M1")].set_index("month")

    for index in range(1, N_MONTHS):
        month = _month_end(index)
        previous_end = _month_end(index - 1)
        active = ~months["status"].isin(["paid_off", "charged_off"])
        c_before = months[(months["snapshot_date"] == previous_end) & active & (months["dpd"] == 0)]
        m1_now = months[(months["snapshot_date"] == month) & active & months["dpd"].between(1, 30)]
        expected = m1_now["outstanding_principal"].sum() / c_before["outstanding_principal"].sum()
        assert link.loc[month, "flow_rate"] == pytest.approx(expected, rel=1e-12), month


def test_flow_denominators_match_pandas(tape):
    con, loans, months = tape
    buckets = parse_buckets("30")
    table = flow_rates(con, Filters(as_of=_month_end(N_MONTHS - 1)), buckets).table

    active = months[~months["status"].isin(["paid_off", "charged_off"])]
    codes = [buckets.code_of_dpd(dpd) for dpd in active["dpd"]]
    expected = active.assign(code=codes).groupby(["snapshot_date", "code"])["outstanding_principal"].sum()
    for row in table.itertuples():
        previous_end = row.month.replace(day=1) - dt.timedelta(days=1)
        code = buckets.labels.index(row.from_bucket)
        assert row.denominator == pytest.approx(expected.get((previous_end, code), 0.0), rel=1e-12), row
