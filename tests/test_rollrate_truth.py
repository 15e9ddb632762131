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
    # shares estimate the same matrix; principals vary 1,000-20,000, which roughly
    # doubles the variance, hence twice the count tolerance.
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
