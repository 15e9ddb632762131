"""Survival records of time to default, one row per loan, from the ``survival_loans`` query.

Time scale: months on book (MOB), origin at origination. The event is the first month-end
with dpd above a threshold (30, 60 or 90) or a charge-off. Prepayment (paid off before the
scheduled maturity, origination + term_months) is a competing event. A payoff at or after
maturity and a loan still active at its last month-end are censored. A loan first seen at
MOB m > 0 enters the risk set at m (left truncation, lifelines ``entry``).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

import queries
from analysis.filters import Filters, resolve_as_of
from messages import t

logger = logging.getLogger(__name__)

EVENT_DPD_CHOICES = (30, 60, 90)
DEFAULT_EVENT_DPD = 90

# event_type codes of the survival_loans query.
CENSORED, DEFAULT, PREPAYMENT = 0, 1, 2

# Loan columns offered as Kaplan–Meier segments and as categorical Cox covariates.
SEGMENT_COLUMNS = (
    "product",
    "channel",
    "province",
    "grade",
    "vintage_year",
    "is_first_loan",
    "guarantee_type",
)
# Numeric Cox covariates and the unit one step of each stands for.
NUMERIC_COLUMNS = ("principal", "annual_rate", "score", "borrower_age", "term_months")
# Extra attributes (loan_attributes) are named "attr:<header>".
ATTRIBUTE_PREFIX = "attr:"

MISSING_LABEL = "(missing)"
OTHER_LABEL = "(other)"
ALL_LABEL = "all"

# At most this many loan ids are named in a note, beside the count of all of them.
MAX_IDS_NAMED = 10


@dataclass(frozen=True)
class Note:
    """A warning or remark for the reader, rendered from the message catalog.

    ``code`` names the catalog key ``survival.note.<code>``; ``params`` fill its placeholders.
    """

    code: str
    params: dict = field(default_factory=dict)

    def text(self, lang: str = "en") -> str:
        return t(f"survival.note.{self.code}", lang, **self.params)


@dataclass
class SurvivalData:
    """Usable survival records and the loans left out, with the reasons.

    ``records`` has one row per usable loan: loan_id, entry_mob, duration_mob, event_type
    (0 censored, 1 default, 2 prepayment), ``event`` (bool, default) and the covariates.
    ``excluded`` has loan_id and record_status for every loan left out.
    """

    records: pd.DataFrame
    excluded: pd.DataFrame
    event_dpd: int
    as_of: dt.date | None
    notes: list[Note] = field(default_factory=list)

    @property
    def n_loans(self) -> int:
        return len(self.records)

    @property
    def n_defaults(self) -> int:
        return int((self.records["event_type"] == DEFAULT).sum())

    @property
    def n_prepayments(self) -> int:
        return int((self.records["event_type"] == PREPAYMENT).sum())


@dataclass
class SurvivalCounts:
    """Survival records counted per (segment, entry MOB, duration MOB, event type).

    Built in SQL by :func:`load_survival_counts`, so a book of a million loans costs a few
    thousand rows. ``level_counts`` has segment (text), entry_mob, duration_mob, event_type
    (0 censored, 1 default, 2 prepayment), loans and first_loan_id (the smallest loan id of
    the row), before any merging of small segment levels. ``segment`` is the column the
    counts are split by (None: one segment ``all``). The notes are those of
    :func:`load_survival_data` for the same loans.
    """

    level_counts: pd.DataFrame
    segment: str | None
    event_dpd: int
    as_of: dt.date | None
    notes: list[Note] = field(default_factory=list)

    @property
    def n_loans(self) -> int:
        return int(self.level_counts["loans"].sum())

    @property
    def n_defaults(self) -> int:
        return self._loans_with(DEFAULT)

    @property
    def n_prepayments(self) -> int:
        return self._loans_with(PREPAYMENT)

    def _loans_with(self, event_type: int) -> int:
        counts = self.level_counts
        return int(counts.loc[counts["event_type"] == event_type, "loans"].sum())


def attribute_column(name: str) -> str:
    """Return the records column of the extra attribute ``name``."""
    return f"{ATTRIBUTE_PREFIX}{name}"


def check_event_dpd(event_dpd) -> int:
    """Return ``event_dpd`` as an int, or raise ValueError when it is not a whole number ≥ 0."""
    try:
        value = int(event_dpd)
    except (TypeError, ValueError):
        value = None
    if value is None or value != event_dpd or value < 0:
        raise ValueError(
            f"event dpd threshold must be a whole number of days ≥ 0 such as "
            f"{', '.join(map(str, EVENT_DPD_CHOICES))}; got {event_dpd!r}"
        )
    return value


def check_column(name: str, data_columns) -> None:
    """Raise ValueError naming the valid choices when ``name`` is not a known column."""
    if name in data_columns:
        return
    choices = ", ".join([*SEGMENT_COLUMNS, *NUMERIC_COLUMNS, f"{ATTRIBUTE_PREFIX}<attribute>"])
    raise ValueError(f"unknown column {name!r}; choose one of: {choices}")


def list_attributes(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Return the extra attributes offered as segments: attribute, loan_count, value_count."""
    return queries.run(con, "survival_attribute_names")


