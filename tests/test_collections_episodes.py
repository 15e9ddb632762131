"""Collection episodes and per-arm rates (analysis.collections) on hand-built tapes.

Expected values are worked out by hand from the month-end paths below, or recomputed with
plain pandas and the Wilson / ratio-estimator formulas written out in the test.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

import queries
from analysis import collections as coll
from analysis import collections_restructure as restructure
from analysis.cli import main
from analysis.filters import Filters
from ingest import facts
from tests.fixtures_collections import add_actions, add_loans, add_months, build_arm_trial

JAN = dt.date(2025, 1, 31)


def _episodes(con, **kwargs) -> pd.DataFrame:
    return coll.episodes_from(coll.load_episode_channels(con, Filters(**kwargs)))


def test_episodes_start_after_current_and_end_at_cure(con):
    add_loans(con, [{"loan_id": "L1"}])
    # Jan C, Feb M1 (20), Mar M2 (45), Apr C, May M1 (10), Jun paid off.
    add_months(con, "L1", JAN, [0, 20, 45, 0, 10, "P"])
    entries = _episodes(con)
    assert entries["episode_no"].tolist() == [1, 1, 2]
    assert entries["stage"].tolist() == ["early", "middle", "early"]
    first, middle, second = entries.iloc[0], entries.iloc[1], entries.iloc[2]
    assert first["entry_date"] == pd.Timestamp("2025-02-28")
    assert first["end_reason"] == "cured"
    assert first["end_date"] == pd.Timestamp("2025-04-30")
    assert first["duration_months"] == 2
    assert not first["cured"]  # still overdue at the next month-end (March)
    assert first["rolled_forward"]  # M1 -> M2
    # The episode enters the middle stage at its first M2 month-end and cures a month later.
    assert middle["entry_date"] == pd.Timestamp("2025-03-31")
    assert middle["episode_start_date"] == pd.Timestamp("2025-02-28")
    assert middle["cured"]
    assert middle["duration_months"] == 1
    assert second["entry_date"] == pd.Timestamp("2025-05-31")
    assert second["end_reason"] == "paid_off"
    assert second["cured"]
    assert not second["rolled_forward"]


def test_stage_not_reentered_after_later_stage(con):
    add_loans(con, [{"loan_id": "L1"}])
    # M1, M2, back to M1 by a partial payment, then M2 again: one early and one middle entry.
    add_months(con, "L1", JAN, [0, 20, 45, 25, 50, 0])
    entries = _episodes(con)
    assert entries["stage"].tolist() == ["early", "middle"]
    assert entries["entry_date"].tolist() == [pd.Timestamp("2025-02-28"), pd.Timestamp("2025-03-31")]


def test_episode_stage_follows_entry_dpd(con):
    add_loans(con, [{"loan_id": "E"}, {"loan_id": "M"}, {"loan_id": "L"}, {"loan_id": "B"}])
    add_months(con, "E", JAN, [0, 30, 0])
    add_months(con, "M", JAN, [0, 31, 0])
    add_months(con, "L", JAN, [0, 91, 0])
    add_months(con, "B", JAN, [0, 90, 0])
    stages = _episodes(con).set_index("loan_id")["stage"].to_dict()
    assert stages == {"E": "early", "M": "middle", "L": "late", "B": "middle"}


def test_episode_first_snapshot_overdue_and_charge_off(con):
    add_loans(con, [{"loan_id": "W"}])
    add_months(con, "W", JAN, [45, 75, "W"])
    episode = _episodes(con).iloc[0]
    assert episode["entry_date"] == pd.Timestamp("2025-01-31")
    assert episode["stage"] == "middle"
    assert episode["end_reason"] == "charged_off"
    assert not episode["cured"]
    assert not episode["cure_event"]


def test_episode_censored_at_end_of_data(con):
    add_loans(con, [{"loan_id": "C"}, {"loan_id": "N"}])
    add_months(con, "C", JAN, [0, 10, 15])
    add_months(con, "N", JAN, [0, 0, 15])
    entries = _episodes(con).set_index("loan_id")
    assert entries.loc["C", "end_reason"] == "censored"
    assert entries.loc["C", "duration_months"] == 1
    assert not entries.loc["C", "cured"]  # judged: March is in the data and overdue
    # N entered at the last month-end: its horizon month-end is not in the data yet.
    assert pd.isna(entries.loc["N", "cured"])
    assert pd.isna(entries.loc["N", "rolled_forward"])


def test_episode_as_of_cuts_later_months(con):
    add_loans(con, [{"loan_id": "A"}])
    add_months(con, "A", JAN, [0, 10, 0])
    episodes = _episodes(con, as_of=dt.date(2025, 2, 28))
    assert episodes.iloc[0]["end_reason"] == "censored"
    assert pd.isna(episodes.iloc[0]["cured"])


def test_restructure_ends_episode_without_cure(con):
    add_loans(con, [{"loan_id": "R"}])
    add_months(con, "R", JAN, [0, 100, 0])
    con.execute("update loan_months set status = 'restructured' where snapshot_date = '2025-03-31'")
    facts.rebuild(con)
    episode = _episodes(con).iloc[0]
    assert episode["end_reason"] == "restructured"
    assert not episode["cured"]
    assert not episode["cure_event"]


def test_actions_assigned_within_stage_window(con):
    add_loans(con, [{"loan_id": "A"}])
    add_months(con, "A", JAN, [0, 10, 40, 0, 0])
    # Feb month-end at dpd 10: the first day past due is Feb 19. The early stage runs to the
    # M2 entry month-end (Mar 31); the middle stage from Apr 1 to the cure month-end Apr 30.
    add_actions(
        con,
        [
            {"loan_id": "A", "action_time": "2025-02-18 10:00:00", "strategy": "X"},  # before
            {"loan_id": "A", "action_time": "2025-02-19 10:00:00", "strategy": "S1", "amount_collected": 300, "cost": 2},
            {"loan_id": "A", "action_time": "2025-03-31 10:00:00", "strategy": "S2", "channel": "sms", "cost": 1},
            {"loan_id": "A", "action_time": "2025-04-01 09:00:00", "strategy": "M1", "cost": 4},
            {"loan_id": "A", "action_time": "2025-05-02 10:00:00", "strategy": "X"},  # after
        ],
    )
    frame = coll.load_episode_channels(con, Filters())
    entries = coll.episodes_from(frame).set_index("stage")
    early, middle = entries.loc["early"], entries.loc["middle"]
    assert early["strategy"] == "S1"  # the first action's strategy
    assert early["strategy_count"] == 2
    assert early["stage_contacts"] == 2
    assert early["stage_collected_amount"] == 300
    assert early["stage_cost_amount"] == 3
    assert middle["strategy"] == "M1"
    assert middle["stage_contacts"] == 1
    assert sorted(frame.loc[frame["stage"] == "early", "channel"]) == ["manual_call", "sms"]


def test_episode_without_actions_is_untreated(con):
    add_loans(con, [{"loan_id": "U"}])
    add_months(con, "U", JAN, [0, 10, 0])
    frame = coll.load_episode_channels(con, Filters())
    assert frame["strategy"].tolist() == [coll.UNTREATED]
    assert frame["channel"].isna().all()


@pytest.mark.parametrize("name", ["collection_stage_entries", "collection_stage_channel_totals"])
def test_episode_query_columns_match_doc(con, name):
    add_loans(con, [{"loan_id": "U"}])
    add_months(con, "U", JAN, [0, 10, 0])
    add_actions(con, [{"loan_id": "U", "action_time": "2025-02-25 10:00:00"}])
    frame = queries.run(con, name, {**Filters().params(), "horizon_months": 1})
    assert len(frame) == 1
    doc = queries.get_query(name).doc
    for column in frame.columns:
        assert column in doc, column


def _wilson(count: int, nobs: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval written out (Wilson 1927)."""
    p = count / nobs
    centre = (p + z * z / (2 * nobs)) / (1 + z * z / nobs)
    half = z * math.sqrt(p * (1 - p) / nobs + z * z / (4 * nobs * nobs)) / (1 + z * z / nobs)
    return centre - half, centre + half


