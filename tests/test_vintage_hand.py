"""Vintage table and forecast on the hand-made 5-loan, 4-month tape (tests/fixtures_vintage.py).

Expected values are worked out by hand from the tape (as-of 2026-04-30):

    loan  principal  Jan-31        Feb-28        Mar-31        Apr-30
    A     1000       C   1000      M1 (15) 900   M2 (45) 900   M3 (75) 900
    B     2000       C   2000      C   1800      C   1600      PAID
    C     1500       C   1500      M1 (20) 1500  C   1300      C   1200
    D     3000       C   3000      M1 (10) 3000  M2 (40) 3000  WO (charged off)
    E      500       -             C   500       C   450       (no row)

A-D form the January cohort (MOB 0 = January, reached MOB 3), E the February cohort
(reached MOB 2).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.filters import Filters
from analysis.vintage import forecast_ever_rates, load_vintage_cells, vintage_curves
from queries import db
from tests.fixtures_vintage import hand_tape

JAN, FEB, Q1 = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 1, 1)
CELL_COLUMNS = [
    "vintage", "mob", "loan_count", "principal", "ever_bad_count", "ever_bad_principal",
    "current_bad_count", "current_bad_balance",
]


@pytest.fixture(scope="module")
def hand_con(tmp_path_factory):
    path = hand_tape(tmp_path_factory.mktemp("hand") / "hand.duckdb")
    connection = db.connect(path, read_only=True)
    yield connection
    connection.close()


def _expected(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


def _check(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(actual.columns) == CELL_COLUMNS
    pd.testing.assert_frame_equal(
        actual.reset_index(drop=True), expected, check_dtype=False, check_exact=False
    )


def test_cells_threshold_30_monthly(hand_con):
    # Ever 30+: A and D first exceed 30 days in March (MOB 2). Current 30+ at MOB 3 is A
    # only, because D is charged off.
    expected = _expected(
        [
            (JAN, 0, 4, 7500.0, 0, 0.0, 0, 0.0),
            (JAN, 1, 4, 7500.0, 0, 0.0, 0, 0.0),
            (JAN, 2, 4, 7500.0, 2, 4000.0, 2, 3900.0),
            (JAN, 3, 4, 7500.0, 2, 4000.0, 1, 900.0),
            (FEB, 0, 1, 500.0, 0, 0.0, 0, 0.0),
            (FEB, 1, 1, 500.0, 0, 0.0, 0, 0.0),
            (FEB, 2, 1, 500.0, 0, 0.0, 0, 0.0),
        ]
    )
    _check(load_vintage_cells(hand_con, Filters(), threshold=30), expected)


def test_cells_threshold_0_monthly(hand_con):
    # Ever 0+: A, C and D are late in February (MOB 1); C cures but stays "ever".
    expected = _expected(
        [
            (JAN, 0, 4, 7500.0, 0, 0.0, 0, 0.0),
            (JAN, 1, 4, 7500.0, 3, 5500.0, 3, 5400.0),
            (JAN, 2, 4, 7500.0, 3, 5500.0, 2, 3900.0),
            (JAN, 3, 4, 7500.0, 3, 5500.0, 1, 900.0),
            (FEB, 0, 1, 500.0, 0, 0.0, 0, 0.0),
            (FEB, 1, 1, 500.0, 0, 0.0, 0, 0.0),
            (FEB, 2, 1, 500.0, 0, 0.0, 0, 0.0),
        ]
    )
    _check(load_vintage_cells(hand_con, Filters(), threshold=0), expected)


def test_cells_charge_off_counts_as_ever(hand_con):
    # Ever 60+: A reaches 75 days in April; D never exceeds 60 days but is charged off in
    # April, so both count at MOB 3.
    cells = load_vintage_cells(hand_con, Filters(), threshold=60)
    january = cells[cells["vintage"] == JAN].set_index("mob")
    assert january["ever_bad_count"].tolist() == [0, 0, 0, 2]
    assert january.loc[3, "ever_bad_principal"] == 4000.0
    assert january.loc[3, "current_bad_count"] == 1


def test_cells_quarterly_reach_by_last_month(hand_con):
    # Q1 2026 ends in March, so by April it has reached MOB 1 only. At MOB 1 (each loan's
    # own second month) A, C and D are late: 15, 20 and 10 days; E is current.
    expected = _expected(
        [
            (Q1, 0, 5, 8000.0, 0, 0.0, 0, 0.0),
            (Q1, 1, 5, 8000.0, 3, 5500.0, 3, 5400.0),
        ]
    )
    _check(load_vintage_cells(hand_con, Filters(), threshold=0, cohort="quarter"), expected)


def test_cells_unreached_are_absent(hand_con):
    cells = load_vintage_cells(hand_con, Filters(), threshold=30)
    assert cells[cells["vintage"] == FEB]["mob"].max() == 2
    curves = vintage_curves(hand_con, Filters(), threshold=30)
    heatmap = curves.heatmap()
    assert np.isnan(heatmap.loc["2026-02", 3])
    assert heatmap.loc["2026-02", 2] == 0.0


def test_cells_as_of_earlier_month(hand_con):
    cells = load_vintage_cells(hand_con, Filters(as_of=dt.date(2026, 2, 28)), threshold=0)
    assert cells["vintage"].tolist() == [JAN, JAN, FEB]
    assert cells["ever_bad_count"].tolist() == [0, 3, 0]


def test_curves_rates_by_count_and_balance(hand_con):
    by_count = vintage_curves(hand_con, Filters(), threshold=30, by="count").report()
    january = by_count[by_count["vintage"] == "2026-01"].set_index("mob")
    assert january.loc[3, "rate"] == pytest.approx(2 / 4)
    by_balance = vintage_curves(hand_con, Filters(), threshold=30, by="balance").report()
    january = by_balance[by_balance["vintage"] == "2026-01"].set_index("mob")
    assert january.loc[3, "rate"] == pytest.approx(4000 / 7500)
    current = vintage_curves(hand_con, Filters(), threshold=30, by="balance", basis="current").report()
    january = current[current["vintage"] == "2026-01"].set_index("mob")
    assert january.loc[2, "rate"] == pytest.approx(3900 / 7500)
    assert january.loc[3, "bad_principal"] == 900.0
    assert list(current.columns) == ["vintage", "mob", "loans", "principal", "bad_loans", "bad_principal", "rate"]


def test_curves_small_cohorts_flagged(hand_con):
    curves = vintage_curves(hand_con, Filters(), threshold=30)
    cohorts = curves.cohorts()
    assert cohorts["is_small"].all()
    assert curves.average().empty
    curves = vintage_curves(hand_con, Filters(), threshold=30, min_loans=1)
    assert not curves.cohorts()["is_small"].any()
    average = curves.average().set_index("mob")
    assert average.loc[2, "rate"] == pytest.approx((0.5 + 0.0) / 2)
    assert average.loc[3, "rate"] == pytest.approx(0.5)


def test_curves_reject_bad_choices(hand_con):
    with pytest.raises(ValueError, match="by must be one of"):
        vintage_curves(hand_con, Filters(), by="amount")
    with pytest.raises(ValueError, match="threshold must be"):
        vintage_curves(hand_con, Filters(), threshold=-5)
    with pytest.raises(ValueError, match="cohort must be one of"):
        vintage_curves(hand_con, Filters(), cohort="year")


def test_forecast_by_count_exact(hand_con):
    # Pooled Feb-Apr count matrix: C -> C 4/8, M1 3/8, PAID 1/8; M1 -> C 1/3, M2 2/3.
    # January cohort at MOB 3: C (loan C) 1/4, PAID 1/4, ever 30+ (A, D) 2/4.
    # MOB 4: ever stays 0.5 (C cannot reach M2 in one month), M1 = 1/4 * 3/8.
    # MOB 5: ever = 0.5 + 3/32 * 2/3 = 0.5625.
    forecast = forecast_ever_rates(hand_con, Filters(), threshold=30, target_mob=5)
    january = forecast.table[forecast.table["vintage_label"] == "2026-01"].set_index("mob")
    assert january["rate"].tolist() == pytest.approx([0.5, 0.5, 0.5625])
    assert january["is_projected"].tolist() == [False, True, True]
    february = forecast.table[forecast.table["vintage_label"] == "2026-02"]
    assert february["rate"].tolist() == [0.0, 0.0, 0.0, 0.0]
    missing = forecast.missing_loans.set_index("vintage_label")["loans"]
    assert missing["2026-02"] == 1
    assert missing["2026-01"] == 0


def test_forecast_by_balance_exact(hand_con):
    forecast = forecast_ever_rates(hand_con, Filters(), threshold=30, target_mob=5, by="balance")
    january = forecast.table[forecast.table["vintage_label"] == "2026-01"].set_index("mob")
    current_share = 1500 / 7500          # loan C, by disbursed principal
    ever_share = 4000 / 7500             # A and D
    m1_after_one = current_share * 5500 / 12700
    assert january.loc[3, "rate"] == pytest.approx(ever_share)
    assert january.loc[4, "rate"] == pytest.approx(ever_share)
    assert january.loc[5, "rate"] == pytest.approx(ever_share + m1_after_one * 3900 / 5400)


def test_forecast_start_matches_vintage(hand_con):
    forecast = forecast_ever_rates(hand_con, Filters(), threshold=30, target_mob=6)
    curves = vintage_curves(hand_con, Filters(), threshold=30, min_loans=0)
    start = forecast.table[~forecast.table["is_projected"]].set_index("vintage_label")["rate"]
    latest = curves.cohorts().set_index("vintage_label")["rate"]
    assert start.to_dict() == pytest.approx(latest.to_dict())


def test_forecast_threshold_must_be_boundary(hand_con):
    with pytest.raises(ValueError, match="not a bucket boundary"):
        forecast_ever_rates(hand_con, Filters(), threshold=45)


def test_forecast_skips_cohorts_past_target(hand_con):
    forecast = forecast_ever_rates(hand_con, Filters(), threshold=30, target_mob=2)
    assert forecast.is_empty


def test_empty_database_vintage(con):
    curves = vintage_curves(con, Filters())
    assert curves.is_empty
    assert curves.heatmap().empty
    assert curves.cohorts().empty
    forecast = forecast_ever_rates(con, Filters())
    assert forecast.is_empty
