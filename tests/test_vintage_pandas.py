"""Vintage and migration numbers against a plain pandas reimplementation.

The reference functions in tests/fixtures_vintage.py recompute every definition from the
raw loan and month frames with pandas, independently of the SQL. They are compared on a
simulated portfolio (tests/fixtures_vintage.py, fixed seed) and on the UCI Taiwan credit
card panel (tests/fixtures_uci.py).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.buckets import DEFAULT_BUCKETS, parse_buckets
from analysis.filters import Filters
from analysis.rollrate import flow_rates, load_transitions, migration_matrix
from analysis.vintage import load_vintage_cells, vintage_curves
from queries import db
from tests.fixtures_uci import UCI_AS_OF, UCI_MONTHS, uci_frames, write_tape
from tests.fixtures_vintage import (
    LOAN_COLUMNS,
    reference_bucket_balances,
    reference_transitions,
    reference_vintage,
    simulate_markov_tape,
)


def _frames(con) -> tuple[pd.DataFrame, pd.DataFrame]:
    loans = con.execute(
        f"select {', '.join(LOAN_COLUMNS)} from loans"
    ).df()
    loans["principal"] = loans["principal"].astype(float)
    loans["origination_date"] = pd.to_datetime(loans["origination_date"]).dt.date
    months = con.execute(
        "select loan_id, snapshot_date, dpd, outstanding_principal, status from loan_months"
    ).df()
    months["outstanding_principal"] = months["outstanding_principal"].astype(float)
    months["snapshot_date"] = pd.to_datetime(months["snapshot_date"]).dt.date
    return loans, months


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    path, as_of = simulate_markov_tape(tmp_path_factory.mktemp("sim") / "sim.duckdb", n_loans=3000)
    connection = db.connect(path, read_only=True)
    loans, months = _frames(connection)
    yield connection, loans, months, as_of
    connection.close()


@pytest.fixture(scope="module")
def uci(tmp_path_factory, realdata):
    loans, months = uci_frames(realdata)
    path = write_tape(tmp_path_factory.mktemp("uci") / "uci.duckdb", loans, months)
    connection = db.connect(path, read_only=True)
    loans, months = _frames(connection)
    yield connection, loans, months
    connection.close()


def _compare_cells(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    actual = actual.sort_values(["vintage", "mob"]).reset_index(drop=True)
    expected = expected.sort_values(["vintage", "mob"]).reset_index(drop=True)
    assert len(actual) == len(expected)
    assert (actual["vintage"] == expected["vintage"]).all()
    assert (actual["mob"] == expected["mob"]).all()
    for column in ("loan_count", "ever_bad_count", "current_bad_count"):
        assert (actual[column].to_numpy() == expected[column].to_numpy()).all(), column
    for column in ("principal", "ever_bad_principal", "current_bad_balance"):
        assert np.allclose(actual[column], expected[column], atol=0.005, rtol=0), column


def _compare_month(con, months, month, bounds, filters=Filters(), loan_ids=None) -> None:
    buckets = parse_buckets(",".join(map(str, bounds)))
    actual = load_transitions(con, filters, buckets, month, month)
    actual = actual.assign(to_code=actual["to_code"].fillna(-1).astype(int))
    expected = reference_transitions(months, month, bounds, loan_ids)
    merged = expected.merge(actual, on=["from_code", "to_code"], how="outer", suffixes=("_ref", ""))
    assert merged["loan_count"].notna().all(), "SQL is missing a transition"
    assert merged["loan_count_ref"].notna().all(), "SQL has an extra transition"
    assert (merged["loan_count"] == merged["loan_count_ref"]).all()
    assert np.allclose(merged["balance"], merged["balance_ref"], atol=0.005)
    assert np.allclose(merged["next_balance"], merged["next_balance_ref"], atol=0.005)


@pytest.mark.parametrize("threshold", [0, 30, 90])
@pytest.mark.parametrize("quarterly", [False, True])
def test_simulated_vintage_matches_pandas(simulated, threshold, quarterly):
    con, loans, months, as_of = simulated
    actual = load_vintage_cells(con, Filters(), threshold, "quarter" if quarterly else "month")
    expected = reference_vintage(loans, months, as_of, threshold, quarterly)
    _compare_cells(actual, expected)


def test_simulated_vintage_earlier_as_of(simulated):
    con, loans, months, _ = simulated
    as_of = dt.date(2025, 3, 31)
    actual = load_vintage_cells(con, Filters(as_of=as_of), 30)
    _compare_cells(actual, reference_vintage(loans, months, as_of, 30))


@pytest.mark.parametrize("bounds", [list(DEFAULT_BUCKETS.upper_bounds), [29, 59, 89]])
def test_simulated_transitions_match_pandas(simulated, bounds):
    con, _, months, as_of = simulated
    for month in (dt.date(2024, 2, 29), dt.date(2024, 12, 31), as_of):
        _compare_month(con, months, month, bounds)


def test_simulated_window_matrix_matches_pandas(simulated):
    con, _, months, _ = simulated
    window = [dt.date(2025, 7, 31), dt.date(2025, 8, 31), dt.date(2025, 9, 30)]
    bounds = list(DEFAULT_BUCKETS.upper_bounds)
    pooled = pd.concat([reference_transitions(months, month, bounds) for month in window])
    pooled = pooled[pooled["to_code"] >= 0].groupby(["from_code", "to_code"]).sum(numeric_only=True)
    matrix = migration_matrix(con, Filters(), month_from=window[0], month_to=window[-1])
    labels = DEFAULT_BUCKETS.labels
    for (from_code, to_code), row in pooled.iterrows():
        from_total = pooled.loc[from_code]
        source, target = labels[from_code], labels[to_code]
        assert matrix.loans.loc[source, target] == row["loan_count"]
        assert matrix.count_shares.loc[source, target] == pytest.approx(
            row["loan_count"] / from_total["loan_count"].sum(), abs=1e-12
        )
        assert matrix.balance_shares.loc[source, target] == pytest.approx(
            row["balance"] / from_total["balance"].sum(), abs=1e-12
        )
    assert matrix.loans.to_numpy().sum() == pooled["loan_count"].sum()


def test_simulated_flow_rates_match_pandas(simulated):
    con, _, months, _ = simulated
    bounds = list(DEFAULT_BUCKETS.upper_bounds)
    flows = flow_rates(con, Filters()).table.set_index(["month", "from_bucket", "to_bucket"])
    month, previous = dt.date(2025, 6, 30), dt.date(2025, 5, 31)
    now = reference_bucket_balances(months, month, bounds)
    before = reference_bucket_balances(months, previous, bounds)
    moves = reference_transitions(months, month, bounds)
    assert flows.loc[(month, "C", "M1"), "flow_rate"] == pytest.approx(now.get(1, 0) / before[0])
    assert flows.loc[(month, "M2", "M3"), "flow_rate"] == pytest.approx(now.get(3, 0) / before[2])
    into_open = moves[(moves["from_code"] == 6) & (moves["to_code"] == 7)]["next_balance"].sum()
    assert flows.loc[(month, "M6", "M7+"), "flow_rate"] == pytest.approx(into_open / before[6])
    written_off = moves[moves["to_code"] == 9]["balance"].sum()
    assert flows.loc[(month, "M7+", "WO"), "flow_rate"] == pytest.approx(written_off / before[7])


def test_simulated_reference_rates_previous_six(simulated):
    con, _, _, _ = simulated
    curves = vintage_curves(con, Filters(), threshold=30, min_loans=120)
    table = curves.table
    wide = table.pivot(index="vintage", columns="mob", values="rate").sort_index()
    small = table.drop_duplicates("vintage").set_index("vintage")["is_small"].sort_index()
    assert small.any()
    assert not small.all()
    eligible = [vintage for vintage in wide.index if not small[vintage]]
    for vintage in wide.index:
        previous = [v for v in eligible if v < vintage][-6:]
        for mob in wide.columns:
            cell = table[(table["vintage"] == vintage) & (table["mob"] == mob)]
            if cell.empty:
                continue
            rates = wide.loc[previous, mob].dropna()
            reference = rates.mean() if len(previous) >= 3 and len(rates) >= 3 else np.nan
            actual = cell["reference_rate"].iloc[0]
            if np.isnan(reference):
                assert np.isnan(actual)
                assert not cell["is_worse"].iloc[0]
            else:
                assert actual == pytest.approx(reference)
                expected_worse = (not small[vintage]) and cell["rate"].iloc[0] > reference
                assert bool(cell["is_worse"].iloc[0]) == expected_worse


@pytest.mark.realdata
@pytest.mark.parametrize("threshold", [0, 30, 60])
def test_uci_vintage_matches_pandas(uci, threshold):
    con, loans, months = uci
    actual = load_vintage_cells(con, Filters(), threshold)
    expected = reference_vintage(loans, months, UCI_AS_OF, threshold)
    _compare_cells(actual, expected)
    # One cohort (January 2005) reaching MOB 8 by September 2005.
    assert actual["mob"].tolist() == list(range(9))


@pytest.mark.realdata
def test_uci_transitions_match_pandas(uci):
    con, _, months = uci
    for month_end, _, _ in UCI_MONTHS[1:]:
        _compare_month(con, months, month_end, list(DEFAULT_BUCKETS.upper_bounds))
        _compare_month(con, months, month_end, [30, 60, 90])


@pytest.mark.realdata
def test_uci_filtered_transitions_match_pandas(uci):
    con, loans, months = uci
    chosen = loans[loans["grade"].isin(["1", "3"])]["loan_id"]
    _compare_month(
        con, months, dt.date(2005, 9, 30), list(DEFAULT_BUCKETS.upper_bounds),
        Filters(grades=("1", "3")), chosen,
    )


@pytest.mark.realdata
def test_uci_matrix_rows_sum_to_one(uci):
    con, _, _ = uci
    matrix = migration_matrix(con, Filters(), month_from=dt.date(2005, 5, 31), month_to=UCI_AS_OF)
    for shares in (matrix.count_shares, matrix.balance_shares):
        sums = shares.sum(axis=1, min_count=1).dropna()
        assert len(sums) >= 5
        assert np.allclose(sums.to_numpy(), 1.0, atol=1e-9, rtol=0)
    # No account in the panel leaves it, so nothing is missing, paid off or written off.
    assert matrix.missing_loans == 0
    assert matrix.loans[["PAID", "WO"]].to_numpy().sum() == 0


@pytest.fixture(scope="module")
def demo(request):
    pytest.importorskip("ingest.demo")
    path = request.getfixturevalue("demo_db")
    connection = db.connect(path, read_only=True)
    loans, months = _frames(connection)
    as_of = connection.execute("select max(snapshot_date) from loan_months").fetchone()[0]
    yield connection, loans, months, as_of
    connection.close()


@pytest.mark.parametrize(("threshold", "quarterly"), [(30, False), (90, True)])
def test_demo_vintage_matches_pandas(demo, threshold, quarterly):
    con, loans, months, as_of = demo
    actual = load_vintage_cells(con, Filters(), threshold, "quarter" if quarterly else "month")
    expected = reference_vintage(loans, months, as_of, threshold, quarterly)
    _compare_cells(actual, expected)


def test_demo_filtered_vintage_matches_pandas(demo):
    con, loans, months, as_of = demo
    product = sorted(loans["product"].dropna().unique())[0]
    chosen = loans[loans["product"] == product]
    actual = load_vintage_cells(con, Filters(products=(product,)), 30)
    expected = reference_vintage(chosen, months[months["loan_id"].isin(set(chosen["loan_id"]))], as_of, 30)
    _compare_cells(actual, expected)


def test_demo_transitions_match_pandas(demo):
    con, _, months, as_of = demo
    for month in (as_of, dt.date(2025, 6, 30), dt.date(2024, 1, 31)):
        _compare_month(con, months, month, list(DEFAULT_BUCKETS.upper_bounds))
    _compare_month(con, months, as_of, [29, 59, 89])