def test_summary_matches_hand_computation(con):
    build_arm_trial(con, {"A": (40, 12), "B": (25, 20)})
    frame = coll.load_episode_channels(con, Filters())
    table = coll.summarise(frame).set_index("strategy")
    for arm, (loans, cured) in {"A": (40, 12), "B": (25, 20)}.items():
        row = table.loc[arm]
        assert row["loans"] == loans
        assert row["cured"] == cured
        assert row["cure_rate"] == pytest.approx(cured / loans)
        low, high = _wilson(cured, loans)
        assert row["ci_lower"] == pytest.approx(low)
        assert row["ci_upper"] == pytest.approx(high)
        # Non-cured loans went to M2 at the next month-end: roll-forward = 1 - cure.
        assert row["rolled_forward"] == loans - cured
        # Each cured loan collected 100 of an overdue 500; every loan cost 5.
        assert row["recovery_rate"] == pytest.approx(100 * cured / (500 * loans))
        assert row["cost"] == pytest.approx(5 * loans)
        assert row["cost_per_yuan"] == pytest.approx(5 * loans / (100 * cured))


def test_recovery_interval_is_ratio_estimator(con):
    build_arm_trial(con, {"A": (30, 9)})
    frame = coll.load_episode_channels(con, Filters())
    row = coll.summarise(frame).iloc[0]
    assert row["stage"] == "early"
    episodes = coll.episodes_from(frame)
    episodes = episodes[episodes["stage"] == "early"]
    y = episodes["stage_collected_amount"].to_numpy()
    x = episodes["overdue_amount"].to_numpy()
    ratio = y.sum() / x.sum()
    n = len(x)
    se = math.sqrt(((y - ratio * x) ** 2).sum() / (n * (n - 1) * x.mean() ** 2))
    assert row["recovery_ci_lower"] == pytest.approx(ratio - 1.959963984540054 * se)
    assert row["recovery_ci_upper"] == pytest.approx(ratio + 1.959963984540054 * se)


