"""The survival_loans query on hand-built loans: durations, events, entry and rejections.

Expected values are worked out by hand from each loan's month-ends (MOB 0 = origination
month) and written beside each loan.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import queries
from analysis.filters import Filters
from analysis.survival import kaplan_meier
from analysis.survival_cox import fit_cox
from analysis.survival_data import load_survival_data
from ingest import facts

AS_OF = dt.date(2024, 12, 31)

# loan_id, origination_date, term_months, grade, [(snapshot month-end, dpd, status)]
LOANS = [
    # Defaults at MOB 6 (dpd 95 > 90): entry 0, duration 6, event 1.
    ("default6", "2024-01-15", 12, "A", [(f"2024-{m:02d}", 0, "active") for m in range(1, 7)] + [("2024-07", 95, "active")]),
    # Paid off at MOB 4 of 12: prepayment (competing event) at 4.
    ("prepay4", "2024-01-20", 12, "A", [(f"2024-{m:02d}", 0, "active") for m in range(1, 5)] + [("2024-05", 0, "paid_off")]),
    # Paid off at MOB 6 of a 6-month term: maturity, censored at 6.
    ("mature6", "2024-02-03", 6, "B", [(f"2024-{m:02d}", 0, "active") for m in range(2, 8)] + [("2024-08", 0, "paid_off")]),
    # Charged off at MOB 0: zero duration, rejected and named.
    ("zero0", "2024-03-10", 12, "B", [("2024-03", 0, "charged_off")]),
    # Month-end before its origination month: negative duration, rejected and named.
    ("negative", "2024-05-10", 12, "B", [("2024-04", 0, "active"), ("2024-05", 0, "active"), ("2024-06", 0, "active")]),
    # Originated 2023-01 (before the tape), first seen 2024-01 (MOB 12) with dpd 100: dpd at the
    # previous month-end was at most 100 - 31 = 69, so it crossed 90 during January and enters
    # at MOB 11, defaulting at MOB 12.
    ("same_month", "2023-01-10", 24, "A", [("2024-01", 100, "active")]),
    # First seen at MOB 12 with dpd 200: 200 - 31 > 90, it defaulted before the tape: left out.
    ("prevalent", "2023-01-10", 24, "A", [("2024-01", 200, "active"), ("2024-02", 229, "active")]),
    # First seen at MOB 7, current, active until MOB 10: entry 7, censored at 10.
    ("left_trunc", "2023-06-01", 24, "B", [(f"2024-{m:02d}", 0, "active") for m in range(1, 5)]),
    # Originated in the as-of month: nothing after entry, left out.
    ("new", "2024-12-05", 12, "A", [("2024-12", 0, "active")]),
    # No month-end at all.
    ("no_rows", "2024-06-01", 12, "A", []),
    # dpd 45 at MOB 3 and 75 at MOB 4: a default at 30 (MOB 3) or 60 (MOB 4), censored at 90.
    ("dpd75", "2024-04-11", 12, "C", [("2024-04", 0, "active"), ("2024-05", 0, "active"), ("2024-06", 15, "active"), ("2024-07", 45, "active"), ("2024-08", 75, "active")]),
    # Charged off at MOB 5 whatever its dpd: a default at 5.
    ("chargeoff5", "2024-02-01", 12, "C", [(f"2024-{m:02d}", 0, "active") for m in range(2, 7)] + [("2024-07", 0, "charged_off")]),
    # Paid off at MOB 3 with no term: prepayment unknown, censored at 3 and counted.
    ("no_term", "2024-01-05", None, "C", [(f"2024-{m:02d}", 0, "active") for m in range(1, 4)] + [("2024-04", 0, "paid_off")]),
    # A month-end after the as-of month is ignored: censored at MOB 11 (2024-12), not a default.
    ("after_as_of", "2024-01-09", 24, "C", [(f"2024-{m:02d}", 0, "active") for m in range(1, 13)] + [("2025-01", 120, "active")]),
]


def _month_end(text: str) -> dt.date:
    year, month = int(text[:4]), int(text[5:7])
    first_next = dt.date(year + month // 12, month % 12 + 1, 1)
    return first_next - dt.timedelta(days=1)


@pytest.fixture
def edge_con(con):
    loans = pd.DataFrame(
        [
            {
                "loan_id": loan_id,
                "origination_date": dt.date.fromisoformat(origination),
                "principal": 10_000.0,
                "term_months": term,
                "grade": grade,
                "load_id": 1,
            }
            for loan_id, origination, term, grade, _ in LOANS
        ]
    )
    months = pd.DataFrame(
        [
            {
                "loan_id": loan_id,
                "snapshot_date": _month_end(month),
                "dpd": dpd,
                "outstanding_principal": 0 if status == "paid_off" else 5_000.0,
                "status": status,
                "load_id": 1,
            }
            for loan_id, _, _, _, rows in LOANS
            for month, dpd, status in rows
        ]
    )
    con.register("edge_loans", loans)
    con.execute(
        "insert into loans (loan_id, origination_date, principal, term_months, grade, load_id) "
        "select loan_id, origination_date, principal, term_months, grade, load_id from edge_loans"
    )
    con.register("edge_months", months)
    con.execute(
        "insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, status, load_id) "
        "select loan_id, snapshot_date, dpd, outstanding_principal, status, load_id from edge_months"
    )
    facts.rebuild(con)
    return con


def _rows(con, event_dpd=90) -> pd.DataFrame:
    params = {**Filters(as_of=AS_OF).params(), "event_dpd": event_dpd}
    return queries.run(con, "survival_loans", params).set_index("loan_id")


def test_query_columns_match_its_documentation(edge_con):
    documented = queries.get_query("survival_loans").doc
    for column in _rows(edge_con).reset_index().columns:
        assert column in documented, f"column {column} is not documented in survival_loans"


@pytest.mark.parametrize(
    "loan_id, status, entry, duration, event_type",
    [
        ("default6", "ok", 0, 6, 1),
        ("prepay4", "ok", 0, 4, 2),
        ("mature6", "ok", 0, 6, 0),
        ("same_month", "ok", 11, 12, 1),
        ("left_trunc", "ok", 7, 10, 0),
        ("dpd75", "ok", 0, 4, 0),
        ("chargeoff5", "ok", 0, 5, 1),
        ("no_term", "ok", 0, 3, 0),
        ("after_as_of", "ok", 0, 11, 0),
    ],
)
def test_usable_loan_durations(edge_con, loan_id, status, entry, duration, event_type):
    row = _rows(edge_con).loc[loan_id]
    assert row["record_status"] == status
    assert row["entry_mob"] == entry
    assert row["duration_mob"] == duration
    assert row["event_type"] == event_type


@pytest.mark.parametrize(
    "loan_id, status",
    [
        ("zero0", "zero_duration"),
        ("negative", "negative_duration"),
        ("prevalent", "prevalent_default"),
        ("new", "no_follow_up"),
        ("no_rows", "no_snapshots"),
    ],
)
def test_left_out_loans_have_reasons(edge_con, loan_id, status):
    assert _rows(edge_con).loc[loan_id, "record_status"] == status


@pytest.mark.parametrize("event_dpd, duration, event_type", [(30, 3, 1), (60, 4, 1), (90, 4, 0)])
def test_event_threshold_moves_default(edge_con, event_dpd, duration, event_type):
    row = _rows(edge_con, event_dpd).loc["dpd75"]
    assert row["duration_mob"] == duration
    assert row["event_type"] == event_type


def test_rejected_durations_named_in_notes(edge_con):
    data = load_survival_data(edge_con, Filters(as_of=AS_OF), 90)
    notes = {note.code: note for note in data.notes}
    assert notes["excluded_zero_duration"].params["loan_ids"] == "zero0"
    assert notes["excluded_negative_duration"].params["loan_ids"] == "negative"
    assert "zero0" in notes["excluded_zero_duration"].text("en")
    assert "negative" in notes["excluded_negative_duration"].text("zh")
    assert notes["maturity_unknown"].params["count"] == 1
    assert set(data.records["loan_id"]) == {
        "default6", "prepay4", "mature6", "same_month", "left_trunc", "dpd75", "chargeoff5", "no_term", "after_as_of",
    }


def test_same_month_entry_and_default_fits(edge_con):
    # The loan entering and defaulting in one month must reach KM and Cox without the
    # "entry >= duration" error lifelines raises.
    data = load_survival_data(edge_con, Filters(as_of=AS_OF), 90)
    km = kaplan_meier(data)
    at_12 = km.table.set_index("timeline").loc[12]
    assert at_12["events"] == 1
    # At MOB 12 only same_month is at risk (entry 11 < 12 ≤ 12).
    assert at_12["at_risk"] == 1
    cox = fit_cox(data, ["grade"])
    assert cox.n_events == 3
    assert any(note.code == "cox_few_events" for note in cox.notes)


def test_segment_without_defaults_not_reached(edge_con):
    data = load_survival_data(edge_con, Filters(as_of=AS_OF), 90)
    km = kaplan_meier(data, "grade")
    summary = km.summary.set_index("segment")
    assert not summary.loc["B", "median_reached"]
    assert pd.isna(summary.loc["B", "median_mob"])
    assert any(note.code == "segment_no_events" and note.params["segment"] == "B" for note in km.notes)


def test_empty_database_gives_empty_results(con):
    data = load_survival_data(con, Filters(), 90)
    assert data.n_loans == 0
    km = kaplan_meier(data, "grade")
    assert km.table.empty
    assert any(note.code == "no_loans" for note in km.notes)
    cox = fit_cox(data, ["grade"])
    assert not cox.fitted


def test_event_dpd_rejects_bad_values(con):
    with pytest.raises(ValueError, match="whole number"):
        load_survival_data(con, Filters(), -5)
    with pytest.raises(ValueError, match="whole number"):
        load_survival_data(con, Filters(), "90; drop table loans")


def test_shared_filters_reach_query(edge_con):
    data = load_survival_data(edge_con, Filters(as_of=AS_OF, grades=("B",)), 90)
    assert set(data.records["loan_id"]) == {"mature6", "left_trunc"}
    assert set(data.excluded["loan_id"]) == {"zero0", "negative"}
    # An earlier as-of month cuts the follow-up: default6 is still current in June 2024.
    earlier = load_survival_data(edge_con, Filters(as_of=dt.date(2024, 6, 30), grades=("A",)), 90)
    row = earlier.records.set_index("loan_id").loc["default6"]
    assert row["duration_mob"] == 5
    assert row["event_type"] == 0
