"""Extended (展期) and restructured (债务重组) loans: count, balance and re-default rates.

A loan is counted from its first month-end with status extended or restructured, or its
first extension / restructure action, whichever comes first. It re-defaults when a later
month-end within 6 (12) months shows dpd above ``redefault_dpd`` (default 30) or a
charge-off. Loans whose window has not ended by the as-of month and that are still open
are not judged and stay out of the rate's denominator.
"""

from __future__ import annotations

import logging

import duckdb
import pandas as pd

import queries
from analysis.collections import wilson_interval
from analysis.filters import Filters, resolve_as_of

logger = logging.getLogger(__name__)

DEFAULT_REDEFAULT_DPD = 30


def load_restructured(
    con: duckdb.DuckDBPyConnection, filters: Filters, redefault_dpd: int = DEFAULT_REDEFAULT_DPD
) -> pd.DataFrame:
    """Run ``restructured_loans``: one row per extended or restructured loan."""
    filters = resolve_as_of(con, filters)
    frame = queries.run(con, "restructured_loans", {**filters.params(), "redefault_dpd": redefault_dpd})
    for column in ("balance_at_event", "current_balance"):
        frame[column] = frame[column].astype(float)
    return frame


def summarise_restructured(loans: pd.DataFrame) -> pd.DataFrame:
    """Return one row per kind (extended / restructured) and a total row ``all``.

    Columns: kind, loans, balance_at_event, current_balance (yuan), and for 6 and 12
    months: judged_6m, redefault_6m (count), redefault_rate_6m, ci_lower_6m, ci_upper_6m
    (Wilson 95%), and the same with _12m. Rates are NaN when no loan is judged yet.
    """
    groups = [(kind, rows) for kind, rows in loans.groupby("kind", sort=True)]
    groups.append(("all", loans))
    records = []
    for kind, rows in groups:
        record = {
            "kind": kind,
            "loans": len(rows),
            "balance_at_event": rows["balance_at_event"].sum(),
            "current_balance": rows["current_balance"].sum(),
        }
        for window in ("6m", "12m"):
            judged = rows[f"redefault_{window}"].dropna().astype(bool)
            record[f"judged_{window}"] = len(judged)
            record[f"redefault_{window}"] = int(judged.sum())
        records.append(record)
    table = pd.DataFrame.from_records(records)
    for window in ("6m", "12m"):
        judged = table[f"judged_{window}"]
        table[f"redefault_rate_{window}"] = table[f"redefault_{window}"] / judged.where(judged > 0)
        table[f"ci_lower_{window}"], table[f"ci_upper_{window}"] = wilson_interval(
            table[f"redefault_{window}"], judged
        )
    return table