def check_attributes(con: duckdb.DuckDBPyConnection, names) -> None:
    """Raise ValueError naming the known extra attributes when one of ``names`` is not one."""
    known = set(list_attributes(con)["attribute"])
    unknown = [name for name in names if name not in known]
    if unknown:
        choices = ", ".join(sorted(known)) or "none in this database"
        raise ValueError(f"extra attribute(s) {unknown} not found; known attributes: {choices}")


def load_survival_data(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    event_dpd: int = DEFAULT_EVENT_DPD,
    attributes: tuple[str, ...] | list[str] = (),
) -> SurvivalData:
    """Build the survival records of the filtered loans up to the as-of month.

    Parameters
    ----------
    con : DuckDB connection.
    filters : the shared filters; ``as_of`` None means the latest month in the data.
    event_dpd : default is the first month-end with dpd above this many days, or charge-off.
    attributes : extra attributes (headers in loan_attributes) to add as ``attr:<name>``
        columns, as text.

    Notes
    -----
    Loans with a default or payoff at MOB 0 or a month-end before the origination month are
    rejected and named in a note. Loans originated in the as-of month (nothing observed after
    entry) and loans already in default when first seen are left out and counted.
    """
    event_dpd = check_event_dpd(event_dpd)
    filters = resolve_as_of(con, filters)
    params = {**filters.params(), "event_dpd": event_dpd}
    if filters.as_of is None:
        # No month-end at all: the query still runs and returns loans with no snapshots.
        params["as_of"] = dt.date(9999, 12, 31)
    table = queries.run(con, "survival_loans", params)
    for name in attributes:
        values = queries.run(con, "survival_attribute_values", {**params, "attribute": name})
        column = attribute_column(name)
        table = table.merge(
            values.rename(columns={"attribute_value": column}), on="loan_id", how="left"
        )

    usable = table["record_status"] == "ok"
    records = table.loc[usable].reset_index(drop=True)
    for column in ("entry_mob", "duration_mob", "event_type"):
        records[column] = records[column].astype(np.int64)
    records["event"] = records["event_type"] == DEFAULT
    records["vintage_year"] = records["vintage_year"].astype("Int64").astype(str)
    excluded = table.loc[~usable, ["loan_id", "record_status"]].reset_index(drop=True)

    notes = _exclusion_notes(excluded)
    unknown_maturity = int(
        (records["paid_off_mob"].notna() & records["term_months"].isna()).sum()
    )
    if unknown_maturity:
        notes.append(Note("maturity_unknown", {"count": unknown_maturity}))
    logger.info(
        "survival records: %d usable loans, %d defaults (dpd > %d), %d prepayments, %d left out",
        len(records),
        int((records["event_type"] == DEFAULT).sum()),
        event_dpd,
        int((records["event_type"] == PREPAYMENT).sum()),
        len(excluded),
    )
    return SurvivalData(records, excluded, event_dpd, filters.as_of, notes)


