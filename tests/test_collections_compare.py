"""Champion/challenger comparison and test planning (analysis.collections_compare).

Episode tables are built in memory so each arm's counts are exact. Expected values come
from statsmodels and scipy called directly, hand formulas (Newcombe interval, Holm
adjustment, Cohen's h sample size) or a simulated trial with a known true lift.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint, proportions_chisquare, proportions_ztest

from analysis import collections_compare as compare

Z_95 = stats.norm.ppf(0.975)


def _episodes(arms: dict[str, tuple[int, int]], stage: str = "early", seed: int = 7) -> pd.DataFrame:
    """One row per episode: ``arms`` maps strategy -> (episodes, cured); covariates random."""
    rng = np.random.default_rng(seed)
    frames = []
    for arm, (count, cured) in arms.items():
        frames.append(
            pd.DataFrame(
                {
                    "strategy": arm,
                    "stage": stage,
                    "cured": np.arange(count) < cured,
                    "entry_dpd": rng.integers(1, 31, count),
                    "outstanding_principal": rng.lognormal(9, 0.5, count),
                    "product": rng.choice(["消费贷", "经营贷"], count),
                    "province": rng.choice(["广东省", "河南省"], count),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _newcombe(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    """Newcombe (1998) hybrid-score interval of p1 - p2, from Wilson intervals."""
    p1, p2 = c1 / n1, c2 / n2
    l1, u1 = proportion_confint(c1, n1, method="wilson")
    l2, u2 = proportion_confint(c2, n2, method="wilson")
    difference = p1 - p2
    return (
        difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def test_two_arms_match_statsmodels():
    result = compare.compare_arms(_episodes({"A": (400, 160), "B": (380, 190)}), "early", reference="A")
    row = result.differences.iloc[0]
    assert row["difference"] == pytest.approx(190 / 380 - 160 / 400)
    low, high = _newcombe(190, 380, 160, 400)
    assert row["ci_lower"] == pytest.approx(low)
    assert row["ci_upper"] == pytest.approx(high)
    z, p = proportions_ztest([190, 160], [380, 400])
    assert row["z"] == pytest.approx(z)
    assert row["p_value"] == pytest.approx(p)
    assert result.test_name == "z"
    assert result.p_value == pytest.approx(p)
    arms = result.arms.set_index("arm")
    wilson_low, wilson_high = proportion_confint(190, 380, method="wilson")
    assert arms.loc["B", "ci_lower"] == pytest.approx(wilson_low)
    assert arms.loc["B", "ci_upper"] == pytest.approx(wilson_high)


def test_two_arms_sentence_in_plain_words():
    result = compare.compare_arms(_episodes({"A": (1000, 400), "B": (1000, 480)}), "early", reference="A")
    text = result.sentences("zh")[0][1]
    low, high = _newcombe(480, 1000, 400, 1000)
    assert text.startswith("策略B的30天治愈率比A高8.0个百分点")
    assert f"(95% CI {low * 100:.1f}–{high * 100:.1f})" in text
    assert "差异显著" in text
    english = result.sentences("en")[0][1]
    assert "8.0 pp higher than A's" in english


def test_lower_arm_sentence_flips_interval():
    result = compare.compare_arms(_episodes({"A": (500, 250), "B": (500, 200)}), "early", reference="A")
    text = result.sentences("zh")[0][1]
    low, high = _newcombe(200, 500, 250, 500)
    assert "低10.0个百分点" in text
    assert f"(95% CI {-high * 100:.1f}–{-low * 100:.1f})" in text


def test_three_arms_chi_square_and_holm():
    arms = {"A": (300, 120), "B": (300, 150), "C": (300, 125)}
    result = compare.compare_arms(_episodes(arms), "early", reference="A")
    chi2, p, _ = proportions_chisquare([120, 150, 125], [300, 300, 300])
    assert result.test_name == "chi2"
    assert result.statistic == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p)
    pairs = result.differences.set_index(["reference", "arm"])
    raw = {pair: proportions_ztest([arms[pair[1]][1], arms[pair[0]][1]], [300, 300])[1] for pair in pairs.index}
    # Holm by hand: sort ascending, multiply by (m - rank), running maximum, cap at 1.
    ordered = sorted(raw.items(), key=lambda item: item[1])
    adjusted, running = {}, 0.0
    for rank, (pair, value) in enumerate(ordered):
        running = max(running, min(1.0, value * (len(ordered) - rank)))
        adjusted[pair] = running
    for pair in pairs.index:
        assert pairs.loc[pair, "p_value"] == pytest.approx(raw[pair])
        assert pairs.loc[pair, "p_holm"] == pytest.approx(adjusted[pair])


def test_arm_with_no_cures_reads_plainly():
    result = compare.compare_arms(_episodes({"A": (200, 60), "B": (150, 0)}), "early", reference="A")
    keys = [note.key for note in result.notes]
    assert "no_cures_in_arm" in keys
    row = result.differences.iloc[0]
    assert row["difference"] == pytest.approx(-0.3)
    assert np.isfinite([row["ci_lower"], row["ci_upper"], row["p_value"]]).all()
    for _, text in result.sentences("zh") + result.sentences("en"):
        assert "nan" not in text.lower()
    assert "No cures in arm B (150 episodes)." in [text for _, text in result.sentences("en")]


def test_arm_with_all_cures_reads_plainly():
    result = compare.compare_arms(_episodes({"A": (200, 60), "B": (50, 50)}), "early", reference="A")
    assert "all_cured_in_arm" in [note.key for note in result.notes]
    row = result.differences.iloc[0]
    assert row["difference"] == pytest.approx(0.7)
    assert row["ci_upper"] <= 1.0
    assert np.isfinite(row["p_value"])
    for _, text in result.sentences("en"):
        assert "nan" not in text.lower()


def test_no_cures_anywhere_gives_no_test():
    result = compare.compare_arms(_episodes({"A": (100, 0), "B": (80, 0)}), "early", reference="A")
    assert result.p_value is None
    assert "no_cures_any_arm" in [note.key for note in result.notes]
    assert result.differences["p_holm"].isna().all()
    first = result.sentences("en")[0][1]
    assert "no significance test is possible" in first
    assert "nan" not in first.lower()


def test_chi_square_with_empty_column():
    # Three arms and no cures at all: the "cured" column of the table is empty.
    result = compare.compare_arms(_episodes({"A": (60, 0), "B": (60, 0), "C": (60, 0)}), "early")
    assert result.test_name is None
    assert result.statistic is None
    assert "no_cures_any_arm" in [note.key for note in result.notes]
    assert "model_not_fitted_no_variation" in [note.key for note in result.notes]
    for _, text in result.sentences("zh"):
        assert "nan" not in text.lower()


def test_chi_square_with_arm_missing_from_stage():
    # An arm chosen by the user but without episodes in the stage is an empty row.
    episodes = _episodes({"A": (100, 30), "B": (100, 40)})
    result = compare.compare_arms(episodes, "early", arms=["A", "B", "Z"], reference="A")
    assert "arm_without_episodes" in [note.key for note in result.notes]
    assert result.arms["arm"].tolist() == ["A", "B"]
    assert result.test_name == "z"


def test_perfect_separation_in_regression():
    result = compare.compare_arms(_episodes({"A": (200, 80), "B": (200, 0)}), "early", reference="A")
    keys = [note.key for note in result.notes]
    assert "separation_arms" in keys
    odds = result.odds_ratios.set_index("arm")
    assert np.isnan(odds.loc["B", "odds_ratio"])
    assert any("Perfect separation" in text for _, text in result.sentences("en"))


def test_covariate_separation_warns():
    episodes = _episodes({"A": (200, 0), "B": (200, 0)})
    # Cure is decided by product alone: every 消费贷 episode cures, no 经营贷 one does.
    episodes["cured"] = episodes["product"] == "消费贷"
    result = compare.compare_arms(episodes, "early", reference="A")
    assert "separation_covariates" in [note.key for note in result.notes]


def test_too_few_events_warns():
    result = compare.compare_arms(_episodes({"A": (30, 3), "B": (30, 4)}), "early", reference="A")
    assert "too_few_events" in [note.key for note in result.notes]


def test_odds_ratio_matches_statsmodels_glm():
    import statsmodels.api as sm

    episodes = _episodes({"A": (500, 200), "B": (500, 260)}, seed=11)
    result = compare.compare_arms(episodes, "early", reference="A")
    design = pd.DataFrame(
        {
            "const": 1.0,
            "arm_b": (episodes["strategy"] == "B").astype(float),
            "entry_dpd": episodes["entry_dpd"].astype(float),
            "balance": episodes["outstanding_principal"] / 1e4,
            "business": (episodes["product"] == "经营贷").astype(float),
            "henan": (episodes["province"] == "河南省").astype(float),
        }
    )
    fit = sm.GLM(episodes["cured"].astype(float), design, family=sm.families.Binomial()).fit()
    row = result.odds_ratios.set_index("arm").loc["B"]
    assert row["odds_ratio"] == pytest.approx(math.exp(fit.params["arm_b"]), rel=1e-6)
    assert row["ci_lower"] == pytest.approx(math.exp(fit.conf_int().loc["arm_b", 0]), rel=1e-6)


def test_assignment_check_flags_nonrandom_arms():
    episodes = _episodes({"A": (300, 100), "B": (300, 150)})
    # Send the larger balances to B, as a rule-based assignment would.
    episodes.loc[episodes["strategy"] == "B", "outstanding_principal"] *= 3
    result = compare.compare_arms(episodes, "early", reference="A")
    assert not result.comparable
    assert "not_comparable" in [note.key for note in result.notes]
    balance = result.balance.set_index("covariate")
    a = episodes.loc[episodes["strategy"] == "A", "outstanding_principal"]
    b = episodes.loc[episodes["strategy"] == "B", "outstanding_principal"]
    expected = (b.mean() - a.mean()) / math.sqrt((a.var() + b.var()) / 2)
    assert balance.loc["balance_10k", "smd"] == pytest.approx(expected)


def test_assignment_check_passes_random_arms():
    rng = np.random.default_rng(3)
    episodes = _episodes({"A": (2000, 800), "B": (2000, 900)})
    episodes["strategy"] = rng.permutation(episodes["strategy"].to_numpy())
    result = compare.compare_arms(episodes, "early", reference="A")
    assert result.comparable


def test_simulated_trial_recovers_true_lift():
    rng = np.random.default_rng(20261204)
    n, base, lift = 4000, 0.52, 0.05
    cured_a = int((rng.random(n) < base).sum())
    cured_b = int((rng.random(n) < base + lift).sum())
    result = compare.compare_arms(_episodes({"A": (n, cured_a), "B": (n, cured_b)}), "early", reference="A")
    row = result.differences.iloc[0]
    assert row["ci_lower"] < lift < row["ci_upper"]
    assert bool(row["significant"])


def test_compare_needs_two_arms():
    with pytest.raises(ValueError, match="at least two strategies"):
        compare.compare_arms(_episodes({"A": (10, 3)}), "early")


def test_plan_matches_cohens_h_formula():
    plan = compare.plan_test(0.52, 0.05, weekly_inflow=100.0)
    h = 2 * math.asin(math.sqrt(0.57)) - 2 * math.asin(math.sqrt(0.52))
    # Two equal arms: Var(arcsine difference) = 2 / n, so n = 2 ((z_0.975 + z_0.8) / h)^2.
    expected = 2 * ((stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / h) ** 2
    assert plan.loans_per_arm == math.ceil(expected)
    assert plan.total_loans == 2 * math.ceil(expected)
    assert plan.weeks == pytest.approx(2 * math.ceil(expected) / 100.0)


def test_plan_without_inflow_and_bad_input():
    plan = compare.plan_test(0.3, -0.05, weekly_inflow=0.0, arms=3)
    assert plan.weeks is None
    assert "cannot be estimated" in compare.describe_plan(plan, "en")
    with pytest.raises(ValueError):
        compare.plan_test(0.98, 0.05, weekly_inflow=10.0)
    with pytest.raises(ValueError):
        compare.plan_test(0.5, 0.0, weekly_inflow=10.0)


def test_logit_fit_matches_statsmodels_glm():
    """The page's IRLS fit against statsmodels' GLM on a simulated design (seed 11)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(11)
    count = 5000
    design = pd.DataFrame(
        {
            "const": 1.0,
            "arm=B": (rng.random(count) < 0.5).astype(float),
            "entry_dpd": rng.integers(1, 31, count).astype(float),
            "balance_10k": rng.lognormal(0, 0.5, count),
            "province=河南省": (rng.random(count) < 0.3).astype(float),
        }
    )
    true_logit = -0.5 + 0.4 * design["arm=B"] - 0.03 * design["entry_dpd"] + 0.2 * design["balance_10k"]
    outcome = (rng.random(count) < 1 / (1 + np.exp(-true_logit))).astype(float).to_numpy()

    expected = sm.GLM(outcome, design, family=sm.families.Binomial()).fit()
    fitted = compare._fit_logit(outcome, design)

    np.testing.assert_allclose(fitted.params, expected.params, rtol=1e-8)
    np.testing.assert_allclose(fitted.bse, expected.bse, rtol=1e-6)
    np.testing.assert_allclose(fitted.pvalues, expected.pvalues, rtol=1e-6)
    np.testing.assert_allclose(fitted.conf_int.to_numpy(), expected.conf_int(alpha=0.05).to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(fitted.fittedvalues, expected.fittedvalues, rtol=1e-8)


def test_assignment_check_matches_level_by_level():
    """SMDs against a plain per-level computation of the largest share difference."""
    episodes = _episodes({"A": (300, 120), "B": (260, 100), "C": (240, 90)}, seed=5)
    result = compare.compare_arms(episodes, "early", reference="A")
    base = episodes[episodes["strategy"] == "A"]
    for arm in ("B", "C"):
        other = episodes[episodes["strategy"] == arm]
        for covariate in ("product", "province"):
            expected = max(
                abs((other[covariate] == level).mean() - (base[covariate] == level).mean())
                / math.sqrt(
                    ((base[covariate] == level).mean() * (1 - (base[covariate] == level).mean())
                     + (other[covariate] == level).mean() * (1 - (other[covariate] == level).mean())) / 2
                )
                for level in set(episodes[covariate])
            )
            row = result.balance[(result.balance["arm"] == arm) & (result.balance["covariate"] == covariate)]
            assert row["smd"].iloc[0] == pytest.approx(expected, rel=1e-12)
        dpd = (other["entry_dpd"].mean() - base["entry_dpd"].mean()) / math.sqrt(
            (base["entry_dpd"].var() + other["entry_dpd"].var()) / 2
        )
        row = result.balance[(result.balance["arm"] == arm) & (result.balance["covariate"] == "entry_dpd")]
        assert row["smd"].iloc[0] == pytest.approx(dpd, rel=1e-12)
