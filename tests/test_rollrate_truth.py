"""Roll rates and the Markov forecast recover a known simulated truth.

The simulated portfolio (tests/fixtures_vintage.py, seed 7) moves every loan each month
with the fixed transition matrix SIM_MATRIX, so the estimated migration matrix must come
close to it. Tolerance: 4 binomial standard errors of the row's loan count plus 0.002
(chance of a false failure per cell well below 1e-4).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from analysis.filters import Filters
from analysis.rollrate import migration_matrix
from analysis.vintage import forecast_ever_rates
from queries import db
from tests.fixtures_vintage import SIM_MATRIX, SIM_STATES, simulate_markov_tape

MIN_ROW_LOANS = 200


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    path, as_of = simulate_markov_tape(tmp_path_factory.mktemp("truth") / "sim.duckdb")
    connection = db.connect(path, read_only=True)
    yield connection, as_of
    connection.close()


def _tolerance(p: float, n: int) -> float:
    return 4 * np.sqrt(max(p * (1 - p), 1e-6) / n) + 0.002


def test_count_matrix_recovers_truth(simulated):
    con, as_of = simulated
    matrix = migration_matrix(con, Filters(), month_from=dt.date(2024, 2, 29), month_to=as_of)
    checked_rows = 0
    for row_index, source in enumerate(SIM_STATES[:8]):
        n = int(matrix.loans.loc[source].sum())
        if n < MIN_ROW_LOANS:
            continue
        checked_rows += 1
        for column_index, target in enumerate(SIM_STATES):
            truth = SIM_MATRIX[row_index, column_index]
            estimate = matrix.count_shares.loc[source, target]
            assert abs(estimate - truth) <= _tolerance(truth, n), (source, target, estimate, truth)
    assert checked_rows >= 6


def test_balance_matrix_recovers_truth(simulated):
    # Principal stays fixed until a loan leaves and does not affect its moves, so balance
    # shares estimate the same matrix. Principals vary from 1,000 to 20,000, which roughly
    # doubles the variance, so the tolerance is twice the count tolerance.
    con, as_of = simulated
    matrix = migration_matrix(con, Filters(), month_from=dt.date(2024, 2, 29), month_to=as_of)
    for row_index, source in enumerate(SIM_STATES[:8]):
        n = int(matrix.loans.loc[source].sum())
        if n < MIN_ROW_LOANS:
            continue
        for column_index, target in enumerate(SIM_STATES):
            truth = SIM_MATRIX[row_index, column_index]
            estimate = matrix.balance_shares.loc[source, target]
            assert abs(estimate - truth) <= 2 * _tolerance(truth, n), (source, target, estimate, truth)


def test_rows_sum_to_one_every_month(simulated):
    con, as_of = simulated
    month = dt.date(2024, 2, 29)
    while month <= as_of:
        matrix = migration_matrix(con, Filters(), month=month)
        for shares in (matrix.count_shares, matrix.balance_shares):
            sums = shares.sum(axis=1, min_count=1).dropna()
            assert np.allclose(sums.to_numpy(), 1.0, atol=1e-9, rtol=0), month
            empty = matrix.loans.sum(axis=1) == 0
            assert shares[empty].isna().all().all()
        month = (month + dt.timedelta(days=32)).replace(day=1)
        month = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def _true_ever_90(steps: int) -> float:
    """Ever 90+ share after ``steps`` months for a loan starting in C, from SIM_MATRIX.

    States C, M1, M2, M3 (dpd <= 90), PAID, and EVER (M4 and worse, or WO).
    """
    good = 4
    chain = np.zeros((good + 2, good + 2))
    for row in range(good):
        chain[row, :good] = SIM_MATRIX[row, :good]
        chain[row, good] = SIM_MATRIX[row, 8]
        chain[row, good + 1] = SIM_MATRIX[row, 4:8].sum() + SIM_MATRIX[row, 9]
    chain[good, good] = 1.0
    chain[good + 1, good + 1] = 1.0
    vector = np.zeros(good + 2)
    vector[0] = 1.0
    for _ in range(steps):
        vector = vector @ chain
    return float(vector[-1])


def test_forecast_recovers_true_ever_rate(simulated):
    con, _ = simulated
    forecast = forecast_ever_rates(con, Filters(), threshold=90, target_mob=12, window_months=12)
    table = forecast.table
    youngest = table[table["vintage"] == table["vintage"].max()].set_index("mob")
    # The youngest cohort is at MOB 0, all current: its projection is the chain from C.
    assert youngest.index.min() == 0
    for mob in (4, 8, 12):
        truth = _true_ever_90(mob)
        assert youngest.loc[mob, "rate"] == pytest.approx(truth, abs=0.015), mob
    assert youngest.loc[3, "rate"] == 0.0


# The demo portfolio (ingest.demo) ---------------------------------------------------------
# Its truth file (demo_truth.json) gives the nominal monthly transition probabilities and
# the realised transition shares counted during the simulation.

NEXT_BUCKET = {"C": "M1", "M1": "M2", "M2": "M3", "M3": "M4", "M4": "M5", "M5": "M6", "M6": "M7+", "M7+": "WO"}


@pytest.fixture(scope="module")
def demo(request):
    pytest.importorskip("ingest.demo")
    path = request.getfixturevalue("demo_db")
    truth = request.getfixturevalue("demo_truth")
    connection = db.connect(path, read_only=True)
    yield connection, truth
    connection.close()


def _full_window_matrix(con):
    from analysis.rollrate import snapshot_month_range

    first, last = snapshot_month_range(con, Filters())
    return migration_matrix(con, Filters(), month_from=first, month_to=last)


def test_demo_matrix_equals_realised_truth(demo):
    # Restructured loans restart at dpd 0, so the matrix counts them in C.
    con, truth = demo
    matrix = _full_window_matrix(con)
    assert matrix.missing_loans == 0
    for source, realised in truth["transitions"]["realised_by_count"].items():
        assert int(matrix.loans.loc[source].sum()) == realised["loan_months"], source
        shares = matrix.count_shares.loc[source]
        # From C, "same" is C -> C.
        to_current = realised["C"] + realised["restructured"] + (realised["same"] if source == "C" else 0.0)
        assert shares["C"] == pytest.approx(to_current, abs=1e-9), source
        if source != "C":
            assert shares[source] == pytest.approx(realised["same"], abs=1e-9), source
        assert shares[NEXT_BUCKET[source]] == pytest.approx(
            realised["next"] + realised["WO"], abs=1e-9
        ), source
        assert shares["PAID"] == pytest.approx(realised["PAID"], abs=1e-9), source


def test_demo_matrix_recovers_nominal_rates(demo):
    # Nominal cure covers cures that end as PAID at maturity, so C + PAID is compared with
    # cure + restructure. Tolerance: 4 binomial standard errors + 0.005; for M1 another
    # 0.025 because its cure rate depends on the collection arm (two arms, 50/50 draw).
    con, truth = demo
    matrix = _full_window_matrix(con)
    nominal = truth["transitions"]["nominal"]
    for source in ("M1", "M2", "M3", "M4", "M5", "M6", "M7+"):
        row = nominal[source]
        n = int(matrix.loans.loc[source].sum())
        shares = matrix.count_shares.loc[source]
        cure = row["C"]
        roll = row[NEXT_BUCKET[source]]
        extra = 0.0
        if isinstance(cure, dict):
            cure = sum(cure.values()) / len(cure)
            roll = sum(roll.values()) / len(roll)
            extra = 0.025
        cure += row.get("restructured", 0.0)
        checks = {
            "cure": (shares["C"] + shares["PAID"], cure),
            "stay": (shares[source], row[source]),
            "roll": (shares[NEXT_BUCKET[source]], roll),
        }
        for name, (estimate, expected) in checks.items():
            tolerance = 4 * np.sqrt(expected * (1 - expected) / n) + 0.005 + extra
            assert abs(estimate - expected) <= tolerance, (source, name, estimate, expected)


def test_demo_c_to_m1_matches_expected_rate(demo):
    con, truth = demo
    matrix = _full_window_matrix(con)
    expected = truth["c_to_m1"]["overall_expected_rate"]
    n = int(matrix.loans.loc["C"].sum())
    tolerance = 4 * np.sqrt(expected * (1 - expected) / n)
    assert abs(matrix.count_shares.loc["C", "M1"] - expected) <= tolerance


def test_demo_forecast_backtest(demo):
    # Project from the as-of month a year earlier to MOB 12 and compare with what those
    # cohorts show at MOB 12 now. Cohorts hold about 550 loans (standard error of an ever
    # 90+ rate near 4% is about 0.008): 0.03 per cohort, 0.006 on the mean.
    from analysis.vintage import vintage_curves

    con, truth = demo
    as_of = dt.date.fromisoformat(truth["as_of"])
    past = (as_of.replace(day=1) - dt.timedelta(days=335)).replace(day=1)
    past = (past + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    forecast = forecast_ever_rates(con, Filters(as_of=past), threshold=90, target_mob=12, window_months=12)
    projected = forecast.table[forecast.table["mob"] == 12].set_index("vintage_label")["rate"]
    actual = vintage_curves(con, Filters(), threshold=90).table
    actual = actual[actual["mob"] == 12].set_index("vintage_label")["rate"]
    joined = projected.to_frame("projected").join(actual.rename("actual"), how="inner")
    assert len(joined) >= 10
    assert (joined["projected"] - joined["actual"]).abs().max() <= 0.03
    assert abs(joined["projected"].mean() - joined["actual"].mean()) <= 0.006
