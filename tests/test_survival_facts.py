"""Survival records from the fact tables against a plain pandas reimplementation.

The random tape (fixed seed) contains the cases the stored per-loan values must handle. It
has gaps between month-ends, rows after the as-of month, loans first seen late (left
truncation) and loans already in default when first seen. It also has defaults and payoffs
at MOB 0, a month-end before the origination month, charge-offs and loans with no
month-end at all. Expected records come
from ``_pandas_records``, which applies the survival_loans rules to the raw loan_months
rows. Counts made in SQL (``load_survival_counts``) are checked against the same fits on
loan records (``load_survival_data``).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import queries
from analysis.filters import Filters, month_end
from analysis.survival import cumulative_incidence, kaplan_meier
from analysis.survival_data import load_survival_counts, load_survival_data
from ingest import facts
from queries import db

SEED = 20_261_204
N_LOANS = 400
FIRST_MONTH = dt.date(2023, 1, 31)
N_MONTHS = 30
# More provinces than the 12 segments a Kaplan–Meier chart keeps, so small ones merge.
PROVINCES = [f"P{index:02d}" for index in range(14)]

RECORD_COLUMNS = [
    "record_status", "entry_mob", "duration_mob", "event_type",
    "first_mob", "last_mob", "default_mob", "paid_off_mob",
]


def _month_end(index: int) -> dt.date:
    year, month = divmod(FIRST_MONTH.month - 1 + index, 12)
    return month_end(dt.date(FIRST_MONTH.year + year, month + 1, 1))


def _random_tape(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    loans, months, attributes = [], [], []
    for number in range(N_LOANS):
        loan_id = f"L{rng.integers(0, 10**6):06d}-{number:03d}"
        start = int(rng.integers(-6, N_MONTHS))
        origination = _month_end(start).replace(day=int(rng.integers(1, 28)))
        term = int(rng.choice([6, 12, 24])) if rng.random() > 0.1 else None
        loans.append(
            {
                "loan_id": loan_id,
                "origination_date": origination,
                "principal": float(rng.integers(1, 50)) * 1000,
                "term_months": term,
                "grade": str(rng.choice(["A", "B", "C"])),
                "product": str(rng.choice(["cash", "shop"])),
                "province": str(rng.choice(PROVINCES)),
                "guarantee_type": None if rng.random() < 0.2 else str(rng.choice(["none", "insured"])),
                "is_first_loan": bool(rng.random() < 0.5),
            }
        )
        if rng.random() < 0.3:
            attributes.append({"loan_id": loan_id, "attribute": "channel_code", "value": str(rng.choice(["x", "y"]))})
        if rng.random() < 0.04:
            continue  # no month-end rows at all
        # First row: usually the origination month, sometimes later (left truncation),
        # rarely one month before it (a bad row).
        first = max(start, 0) + int(rng.choice([0, 0, 0, 2, 5]))
        if rng.random() < 0.02:
            first = start - 1
        # Some loans are first seen past due, near the thresholds plus the days of a month.
        dpd = 0 if rng.random() > 0.08 else int(rng.choice([60, 95, 119, 120, 121, 122, 150, 200]))
        for index in range(first, N_MONTHS + 3):
            if rng.random() < 0.06:
                continue  # a gap
            roll = rng.random()
            status = "active"
            if roll < 0.03:
                status = "paid_off"
            elif roll < 0.045:
                status = "charged_off"
            elif roll < 0.20:
                dpd += int(rng.integers(25, 36))
            elif roll < 0.35:
                dpd = 0
            months.append(
                {
                    "loan_id": loan_id,
                    "snapshot_date": _month_end(index),
                    "dpd": dpd,
                    "outstanding_principal": 0.0 if status == "paid_off" else 1000.0,
                    "status": status,
                }
            )
            if status in ("paid_off", "charged_off"):
                break
    return pd.DataFrame(loans), pd.DataFrame(months), pd.DataFrame(attributes)


@pytest.fixture(scope="module")
def tape(tmp_path_factory):
    loans, months, attributes = _random_tape(np.random.default_rng(SEED))
    con = db.connect(tmp_path_factory.mktemp("survival_facts") / "tape.duckdb")
    con.register("tape_loans", loans)
    con.execute(
        "insert into loans (loan_id, origination_date, principal, term_months, grade, product, "
        "province, guarantee_type, is_first_loan, load_id) "
        "select loan_id, origination_date, principal, term_months, grade, product, province, "
        "guarantee_type, is_first_loan, 1 from tape_loans"
    )
    con.register("tape_months", months)
    con.execute(
        "insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, status, load_id) "
        "select loan_id, snapshot_date, dpd, outstanding_principal, status, 1 from tape_months"
    )
    con.register("tape_attributes", attributes)
    con.execute(
        "insert into loan_attributes (loan_id, attribute, value, load_id) "
        "select loan_id, attribute, value, 1 from tape_attributes"
    )
    facts.rebuild(con)
    yield con, loans, months
    con.close()


def _pandas_records(loans: pd.DataFrame, months: pd.DataFrame, as_of: dt.date, event_dpd: int) -> pd.DataFrame:
    """Apply the survival_loans rules to the raw rows, one loan at a time."""
    rows = []
    seen = months[pd.to_datetime(months["snapshot_date"]).dt.date <= as_of]
    by_loan = {loan_id: group for loan_id, group in seen.groupby("loan_id")}
    for loan in loans.itertuples():
        if loan.origination_date > as_of:
            continue
        record = dict.fromkeys(RECORD_COLUMNS)
        record["loan_id"] = loan.loan_id
        group = by_loan.get(loan.loan_id)
        if group is None:
            record["record_status"] = "no_snapshots"
            rows.append(record)
            continue
        dates = pd.to_datetime(group["snapshot_date"])
        mob = (dates.dt.year - loan.origination_date.year) * 12 + dates.dt.month - loan.origination_date.month
        charged_off = group["status"] == "charged_off"
        defaulted = mob[(group["dpd"] > event_dpd) | charged_off]
        paid_off = mob[group["status"] == "paid_off"]
        before = mob[(group["dpd"] - dates.dt.day > event_dpd) | charged_off]
        first_mob, last_mob = int(mob.min()), int(mob.max())
        default_mob = int(defaulted.min()) if len(defaulted) else None
        paid_off_mob = int(paid_off.min()) if len(paid_off) else None
        term = None if pd.isna(loan.term_months) else int(loan.term_months)
        if default_mob is not None and (paid_off_mob is None or default_mob <= paid_off_mob):
            event_type = 1
        elif paid_off_mob is not None and term is not None and paid_off_mob < term:
            event_type = 2
        else:
            event_type = 0
        if event_type == 1:
            duration = default_mob
        elif paid_off_mob is not None:
            duration = paid_off_mob
        else:
            duration = last_mob
        entry = first_mob - 1 if first_mob > 0 and event_type > 0 and duration == first_mob else first_mob
        prevalent = len(before) > 0 and int(before.min()) == first_mob and first_mob > 0
        if first_mob < 0:
            status = "negative_duration"
        elif event_type > 0 and duration <= 0:
            status = "zero_duration"
        elif prevalent:
            status = "prevalent_default"
        elif duration <= entry:
            status = "no_follow_up"
        else:
            status = "ok"
        record.update(
            record_status=status, entry_mob=entry, duration_mob=duration, event_type=event_type,
            first_mob=first_mob, last_mob=last_mob, default_mob=default_mob, paid_off_mob=paid_off_mob,
        )
        rows.append(record)
    return pd.DataFrame(rows).set_index("loan_id").sort_index()


# The latest month-end (stored path), an earlier month-end and a mid-month date (rows after
# the as-of month, so the values are recomputed), each with stored and unstored thresholds.
AS_OF_CASES = [_month_end(N_MONTHS + 2), _month_end(N_MONTHS - 8), _month_end(14) - dt.timedelta(days=10)]
EVENT_DPD_CASES = [30, 45, 90]


@pytest.mark.parametrize("as_of", AS_OF_CASES)
@pytest.mark.parametrize("event_dpd", EVENT_DPD_CASES)
def test_records_match_pandas(tape, as_of, event_dpd):
    con, loans, months = tape
    params = {**Filters(as_of=as_of).params(), "event_dpd": event_dpd}
    actual = queries.run(con, "survival_loans", params).set_index("loan_id").sort_index()
    expected = _pandas_records(loans, months, as_of, event_dpd)

    assert list(actual.index) == list(expected.index)
    for column in RECORD_COLUMNS:
        left = actual[column].astype(object).where(actual[column].notna(), None)
        right = expected[column].astype(object).where(expected[column].notna(), None)
        mismatched = left.index[[a != b for a, b in zip(left, right)]]
        assert mismatched.empty, f"{column} differs for {list(mismatched[:5])}"


def test_tape_covers_every_record_status(tape):
    con, loans, months = tape
    expected = _pandas_records(loans, months, AS_OF_CASES[0], 90)
    statuses = set(expected["record_status"])
    assert statuses == {
        "ok", "no_snapshots", "no_follow_up", "prevalent_default", "zero_duration", "negative_duration",
    }


@pytest.mark.parametrize("segment", [None, "grade", "province", "vintage_year", "is_first_loan", "guarantee_type", "attr:channel_code"])
@pytest.mark.parametrize("as_of", AS_OF_CASES[:2])
def test_counts_fit_like_records(tape, segment, as_of):
    con = tape[0]
    filters = Filters(as_of=as_of)
    attributes = (segment[len("attr:"):],) if segment and segment.startswith("attr:") else ()
    records = load_survival_data(con, filters, 90, attributes)
    counts = load_survival_counts(con, filters, 90, segment)

    assert [note.__dict__ for note in counts.notes] == [note.__dict__ for note in records.notes]
    assert counts.n_loans == records.n_loans
    assert counts.n_defaults == records.n_defaults
    assert counts.n_prepayments == records.n_prepayments
    from_records, from_counts = kaplan_meier(records, segment), kaplan_meier(counts, segment)
    pd.testing.assert_frame_equal(from_counts.table, from_records.table)
    pd.testing.assert_frame_equal(from_counts.summary, from_records.summary)
    pd.testing.assert_frame_equal(from_counts.survival_at, from_records.survival_at)
    assert from_counts.logrank == from_records.logrank
    assert [note.__dict__ for note in from_counts.notes] == [note.__dict__ for note in from_records.notes]
    pd.testing.assert_frame_equal(
        cumulative_incidence(counts).table, cumulative_incidence(records).table
    )


def test_counts_merge_small_provinces(tape):
    km = kaplan_meier(load_survival_counts(tape[0], Filters(), 90, "province"), "province")
    assert "(other)" in set(km.summary["segment"])
    assert km.summary["segment"].nunique() == 12


def test_counts_reject_other_segment(tape):
    counts = load_survival_counts(tape[0], Filters(), 90, "grade")
    with pytest.raises(ValueError, match="split by 'grade'"):
        kaplan_meier(counts, "product")


def test_counts_reject_unknown_segment(tape):
    with pytest.raises(ValueError, match="unknown column"):
        load_survival_counts(tape[0], Filters(), 90, "loan_id")


def test_counts_reject_unknown_attribute(tape):
    with pytest.raises(ValueError, match="not found"):
        load_survival_counts(tape[0], Filters(), 90, "attr:no_such_header")


def test_counts_of_empty_database(con):
    counts = load_survival_counts(con, Filters(), 90, "grade")
    assert counts.n_loans == 0
    assert counts.level_counts.empty