def test_channel_groups_overlap(con):
    add_loans(con, [{"loan_id": "A"}, {"loan_id": "B"}])
    add_months(con, "A", JAN, [0, 10, 0])
    add_months(con, "B", JAN, [0, 10, 40])
    add_actions(
        con,
        [
            {"loan_id": "A", "action_time": "2025-02-25 10:00:00", "channel": "sms", "cost": 0.05},
            {"loan_id": "A", "action_time": "2025-02-26 10:00:00", "channel": "manual_call", "cost": 2.5},
            {"loan_id": "B", "action_time": "2025-02-26 11:00:00", "channel": "manual_call", "cost": 2.5},
        ],
    )
    table = coll.summarise(coll.load_episode_channels(con, Filters()), by="channel").set_index("channel")
    assert table.loc["sms", "loans"] == 1
    assert table.loc["manual_call", "loans"] == 2
    assert table.loc["manual_call", "cure_rate"] == pytest.approx(0.5)
    assert table.loc["sms", "cost"] == pytest.approx(0.05)


def test_summary_of_empty_database(con):
    frame = coll.load_episode_channels(con, Filters())
    assert frame.empty
    assert coll.summarise(frame).empty
    assert coll.time_to_cure(coll.episodes_from(frame), "early").empty


def test_time_to_cure_matches_hand_km(con):
    add_loans(con, [{"loan_id": f"K{i}"} for i in range(4)])
    add_months(con, "K0", JAN, [0, 10, 0])            # cured after 1 month
    add_months(con, "K1", JAN, [0, 10, 40, 0])        # cured after 2 months
    add_months(con, "K2", JAN, [0, 10, 40])           # censored at 1 month
    add_months(con, "K3", JAN, [0, 10, 40, 70, 0])    # cured after 3 months
    curve = coll.time_to_cure(_episodes(con), "early").set_index("months")
    # S(1) = 3/4; at 2 months 2 at risk, 1 cure: S(2) = 3/4 * 1/2; S(3) = 0.
    assert curve.loc[1, "cured_share"] == pytest.approx(0.25)
    assert curve.loc[2, "cured_share"] == pytest.approx(1 - 0.375)
    assert curve.loc[3, "cured_share"] == pytest.approx(1.0)


