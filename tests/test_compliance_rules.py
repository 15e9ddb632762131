"""Collection-conduct rules (analysis.compliance) on hand-built action logs.

Every expected breach is listed by hand next to the actions that cause it.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis import compliance
from analysis.cli import main
from analysis.filters import Filters
from queries import db
from tests.fixtures_collections import add_actions, add_loans

DAY = "2026-03-03"


def _rules_of(con, **filter_values) -> list[tuple[int, str]]:
    breaches = compliance.find_breaches(con, Filters(**filter_values))
    return sorted(zip(breaches["action_id"].tolist(), breaches["rule"].tolist()))


def test_contact_hours_boundaries(con):
    add_loans(con, [{"loan_id": "L1"}])
    add_actions(
        con,
        [
            {"loan_id": "L1", "action_time": f"{DAY} 21:59:59"},                    # 1 allowed
            {"loan_id": "L1", "action_time": f"{DAY} 22:00:00", "channel": "sms"},  # 2 breach
            {"loan_id": "L1", "action_time": f"{DAY} 07:59:59", "connected": False},  # 3 breach
            {"loan_id": "L1", "action_time": f"{DAY} 08:00:00"},                    # 4 allowed
            {"loan_id": "L1", "action_time": f"{DAY} 23:30:00", "channel": "letter"},  # 5 not a contact
        ],
    )
    assert _rules_of(con) == [(2, "contact_hours"), (3, "contact_hours")]


def test_fourth_connected_call_is_breach(con):
    add_loans(con, [{"loan_id": "L1", "borrower_id": "b1"}])
    add_actions(
        con,
        [
            {"loan_id": "L1", "action_time": f"{DAY} 09:00:00"},                       # 1st
            {"loan_id": "L1", "action_time": f"{DAY} 09:30:00", "connected": False},   # unanswered
            {"loan_id": "L1", "action_time": f"{DAY} 10:00:00", "channel": "ai_voice"},  # 2nd
            {"loan_id": "L1", "action_time": f"{DAY} 10:30:00", "channel": "sms"},     # SMS
            {"loan_id": "L1", "action_time": f"{DAY} 11:00:00"},                       # 3rd
            {"loan_id": "L1", "action_time": f"{DAY} 12:00:00"},                       # 4th: breach
            {"loan_id": "L1", "action_time": f"{DAY} 13:00:00", "channel": "ai_voice"},  # 5th: breach
            {"loan_id": "L1", "action_time": "2026-03-04 09:00:00"},                   # next day 1st
        ],
    )
    breaches = compliance.find_breaches(con, Filters())
    assert breaches["action_id"].tolist() == [6, 7]
    assert breaches["rule"].tolist() == ["call_frequency", "call_frequency"]
    assert breaches["call_of_day"].tolist() == [4, 5]


def test_three_connected_calls_allowed(con):
    add_loans(con, [{"loan_id": "L1", "borrower_id": "b1"}])
    add_actions(
        con,
        [{"loan_id": "L1", "action_time": f"{DAY} {hour}:00:00"} for hour in (9, 10, 11)]
        + [{"loan_id": "L1", "action_time": f"{DAY} {hour}:00:00", "connected": False} for hour in (12, 13, 14)],
    )
    assert _rules_of(con) == []


def test_calls_counted_across_loans_and_agents(con):
    add_loans(con, [{"loan_id": "L1", "borrower_id": "b1"}, {"loan_id": "L2", "borrower_id": "b1"}])
    add_actions(
        con,
        [
            {"loan_id": "L1", "action_time": f"{DAY} 09:00:00", "agent_id": "A1"},
            {"loan_id": "L2", "action_time": f"{DAY} 10:00:00", "agent_id": "A2", "team": "agency"},
            {"loan_id": "L1", "action_time": f"{DAY} 11:00:00", "agent_id": "A2", "channel": "ai_voice"},
            {"loan_id": "L2", "action_time": f"{DAY} 12:00:00", "agent_id": "A1"},  # 4th for b1
        ],
    )
    breaches = compliance.find_breaches(con, Filters())
    assert breaches[["loan_id", "agent_id", "rule"]].values.tolist() == [["L2", "A1", "call_frequency"]]


def test_calls_counted_per_loan_without_borrower(con):
    add_loans(con, [{"loan_id": "L1"}, {"loan_id": "L2"}])
    add_actions(
        con,
        [{"loan_id": "L1", "action_time": f"{DAY} {hour}:00:00"} for hour in (9, 10)]
        + [{"loan_id": "L2", "action_time": f"{DAY} {hour}:00:00"} for hour in (11, 12)],
    )
    assert _rules_of(con) == []


def test_borrower_calls_counted_outside_filters(con):
    add_loans(
        con,
        [
            {"loan_id": "L1", "borrower_id": "b1", "product": "消费贷"},
            {"loan_id": "L2", "borrower_id": "b1", "product": "经营贷"},
        ],
    )
    add_actions(
        con,
        [{"loan_id": "L2", "action_time": f"{DAY} {hour}:00:00"} for hour in (9, 10, 11)]
        + [{"loan_id": "L1", "action_time": f"{DAY} 12:00:00"}],
    )
    # The 4th call is on the 消费贷 loan; the three before it on the 经营贷 loan still count.
    assert _rules_of(con, products=("消费贷",)) == [(4, "call_frequency")]
    assert _rules_of(con, products=("经营贷",)) == []


def test_non_borrower_contact_flagged(con):
    add_loans(con, [{"loan_id": "L1", "borrower_id": "b1"}])
    add_actions(
        con,
        [
            {"loan_id": "L1", "action_time": f"{DAY} 09:00:00", "contact_target": "emergency_contact"},
            {"loan_id": "L1", "action_time": f"{DAY} 10:00:00", "contact_target": "third_party", "channel": "sms"},
            {"loan_id": "L1", "action_time": f"{DAY} 11:00:00", "contact_target": "borrower"},
            {"loan_id": "L1", "action_time": f"{DAY} 12:00:00", "contact_target": None},
        ],
    )
    assert _rules_of(con) == [(1, "non_borrower_contact"), (2, "non_borrower_contact")]


def test_rules_are_configurable(con):
    add_loans(con, [{"loan_id": "L1", "borrower_id": "b1"}])
    add_actions(
        con,
        [
            {"loan_id": "L1", "action_time": f"{DAY} 09:00:00"},
            {"loan_id": "L1", "action_time": f"{DAY} 21:30:00"},
        ],
    )
    rules = compliance.ComplianceRules(quiet_start=dt.time(21, 0), max_connected_calls=1)
    breaches = compliance.find_breaches(con, Filters(), rules)
    assert sorted(breaches["rule"]) == ["call_frequency", "contact_hours"]


def test_breach_rates_per_thousand(con):
    add_loans(con, [{"loan_id": "L1", "borrower_id": "b1"}])
    actions = [{"loan_id": "L1", "action_time": f"2026-03-{day:02d} 10:00:00", "agent_id": "A1"} for day in range(1, 21)]
    actions += [{"loan_id": "L1", "action_time": f"2026-03-{day:02d} 10:00:00", "agent_id": "A2", "team": "T2",
                 "channel": "sms"} for day in range(1, 11)]
    actions += [{"loan_id": "L1", "action_time": "2026-04-01 23:00:00", "agent_id": "A2", "team": "T2"}]
    add_actions(con, actions)
    breaches = compliance.find_breaches(con, Filters())
    contacts = compliance.contact_counts(con, Filters())
    by_agent = compliance.breach_rates(breaches, contacts, "agent_id").set_index("agent_id")
    # A1: 20 contacts, no breach. A2: 11 contacts, 1 night call.
    assert by_agent.loc["A1", "per_1000"] == 0
    assert by_agent.loc["A2", "contacts"] == 11
    assert by_agent.loc["A2", "per_1000"] == pytest.approx(1000 / 11)
    assert by_agent.loc["A2", "contact_hours_per_1000"] == pytest.approx(1000 / 11)
    by_month = compliance.breach_rates(breaches, contacts, "month")
    assert by_month["contacts"].tolist() == [30, 1]
    assert by_month["contact_hours"].tolist() == [0, 1]
    by_strategy = compliance.breach_rates(breaches, contacts, "strategy")
    assert by_strategy["strategy"].tolist() == ["(none)"]


def test_breach_rates_rejects_unknown_group():
    with pytest.raises(ValueError, match="by must be"):
        compliance.breach_rates(pd.DataFrame(), pd.DataFrame(), "region")


def test_compliance_command_columns(db_path, tmp_path):
    connection = db.connect(db_path)
    add_loans(connection, [{"loan_id": "007", "borrower_id": "b1"}])
    add_actions(connection, [{"loan_id": "007", "action_time": f"{DAY} 22:15:00", "agent_id": "CA017"}])
    connection.close()
    out = tmp_path / "breaches.csv"
    assert main(["compliance", "--db", str(db_path), "--out", str(out)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    assert list(table.columns) == ["loan_id", "action_time", "agent_id", "channel", "rule"]
    assert table.values.tolist() == [["007", "2026-03-03 22:15:00", "CA017", "manual_call", "contact_hours"]]


def test_calls_to_contacts_count_toward_cap(con):
    add_loans(con, [{"loan_id": "L1", "borrower_id": "b1"}])
    add_actions(
        con,
        [{"loan_id": "L1", "action_time": f"{DAY} {hour}:00:00"} for hour in (9, 10, 11)]
        + [{"loan_id": "L1", "action_time": f"{DAY} 12:00:00", "contact_target": "emergency_contact"}],
    )
    # The 4th connected call of the day went to an emergency contact: it breaks both rules.
    assert _rules_of(con) == [(4, "call_frequency"), (4, "non_borrower_contact")]


def test_breach_totals_without_contacts():
    totals = compliance.breach_totals(pd.DataFrame(columns=["rule"]), pd.DataFrame(columns=["contact_count"]))
    assert totals.contacts == 0
    assert totals.breaches == 0
    assert totals.per_1000 is None