def load_survival_counts(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    event_dpd: int = DEFAULT_EVENT_DPD,
    segment: str | None = None,
) -> SurvivalCounts:
    """Count the survival records of the filtered loans per segment, entry, duration and event.

    Gives the same loans, exclusions and notes as :func:`load_survival_data`, but the
    records are counted in SQL (query ``survival_counts``) instead of being moved to pandas
    one row per loan. ``segment`` is one of SEGMENT_COLUMNS, ``attr:<header>`` for an extra
    attribute, or None for one segment ``all``.

    Raises
    ------
    ValueError
        If ``event_dpd`` is not a whole number >= 0 or ``segment`` is not a known column or
        extra attribute.
    """
    event_dpd = check_event_dpd(event_dpd)
    attribute = None
    if segment is not None and segment.startswith(ATTRIBUTE_PREFIX):
        attribute = segment[len(ATTRIBUTE_PREFIX):]
        check_attributes(con, [attribute])
    elif segment is not None and segment not in SEGMENT_COLUMNS:
        raise ValueError(
            f"unknown column {segment!r} for a survival segment; choose one of: "
            f"{', '.join(SEGMENT_COLUMNS)}, {ATTRIBUTE_PREFIX}<attribute>"
        )
    filters = resolve_as_of(con, filters)
    params = {
        **filters.params(),
        "event_dpd": event_dpd,
        "segment": None if attribute is not None else segment,
        "attribute": attribute,
        "all_label": ALL_LABEL,
        "missing_label": MISSING_LABEL,
        "max_ids_named": MAX_IDS_NAMED,
    }
    if filters.as_of is None:
        # No month-end at all: the query still runs and counts loans with no snapshots.
        params["as_of"] = dt.date(9999, 12, 31)
    table = queries.run(con, "survival_counts", params)

    usable = table["record_status"] == "ok"
    level_counts = table.loc[
        usable, ["segment", "entry_mob", "duration_mob", "event_type", "loans", "first_loan_id"]
    ].reset_index(drop=True)
    for column in ("entry_mob", "duration_mob", "event_type", "loans"):
        level_counts[column] = level_counts[column].astype(np.int64)

    notes = []
    for row in table.loc[~usable].sort_values("record_status").itertuples():
        note_params = {"count": int(row.loans)}
        if row.record_status in ("zero_duration", "negative_duration"):
            named = list(row.rejected_loan_ids)
            note_params["loan_ids"] = ", ".join(named) + (" …" if row.loans > len(named) else "")
            logger.warning(
                "rejected %d loans with %s: %s", row.loans, row.record_status, note_params["loan_ids"]
            )
        notes.append(Note(f"excluded_{row.record_status}", note_params))
    unknown_maturity = int(table.loc[usable, "unknown_maturity_loans"].sum())
    if unknown_maturity:
        notes.append(Note("maturity_unknown", {"count": unknown_maturity}))

    counts = SurvivalCounts(level_counts, segment, event_dpd, filters.as_of, notes)
    logger.info(
        "survival counts: %d usable loans, %d defaults (dpd > %d), %d prepayments, %d left out",
        counts.n_loans,
        counts.n_defaults,
        event_dpd,
        counts.n_prepayments,
        int(table.loc[~usable, "loans"].sum()),
    )
    return counts


def _exclusion_notes(excluded: pd.DataFrame) -> list[Note]:
    """Turn the left-out loans into notes; rejected durations name their loan ids."""
    notes = []
    for status, ids in excluded.groupby("record_status", sort=True)["loan_id"]:
        params = {"count": len(ids)}
        if status in ("zero_duration", "negative_duration"):
            named = sorted(ids)[:MAX_IDS_NAMED]
            params["loan_ids"] = ", ".join(named) + (" …" if len(ids) > len(named) else "")
            logger.warning("rejected %d loans with %s: %s", len(ids), status, params["loan_ids"])
        notes.append(Note(f"excluded_{status}", params))
    return notes


def segment_values(records: pd.DataFrame, segment: str | None, max_levels: int) -> pd.Series:
    """Return the segment label of each record as text.

    Missing values become ``(missing)``; beyond ``max_levels`` levels, the smallest levels are
    merged into ``(other)``. ``segment`` None puts every record in one segment ``all``.
    """
    if segment is None:
        return pd.Series(ALL_LABEL, index=records.index)
    check_column(segment, records.columns)
    values = records[segment].astype("string").fillna(MISSING_LABEL).astype(str)
    counts = values.value_counts()
    if len(counts) > max_levels:
        keep = set(counts.index[: max_levels - 1])
        values = values.where(values.isin(keep), OTHER_LABEL)
    return values


def merge_small_levels(level_counts: pd.DataFrame, max_levels: int) -> pd.DataFrame:
    """Merge the smallest segment levels of ``level_counts`` into ``(other)``.

    Keeps the same levels as :func:`segment_values` on the loan records: levels ranked by
    loans, ties in order of first appearance in loan_id order (pandas ``value_counts``).
    """
    totals = level_counts.groupby("segment", sort=False).agg(
        loans=("loans", "sum"), first_loan_id=("first_loan_id", "min")
    )
    if len(totals) <= max_levels:
        return level_counts
    in_appearance_order = totals.sort_values("first_loan_id")["loans"]
    ranked = in_appearance_order.sort_values(ascending=False)
    keep = set(ranked.index[: max_levels - 1])
    merged = level_counts.copy()
    merged["segment"] = merged["segment"].where(merged["segment"].isin(keep), OTHER_LABEL)
    return merged