def test_weekly_inflow_counts_last_three_months(con):
    build_arm_trial(con, {"A": (13, 5)})
    episodes = _episodes(con)
    # All 13 episodes start 2026-02-28; the window is 2025-11-30 .. 2026-02-28 = 90 days.
    assert coll.weekly_inflow(episodes, "early") == pytest.approx(13 / (90 / 7))
    assert coll.weekly_inflow(episodes, "late") == 0.0


def test_restructured_loans_redefault(con):
    add_loans(con, [{"loan_id": "R1"}, {"loan_id": "R2"}, {"loan_id": "X1"}])
    add_months(con, "R1", JAN, [100, 0, 0, 35, 0, 0, 0, 0, 0])
    add_months(con, "R2", JAN, [0, 0, 0, 0, 0, 0, 0, 0, 0])
    add_months(con, "X1", JAN, [0, 0])
    con.execute("update loan_months set status = 'restructured' where loan_id = 'R1' and snapshot_date >= '2025-02-28'")
    facts.rebuild(con)
    add_actions(con, [{"loan_id": "R2", "action_time": "2025-02-10 10:00:00", "channel": "extension"}])
    loans = restructure.load_restructured(con, Filters()).set_index("loan_id")
    assert sorted(loans.index) == ["R1", "R2"]
    assert loans.loc["R1", "kind"] == "restructured"
    assert loans.loc["R1", "event_month"] == pd.Timestamp("2025-02-28")
    assert loans.loc["R1", "redefault_6m"]  # dpd 35 in April
    assert loans.loc["R1", "redefault_12m"]  # a re-default by 6 months is one by 12
    assert loans.loc["R2", "kind"] == "extended"
    assert not loans.loc["R2", "redefault_6m"]
    assert pd.isna(loans.loc["R2", "redefault_12m"])  # data ends in September
    summary = restructure.summarise_restructured(loans.reset_index()).set_index("kind")
    assert summary.loc["all", "loans"] == 2
    assert summary.loc["all", "redefault_rate_6m"] == pytest.approx(0.5)
    assert summary.loc["all", "judged_12m"] == 1
    assert summary.loc["extended", "judged_12m"] == 0
    assert np.isnan(summary.loc["extended", "redefault_rate_12m"])


def test_collections_command_columns(db_path, tmp_path):
    from queries import db

    connection = db.connect(db_path)
    build_arm_trial(connection, {"A": (10, 4), "B": (10, 6)})
    connection.close()
    out = tmp_path / "collections.csv"
    assert main(["collections", "--db", str(db_path), "--stage", "early", "--out", str(out)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert list(table.columns) == [
        "stage", "strategy", "loans", "contacts", "cured", "cure_rate", "ci_lower", "ci_upper",
        "rolled_forward", "collected_amount", "overdue_amount", "recovery_rate", "cost",
    ]
    assert table["cured"].tolist() == [4, 6]
    assert table["cost"].tolist() == [50.0, 50.0]


def test_collections_command_rejects_bad_stage(db_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["collections", "--db", str(db_path), "--stage", "M1"])
    assert exit_info.value.code == 2
