"""The shared filters (as-of month, product, channel, province, vintage range, grade).

Filters become DuckDB named parameters for the ``filtered_loans`` table macro in
``queries/schema.sql``; they never become SQL text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import duckdb


def month_end(day: dt.date) -> dt.date:
    """Return the last day of the month of ``day``."""
    next_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return next_month - dt.timedelta(days=1)


def parse_month(text: str) -> dt.date:
    """Parse 'YYYY-MM' (or a full ISO date) into that month's end date.

    Raises
    ------
    ValueError
        With the expected form, when ``text`` is not a month.
    """
    try:
        year, month = int(text[:4]), int(text[5:7])
        if len(text) not in (7, 10) or text[4] != "-":
            raise ValueError
        return month_end(dt.date(year, month, 1))
    except (ValueError, IndexError):
        raise ValueError(f"month must look like 2026-11 (YYYY-MM); got {text!r}") from None


@dataclass(frozen=True)
class Filters:
    """Shared filter values. None (or an empty tuple) means "no filter" for that field."""

    as_of: dt.date | None = None          # month-end; None = latest month in the data
    products: tuple[str, ...] = field(default=())
    channels: tuple[str, ...] = field(default=())
    provinces: tuple[str, ...] = field(default=())
    grades: tuple[str, ...] = field(default=())
    vintage_from: dt.date | None = None   # first day of the first origination month
    vintage_to: dt.date | None = None     # any day of the last origination month

    def params(self) -> dict:
        """Return the DuckDB parameters used by ``filtered_loans`` and ``$as_of``."""
        return {
            "as_of": self.as_of,
            "products": list(self.products) or None,
            "channels": list(self.channels) or None,
            "provinces": list(self.provinces) or None,
            "grades": list(self.grades) or None,
            "vintage_from": self.vintage_from,
            "vintage_to": self.vintage_to,
        }

    def describe(self) -> dict:
        """Return the filter values as JSON-friendly data (for audit logs and reports)."""
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, dt.date):
                values[key] = value.isoformat()
            elif isinstance(value, tuple):
                values[key] = list(value)
        return values


# The SQL fragment every query uses to apply the filters.
FILTERED_LOANS_SQL = (
    "filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)"
)


def latest_month(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    """Return the latest snapshot month-end in loan_months, or None when it is empty."""
    return con.execute("select max(snapshot_date) from loan_months").fetchone()[0]


def resolve_as_of(con: duckdb.DuckDBPyConnection, filters: Filters) -> Filters:
    """Return ``filters`` with as_of set to the latest month in the data when it is None."""
    if filters.as_of is not None:
        return filters
    latest = latest_month(con)
    return Filters(**{**filters.__dict__, "as_of": latest})
