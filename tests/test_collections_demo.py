"""Collections and compliance on the demo portfolio, checked against its simulated truth.

The demo generator (ingest.demo) writes demo_truth.json beside the database: a randomised
early-stage champion/challenger with a known true lift, rule-based (not random) middle- and
late-stage assignment, exact breach counts and exact counts of loans above each rate cap.
"""

from __future__ import annotations

import pytest

from analysis import collections as coll
from analysis import collections_compare as compare
from analysis import compliance
from analysis.filters import Filters
from queries import db


@pytest.fixture(scope="module")
def demo_entries(demo_db):
    con = db.connect(demo_db, read_only=True)
    try:
        yield coll.episodes_from(coll.load_episode_channels(con, Filters()))
    finally:
        con.close()


@pytest.fixture
def demo_con(demo_db):
    con = db.connect(demo_db, read_only=True)
    yield con
    con.close()


def test_early_arm_cure_rates_match_truth(demo_entries, demo_truth):
    early = demo_truth["collections"]["early"]
    judged = demo_entries[(demo_entries["stage"] == "early") & demo_entries["cured"].notna()]
    for arm in early["arms"]:
        rows = judged[judged["strategy"] == arm]
        assert len(rows) == early["episodes_with_next_month_end"][arm], arm
        assert rows["cured"].astype(bool).mean() == pytest.approx(early["realised_cure_rate"][arm]), arm


def test_early_true_lift_inside_interval(demo_entries, demo_truth):
    early = demo_truth["collections"]["early"]
    champion, challenger = early["arms"]  # the true lift is challenger minus champion
    result = compare.compare_arms(demo_entries, "early", arms=[champion, challenger], reference=champion)
    row = result.differences.iloc[0]
    assert row["arm"] == challenger
    assert row["ci_lower"] < early["true_lift"] < row["ci_upper"]
    assert bool(row["significant"])
    first_sentence = result.sentences("zh")[0][1]
    assert first_sentence.startswith(f"策略{challenger}的30天治愈率比{champion}高")
    assert "差异显著" in first_sentence


def test_early_random_assignment_numeric_balance(demo_entries, demo_truth):
    # Random assignment balances dpd and balance; a single province can still pass 0.1 by
    # chance, so only the numeric covariates are checked here.
    arms = demo_truth["collections"]["early"]["arms"]
    result = compare.compare_arms(demo_entries, "early", arms=arms, reference=arms[0])
    balance = result.balance.set_index("covariate")
    assert abs(balance.loc["entry_dpd", "smd"]) <= compare.SMD_THRESHOLD
    assert abs(balance.loc["balance_10k", "smd"]) <= compare.SMD_THRESHOLD


@pytest.mark.parametrize("stage", ["middle", "late"])
def test_rule_based_assignment_warns(demo_entries, demo_truth, stage):
    arms = demo_truth["collections"][stage]["arms"]
    result = compare.compare_arms(demo_entries, stage, arms=arms, reference=arms[0])
    assert not result.comparable
    assert "not_comparable" in [note.key for note in result.notes]
    balance = result.balance.set_index("covariate")
    assert abs(balance.loc["balance_10k", "smd"]) > compare.SMD_THRESHOLD
    assert any("may not be causal" in text for _, text in result.sentences("en"))


def test_breach_counts_match_truth(demo_con, demo_truth):
    counts = demo_truth["compliance"]["breach_counts"]
    breaches = compliance.find_breaches(demo_con, Filters())
    found = breaches["rule"].value_counts().to_dict()
    assert found.get("contact_hours", 0) == counts["night_contacts"]
    assert found.get("call_frequency", 0) == counts["voice_calls_over_daily_cap"]
    assert found.get("non_borrower_contact", 0) == counts["non_borrower_contacts"]
    assert len(breaches) == demo_truth["compliance"]["total_breach_rows"]


def test_breach_agents_match_truth(demo_con, demo_truth):
    agents = demo_truth["compliance"]["breach_agents"]
    breaches = compliance.find_breaches(demo_con, Filters())
    assert set(breaches.loc[breaches["rule"] == "contact_hours", "agent_id"]) <= set(agents["night_contacts"])
    assert set(breaches.loc[breaches["rule"] == "call_frequency", "agent_id"]) <= set(
        agents["voice_calls_over_daily_cap"]
    )
    assert set(breaches.loc[breaches["rule"] == "non_borrower_contact", "agent_id"]) <= set(
        agents["non_borrower_contacts"]
    )


def test_rate_caps_match_truth(demo_con, demo_truth):
    pricing = demo_truth["pricing"]
    table = compliance.rate_cap_table(demo_con, Filters())
    assert table["above_4lpr_loans"].sum() == pricing["overall"]["above_4x_lpr"]["count"]
    assert table["above_24_loans"].sum() == pricing["overall"]["above_24pct"]["count"]
    assert table["above_36_loans"].sum() == pricing["overall"]["above_36pct"]["count"]
    shares = compliance.rate_cap_shares(table).set_index("product")
    for product, expected in pricing["by_product"].items():
        assert shares.loc[product, "share_4lpr_loans"] == pytest.approx(expected["above_4x_lpr"]["share_by_count"])
        assert shares.loc[product, "share_4lpr_principal"] == pytest.approx(
            expected["above_4x_lpr"]["share_by_principal"]
        )
