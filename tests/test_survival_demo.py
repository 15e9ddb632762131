"""Survival analysis on the demo portfolio against the generator's documented truth.

The truth is ``demo_truth.json`` (fixture ``demo_truth``): the grade multipliers of the
C -> M1 hazard, documented there as the expected hazard ratios of time to first dpd > 90.
"""

from __future__ import annotations

import pytest

from analysis.filters import Filters
from analysis.survival import cumulative_incidence, kaplan_meier
from analysis.survival_cox import fit_cox
from analysis.survival_data import load_survival_data
from queries import db


@pytest.fixture(scope="module")
def demo_data(demo_db):
    con = db.connect(demo_db, read_only=True)
    try:
        return load_survival_data(con, Filters(), 90)
    finally:
        con.close()


def test_demo_grade_hazard_ratios_inside_intervals(demo_data, demo_truth):
    truth = demo_truth["hazard_model"]["expected_hazard_ratio_time_to_90"]["grade"]
    # Adjusted for the other attributes that multiply the same hazard.
    result = fit_cox(demo_data, ["grade", "product", "channel", "is_first_loan"])
    assert result.fitted
    baseline = result.baselines["grade"]
    rows = result.table[result.table["variable"] == "grade"].set_index("level")
    assert set(rows.index) == set(truth) - {baseline}
    for grade, row in rows.iterrows():
        expected = truth[grade] / truth[baseline]
        assert row["ci_lower"] <= expected <= row["ci_upper"], (grade, expected, row.to_dict())


def test_demo_survival_ordered_by_grade(demo_data):
    km = kaplan_meier(demo_data, "grade")
    at_12 = km.survival_at[km.survival_at["month"] == 12].set_index("segment")["survival"]
    assert at_12["A"] > at_12["C"] > at_12["E"]
    assert km.logrank.p_value < 1e-6
    assert km.summary["loans"].sum() == demo_data.n_loans


def test_demo_competing_risk_below_one_minus_km(demo_data):
    table = cumulative_incidence(demo_data).table
    last = table.iloc[-1]
    # Many demo loans prepay, so 1 − KM must sit visibly above the cumulative incidence.
    assert demo_data.n_prepayments > demo_data.n_defaults
    assert last["one_minus_km"] > last["cif_default"]
