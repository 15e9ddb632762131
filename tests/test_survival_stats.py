"""Kaplan–Meier, log-rank, Aalen–Johansen and Cox against independent implementations.

Expected values come from statsmodels (SurvfuncRight, survdiff, CumIncidenceRight, PHReg),
from lifelines fitted on loan-level rows, and from a simulated portfolio with known hazard
ratios (tests/fixtures_survival.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import AalenJohansenFitter, CoxPHFitter
from lifelines.statistics import multivariate_logrank_test, proportional_hazard_test
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import CumIncidenceRight, SurvfuncRight, survdiff

from analysis.filters import Filters
from analysis.survival import cumulative_incidence, kaplan_meier, load_survival_data
from analysis.survival_cox import fit_cox, schoenfeld_residuals
from analysis.survival_data import SurvivalData
from tests.fixtures_survival import TRUE_HAZARD_RATIOS, simulate_portfolio, write_portfolio


def _records(entry, duration, event_type, **columns) -> SurvivalData:
    frame = pd.DataFrame(
        {
            "loan_id": [f"L{i:05d}" for i in range(len(duration))],
            "entry_mob": np.asarray(entry, dtype=np.int64),
            "duration_mob": np.asarray(duration, dtype=np.int64),
            "event_type": np.asarray(event_type, dtype=np.int64),
            **columns,
        }
    )
    frame["event"] = frame["event_type"] == 1
    return SurvivalData(frame, pd.DataFrame(columns=["loan_id", "record_status"]), 90, None)


def _random_records(n=3000, seed=11, truncated=True, hazards=(0.02, 0.04, 0.07)) -> SurvivalData:
    rng = np.random.default_rng(seed)
    group = rng.choice(["A", "B", "C"], size=n)
    hazard = np.select([group == "A", group == "B"], hazards[:2], hazards[2])
    duration = np.ceil(rng.exponential(1 / hazard)).astype(int)
    censor = rng.integers(1, 30, size=n)
    prepay = np.ceil(rng.exponential(40, size=n)).astype(int)
    end = np.minimum.reduce([duration, censor, prepay])
    event_type = np.where(end == duration, 1, np.where(end == prepay, 2, 0))
    entry = np.where(truncated & (rng.random(n) < 0.3), rng.integers(0, 10, size=n), 0)
    keep = entry < end
    principal = rng.uniform(5_000, 80_000, size=n)
    return _records(
        entry[keep], end[keep], event_type[keep], grade=group[keep], principal=principal[keep]
    )


@pytest.mark.parametrize("truncated", [False, True])
def test_km_matches_statsmodels_survfunc(truncated):
    data = _random_records(truncated=truncated)
    result = kaplan_meier(data, "grade")
    for grade, part in data.records.groupby("grade"):
        reference = SurvfuncRight(
            part["duration_mob"], part["event"].astype(int), entry=part["entry_mob"]
        )
        ours = result.table[result.table["segment"] == grade].set_index("timeline")
        times = reference.surv_times.astype(int)
        # Same estimator, same risk sets: agreement to floating-point precision.
        np.testing.assert_allclose(ours.loc[times, "survival"], reference.surv_prob, atol=1e-12)
        np.testing.assert_array_equal(ours.loc[times, "at_risk"], reference.n_risk)
        np.testing.assert_array_equal(ours.loc[times, "events"], reference.n_events)
        # lifelines' band is exp(-exp(log(-log S) ± z·se)) with Greenwood se of log(-log S);
        # rebuild it from statsmodels' Greenwood se of S (delta method) where 0 < S < 1.
        survival = reference.surv_prob
        inner = (survival > 0) & (survival < 1)
        se_loglog = reference.surv_prob_se[inner] / (survival[inner] * np.abs(np.log(survival[inner])))
        z = 1.959963984540054
        lower = np.exp(-np.exp(np.log(-np.log(survival[inner])) + z * se_loglog))
        upper = np.exp(-np.exp(np.log(-np.log(survival[inner])) - z * se_loglog))
        np.testing.assert_allclose(ours.loc[times[inner], "ci_lower"], lower, atol=1e-6)
        np.testing.assert_allclose(ours.loc[times[inner], "ci_upper"], upper, atol=1e-6)


@pytest.mark.parametrize("truncated", [False, True])
def test_logrank_matches_statsmodels_survdiff(truncated):
    # Close hazards, so the p-value is moderate and comparable to more than a few digits.
    data = _random_records(truncated=truncated, hazards=(0.03, 0.033, 0.036))
    records = data.records
    statistic, p_value = survdiff(
        records["duration_mob"].to_numpy(float),
        records["event"].astype(int).to_numpy(),
        records["grade"].to_numpy(),
        entry=records["entry_mob"].to_numpy(float),
    )
    result = kaplan_meier(data, "grade").logrank
    assert result.df == 2
    assert result.statistic == pytest.approx(statistic, rel=1e-8)
    assert 1e-6 < p_value < 0.9
    assert result.p_value == pytest.approx(p_value, rel=1e-6)


def test_logrank_matches_lifelines_without_truncation():
    data = _random_records(truncated=False)
    records = data.records
    reference = multivariate_logrank_test(records["duration_mob"], records["grade"], records["event"])
    result = kaplan_meier(data, "grade").logrank
    assert result.statistic == pytest.approx(reference.test_statistic, rel=1e-8)


def test_cumulative_incidence_matches_statsmodels():
    data = _random_records(truncated=False)
    records = data.records
    table = cumulative_incidence(data).table.set_index("timeline")
    reference = CumIncidenceRight(records["duration_mob"].to_numpy(float), records["event_type"].to_numpy())
    times = reference.times.astype(int)
    # statsmodels' cinc[k] is the incidence of event type k + 1, at its distinct event times.
    np.testing.assert_allclose(table.loc[times, "cif_default"], reference.cinc[0], atol=1e-12)
    np.testing.assert_allclose(table.loc[times, "cif_prepayment"], reference.cinc[1], atol=1e-12)
    # The competing-risk incidence never exceeds 1 − KM, and both causes add up to ≤ 1.
    assert (table["cif_default"] <= table["one_minus_km"] + 1e-12).all()
    assert (table["cif_default"] + table["cif_prepayment"] <= 1 + 1e-12).all()


def test_cumulative_incidence_matches_lifelines_without_ties():
    # Distinct times, so lifelines' AalenJohansenFitter needs no jitter: exact agreement.
    rng = np.random.default_rng(5)
    n = 300
    duration = rng.permutation(np.arange(1, n + 1))
    event_type = rng.choice([0, 1, 2], size=n, p=[0.3, 0.4, 0.3])
    data = _records(np.zeros(n), duration, event_type)
    ours = cumulative_incidence(data).table.set_index("timeline")["cif_default"]
    fitter = AalenJohansenFitter(calculate_variance=False).fit(duration, event_type, event_of_interest=1)
    reference = fitter.cumulative_density_.iloc[:, 0]
    reference = reference[reference.index > 0]
    np.testing.assert_allclose(ours.loc[reference.index.astype(int)], reference.to_numpy(), atol=1e-12)


@pytest.mark.parametrize("truncated", [False, True])
def test_cox_matches_statsmodels_phreg(truncated):
    data = _random_records(truncated=truncated)
    result = fit_cox(data, ["grade", "principal"])
    assert result.fitted
    design = data.records
    exog = np.column_stack(
        [
            (design["grade"] == "B").astype(float),
            (design["grade"] == "C").astype(float),
            design["principal"] / 10_000,
        ]
    )
    # lifelines fits with Efron's tie correction; PHReg is set to the same. A loan is
    # at risk at MOB t when entry_mob < t in lifelines but entry <= t in PHReg, so PHReg gets
    # entry + 0.5 on the integer MOB scale to state the same risk sets.
    reference = PHReg(
        design["duration_mob"].to_numpy(float),
        exog,
        status=design["event"].astype(int).to_numpy(),
        entry=design["entry_mob"].to_numpy(float) + 0.5,
        ties="efron",
    ).fit()
    table = result.table.set_index("covariate")
    names = ["grade=B (baseline A)", "grade=C (baseline A)", "principal_10k_yuan"]
    np.testing.assert_allclose(table.loc[names, "coef"], reference.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(table.loc[names, "se"], reference.bse, rtol=1e-3)
    np.testing.assert_allclose(table.loc[names, "p_value"], reference.pvalues, rtol=1e-2, atol=1e-10)


def test_ph_residuals_match_lifelines_without_truncation():
    # lifelines computes Schoenfeld residuals only without entry; ours must agree there.
    data = _random_records(truncated=False)
    result = fit_cox(data, ["grade", "principal"])
    design = data.records.assign(
        **{
            "grade=B": (data.records["grade"] == "B").astype(float),
            "grade=C": (data.records["grade"] == "C").astype(float),
            "principal_10k_yuan": data.records["principal"] / 10_000,
        }
    )[["entry_mob", "duration_mob", "event", "grade=B", "grade=C", "principal_10k_yuan"]]
    design["event"] = design["event"].astype(int)
    fitter = CoxPHFitter().fit(design.drop(columns="entry_mob"), "duration_mob", "event")
    ours = schoenfeld_residuals(fitter, design)
    reference = fitter.compute_residuals(design.drop(columns="entry_mob"), "schoenfeld")
    np.testing.assert_allclose(ours.to_numpy(), reference.loc[ours.index].to_numpy(), atol=1e-8)
    expected = proportional_hazard_test(fitter, design.drop(columns="entry_mob"), time_transform="rank")
    ph = result.ph_test.set_index("covariate")
    np.testing.assert_allclose(
        ph.loc[["grade=B", "grade=C", "principal_10k_yuan"], "p_value"],
        expected.summary.loc[["grade=B", "grade=C", "principal_10k_yuan"], "p"],
        rtol=1e-4,
    )


@pytest.fixture(scope="module")
def simulated_data(tmp_path_factory):
    from queries import db

    path = tmp_path_factory.mktemp("survival") / "simulated.duckdb"
    con = db.connect(path)
    loans, months = simulate_portfolio(n_loans=6000, seed=21)
    write_portfolio(con, loans, months)
    data = load_survival_data(con, Filters(), 90)
    con.close()
    return data


def test_cox_recovers_simulated_hazard_ratios(simulated_data):
    # Truth: the simulation's hazard ratios by grade (A 1.0, B 2.0, C 3.5), taken relative
    # to whichever grade the model picked as baseline.
    result = fit_cox(simulated_data, ["grade", "product", "principal"])
    assert result.fitted
    table = result.table.set_index("level")
    baseline_ratio = TRUE_HAZARD_RATIOS[result.baselines["grade"]]
    for grade, true_ratio in TRUE_HAZARD_RATIOS.items():
        if grade == result.baselines["grade"]:
            continue
        row = table.loc[grade]
        relative = true_ratio / baseline_ratio
        assert row["ci_lower"] <= relative <= row["ci_upper"], (grade, relative, row.to_dict())
    assert 0.55 < result.concordance < 0.8


def test_cox_sample_of_large_book_recovers_ratios(simulated_data):
    # Threshold lowered so the 6,000-loan book counts as large: a stratified sample is fitted.
    result = fit_cox(simulated_data, ["grade"], sample_threshold=2_000, sample_size=2_000)
    assert result.sample is not None
    assert result.sample.loans_sampled == pytest.approx(2_000, abs=5)
    assert any(note.code == "cox_sampled" for note in result.notes)
    # The same fraction of defaults and of other loans: the book's default share is kept.
    share_sampled = result.sample.defaults_sampled / result.sample.loans_sampled
    share_total = result.sample.defaults_total / result.sample.loans_total
    assert share_sampled == pytest.approx(share_total, abs=0.005)
    table = result.table.set_index("level")
    baseline = result.baselines["grade"]
    for grade in sorted(set(TRUE_HAZARD_RATIOS) - {baseline}):
        row = table.loc[grade]
        relative = TRUE_HAZARD_RATIOS[grade] / TRUE_HAZARD_RATIOS[baseline]
        assert row["ci_lower"] <= relative <= row["ci_upper"], (grade, row.to_dict())


def test_km_uses_every_loan_of_simulated_book(simulated_data):
    result = kaplan_meier(simulated_data, "grade")
    assert result.summary["loans"].sum() == simulated_data.n_loans
    assert result.summary["defaults"].sum() == simulated_data.n_defaults
    # Higher true hazard, lower survival at MOB 12.
    at_12 = result.survival_at[result.survival_at["month"] == 12].set_index("segment")["survival"]
    assert at_12["A"] > at_12["B"] > at_12["C"]
    assert result.logrank.p_value < 1e-6


@pytest.mark.parametrize("truncated", [False, True])
def test_km_matches_lifelines_fitter(truncated):
    # lifelines' KaplanMeierFitter on one row per loan: survival, band, median and its
    # interval must match the product-limit formula on aggregated counts.
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    data = _random_records(truncated=truncated)
    result = kaplan_meier(data, "grade")
    for grade, part in data.records.groupby("grade"):
        fitter = KaplanMeierFitter(alpha=0.05).fit(
            part["duration_mob"], part["event"], entry=part["entry_mob"] if truncated else None
        )
        ours = result.table[result.table["segment"] == grade].set_index("timeline")
        times = fitter.survival_function_.index.to_numpy(float)
        times = times[times <= ours.index.max()]
        np.testing.assert_allclose(ours.loc[times, "survival"], fitter.survival_function_.loc[times].iloc[:, 0], atol=1e-12)
        bands = fitter.confidence_interval_.loc[times]
        np.testing.assert_allclose(ours.loc[times, "ci_lower"], bands.iloc[:, 0], atol=1e-9)
        np.testing.assert_allclose(ours.loc[times, "ci_upper"], bands.iloc[:, 1], atol=1e-9)

        summary = result.summary.set_index("segment").loc[grade]
        expected_median = fitter.median_survival_time_
        if np.isfinite(expected_median):
            assert summary["median_mob"] == expected_median
        else:
            assert np.isnan(summary["median_mob"])
        expected_lower, expected_upper = median_survival_times(fitter.confidence_interval_).iloc[0]
        for ours_value, expected in ((summary["median_ci_lower"], expected_lower), (summary["median_ci_upper"], expected_upper)):
            if np.isfinite(expected):
                assert ours_value == expected
            else:
                assert np.isnan(ours_value)
