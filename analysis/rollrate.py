"""Roll rates (迁徙率): migration matrices, flow rates, implied loss and cure rates.

Definitions (the product's metric definitions, "Roll rates"):

- Migration matrix t-1 -> t: among filtered loans active at month-end t-1 (status neither
  paid_off nor charged_off), the share in each bucket, PAID or WO at t, by count and by
  t-1 outstanding principal. Rows sum to 1. A window of months pools the monthly
  transitions: balance shares are the balance-weighted mean of the monthly shares and count
  shares the count-weighted mean.
- A loan active at t-1 with no snapshot at t is left out of the matrix (numerator and
  denominator) and counted in ``missing_loans``, because its state at t is unknown.
- Flow rate C->M1(t) = M1 balance at t / C balance at t-1, and so on along the chain. The
  last bucket is open-ended, so the flow into it counts only the t balance of loans that
  were in the bucket before it at t-1; loans staying in M7+ are not new flow. The flow to
  WO is the t-1 balance of loans charged off at t (from any bucket) / last-bucket balance
  at t-1. The implied loss rate is the product of the chain.
- Cure rate of bucket i: share of bucket i at t-1 that is C at t.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

import queries
from analysis.buckets import DEFAULT_BUCKETS, Buckets, parse_buckets
from analysis.cli import Command
from analysis.filters import Filters, month_end, parse_month, resolve_as_of

logger = logging.getLogger(__name__)

MATRIX_COLUMNS = ["from_bucket", "to_bucket", "loans", "balance", "count_share", "balance_share"]
FLOW_COLUMNS = ["month", "from_bucket", "to_bucket", "flow_rate"]


def previous_month_end(month: dt.date) -> dt.date:
    """Return the month-end before the month of ``month``."""
    return month.replace(day=1) - dt.timedelta(days=1)


def _query_params(filters: Filters, buckets: Buckets, month_from, month_to) -> dict:
    return {
        **filters.params(),
        **buckets.params(),
        "month_from": month_from,
        "month_to": month_to,
    }


def snapshot_month_range(
    con: duckdb.DuckDBPyConnection, filters: Filters
) -> tuple[dt.date | None, dt.date | None]:
    """Return the first and last snapshot month-ends of the filtered loans up to the as-of month."""
    filters = resolve_as_of(con, filters)
    row = queries.run(con, "rollrate_month_range", filters.params()).iloc[0]
    first, last = row["first_month"], row["last_month"]
    if pd.isna(first):
        return None, None
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


def resolve_window(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    month: dt.date | None = None,
    month_from: dt.date | None = None,
    month_to: dt.date | None = None,
) -> tuple[dt.date, dt.date] | None:
    """Return the (first, last) later month t of a roll-rate window as month-ends.

    ``month`` names one month t (the matrix is t-1 -> t); ``month_from``/``month_to`` a
    window. With neither, the window is the as-of month alone. Months after the as-of month
    are cut off. Returns None when the database contains no snapshots for the filters.

    Raises
    ------
    ValueError
        If both a month and a window are given, or the window ends before it starts.
    """
    if month is not None and (month_from is not None or month_to is not None):
        raise ValueError("give either one month or a window (from/to), not both")
    filters = resolve_as_of(con, filters)
    if filters.as_of is None:
        return None
    as_of = month_end(filters.as_of)
    if month is not None:
        first = last = month_end(month)
    else:
        first = month_end(month_from) if month_from else None
        last = month_end(month_to) if month_to else as_of
        first = first or last
    last = min(last, as_of)
    if first > last:
        raise ValueError(
            f"the roll-rate window starts at {first:%Y-%m} after it ends at {last:%Y-%m} "
            f"(the as-of month is {as_of:%Y-%m}); choose an earlier start"
        )
    return first, last


def load_transitions(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    buckets: Buckets = DEFAULT_BUCKETS,
    month_from: dt.date | None = None,
    month_to: dt.date | None = None,
) -> pd.DataFrame:
    """Return the monthly transition counts of query ``rollrate_transitions`` with labels.

    Columns: month, from_code, to_code (NaN = no snapshot at t), from_bucket, to_bucket
    (None = no snapshot at t), loan_count, balance, next_balance (yuan, float).
    """
    filters = resolve_as_of(con, filters)
    frame = queries.run(
        con, "rollrate_transitions", _query_params(filters, buckets, month_from, month_to)
    )
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    frame["from_bucket"] = [buckets.label(code) for code in frame["from_code"]]
    frame["to_bucket"] = [None if pd.isna(code) else buckets.label(code) for code in frame["to_code"]]
    for column in ("balance", "next_balance"):
        frame[column] = frame[column].astype(float)
    return frame


def load_bucket_balances(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    buckets: Buckets,
    month_from: dt.date,
    month_to: dt.date,
) -> pd.DataFrame:
    """Return active loans and balance by month and bucket (query ``rollrate_bucket_balances``)."""
    filters = resolve_as_of(con, filters)
    frame = queries.run(
        con, "rollrate_bucket_balances", _query_params(filters, buckets, month_from, month_to)
    )
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    frame["balance"] = frame["balance"].astype(float)
    return frame


@dataclass(frozen=True)
class MigrationMatrix:
    """A migration matrix for one month t (t-1 -> t) or a pooled window of months.

    ``count_shares`` and ``balance_shares`` are wide tables with one row per active bucket
    at t-1 and one column per state at t. A bucket without loans at t-1 has an all-NaN row,
    which the page shows blank. ``table`` is the long form the report command writes.
    """

    buckets: Buckets
    month_from: dt.date | None
    month_to: dt.date | None
    table: pd.DataFrame
    loans: pd.DataFrame
    balances: pd.DataFrame
    count_shares: pd.DataFrame
    balance_shares: pd.DataFrame
    missing_loans: int
    missing_balance: float

    @property
    def is_empty(self) -> bool:
        """True when no loan was active at t-1 in the window."""
        return int(self.loans.to_numpy().sum()) == 0

    def cure_rates(self) -> pd.DataFrame:
        """Return the cure rate (share of bucket i at t-1 that is C at t) per delinquent bucket.

        Columns: bucket, loans, balance, count_cure_rate, balance_cure_rate (NaN when the
        bucket held no loans at t-1).
        """
        rows = []
        for label in self.buckets.delinquency_labels[1:]:
            rows.append(
                {
                    "bucket": label,
                    "loans": int(self.loans.loc[label].sum()),
                    "balance": float(self.balances.loc[label].sum()),
                    "count_cure_rate": self.count_shares.loc[label, "C"],
                    "balance_cure_rate": self.balance_shares.loc[label, "C"],
                }
            )
        return pd.DataFrame(rows)


def _wide(frame: pd.DataFrame, value: str, buckets: Buckets) -> pd.DataFrame:
    """Pivot transitions to a from x to table over every bucket, zeros where none moved."""
    wide = frame.pivot_table(
        index="from_bucket", columns="to_bucket", values=value, aggfunc="sum", fill_value=0
    )
    wide = wide.reindex(
        index=list(buckets.delinquency_labels), columns=list(buckets.labels), fill_value=0
    )
    wide.index.name = "from_bucket"
    wide.columns.name = "to_bucket"
    return wide


def _row_shares(wide: pd.DataFrame) -> pd.DataFrame:
    """Divide each row by its total; rows with a zero total become NaN."""
    totals = wide.sum(axis=1)
    shares = wide.div(totals.where(totals > 0), axis=0)
    return shares.astype(float)


def matrix_from_transitions(
    transitions: pd.DataFrame,
    buckets: Buckets,
    month_from: dt.date | None = None,
    month_to: dt.date | None = None,
) -> MigrationMatrix:
    """Pool monthly transitions (``load_transitions`` output) into one migration matrix."""
    known = transitions[transitions["to_bucket"].notna()]
    missing = transitions[transitions["to_bucket"].isna()]
    loans = _wide(known, "loan_count", buckets).astype("int64")
    balances = _wide(known, "balance", buckets).astype(float)
    count_shares = _row_shares(loans)
    balance_shares = _row_shares(balances)

    long = pd.DataFrame(
        {
            "from_bucket": np.repeat(loans.index.to_numpy(), len(loans.columns)),
            "to_bucket": np.tile(loans.columns.to_numpy(), len(loans.index)),
            "loans": loans.to_numpy().ravel(),
            "balance": balances.to_numpy().ravel().round(2),
            "count_share": count_shares.to_numpy().ravel(),
            "balance_share": balance_shares.to_numpy().ravel(),
        }
    )
    return MigrationMatrix(
        buckets=buckets,
        month_from=month_from,
        month_to=month_to,
        table=long[MATRIX_COLUMNS],
        loans=loans,
        balances=balances,
        count_shares=count_shares,
        balance_shares=balance_shares,
        missing_loans=int(missing["loan_count"].sum()),
        missing_balance=float(missing["balance"].sum()),
    )


def migration_matrix(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    buckets: Buckets = DEFAULT_BUCKETS,
    month: dt.date | None = None,
    month_from: dt.date | None = None,
    month_to: dt.date | None = None,
) -> MigrationMatrix:
    """Compute the migration matrix for month t (``month``) or a pooled window of months t.

    With neither a month nor a window the matrix is for the as-of month. An empty
    database gives an empty matrix (all rows NaN), not an error.
    """
    filters = resolve_as_of(con, filters)
    window = resolve_window(con, filters, month, month_from, month_to)
    if window is None:
        empty = pd.DataFrame(
            columns=["month", "from_code", "to_code", "from_bucket", "to_bucket",
                     "loan_count", "balance", "next_balance"]
        )
        return matrix_from_transitions(empty, buckets)
    transitions = load_transitions(con, filters, buckets, *window)
    matrix = matrix_from_transitions(transitions, buckets, *window)
    if matrix.missing_loans:
        logger.debug(
            "%d loans active at t-1 have no snapshot at t (%s to %s); left out of the matrix",
            matrix.missing_loans, window[0], window[1],
        )
    return matrix


@dataclass(frozen=True)
class FlowRates:
    """Flow rates by month along the chain C -> M1 -> ... -> Mn+ -> WO.

    ``table`` has one row per (month, link): month, from_bucket, to_bucket, flow_rate,
    numerator and denominator (yuan). ``implied_loss`` has month and implied_loss_rate,
    the product of that month's links (NaN when a link is undefined).
    """

    buckets: Buckets
    table: pd.DataFrame
    implied_loss: pd.DataFrame

    def pooled(self, month_from: dt.date | None = None, month_to: dt.date | None = None) -> pd.DataFrame:
        """Return each link's flow rate pooled over months (sum of numerators / sum of
        denominators) and, in a last row from C to WO, their product, the implied loss rate."""
        table = self.table
        if month_from is not None:
            table = table[table["month"] >= month_from]
        if month_to is not None:
            table = table[table["month"] <= month_to]
        links = self.chain()
        rows = []
        for source, target in links:
            part = table[(table["from_bucket"] == source) & (table["to_bucket"] == target)]
            denominator = part["denominator"].sum()
            rate = part["numerator"].sum() / denominator if denominator > 0 else np.nan
            rows.append({"from_bucket": source, "to_bucket": target, "flow_rate": rate})
        pooled = pd.DataFrame(rows, columns=["from_bucket", "to_bucket", "flow_rate"])
        implied = float(np.prod(pooled["flow_rate"].to_numpy())) if len(pooled) else np.nan
        implied_row = pd.DataFrame([{"from_bucket": "C", "to_bucket": "WO", "flow_rate": implied}])
        return pd.concat([pooled, implied_row], ignore_index=True)

    def chain(self) -> list[tuple[str, str]]:
        """Return the links of the chain as (from_bucket, to_bucket) labels."""
        labels = self.buckets.delinquency_labels
        return [*zip(labels[:-1], labels[1:]), (labels[-1], "WO")]


def load_flow_links(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    buckets: Buckets,
    month_from: dt.date,
    month_to: dt.date,
) -> pd.DataFrame:
    """Return the roll-in to the open bucket and the written-off balance by month t
    (query ``rollrate_flow_links``), amounts as floats."""
    filters = resolve_as_of(con, filters)
    frame = queries.run(
        con, "rollrate_flow_links", _query_params(filters, buckets, month_from, month_to)
    )
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    for column in ("open_roll_in_balance", "write_off_balance"):
        frame[column] = frame[column].astype(float)
    return frame


def flow_rates_from_tables(
    bucket_balances: pd.DataFrame, links: pd.DataFrame, months: list[dt.date], buckets: Buckets
) -> FlowRates:
    """Compute flow rates for each month t in ``months`` from bucket balances (needed for
    t and t-1) and the loan-level links of ``load_flow_links``."""
    balance_at = {
        (row.month, int(row.code)): float(row.balance) for row in bucket_balances.itertuples()
    }
    link_at = {row.month: row for row in links.itertuples()}
    open_code = buckets.open_code
    rows = []
    for month in months:
        previous = previous_month_end(month)
        link = link_at.get(month)
        for code in range(open_code + 1):
            source = buckets.label(code)
            denominator = balance_at.get((previous, code), 0.0)
            if code < open_code - 1:
                target = buckets.label(code + 1)
                numerator = balance_at.get((month, code + 1), 0.0)
            elif code == open_code - 1:
                target = buckets.label(open_code)
                numerator = float(link.open_roll_in_balance) if link is not None else 0.0
            else:
                target = "WO"
                numerator = float(link.write_off_balance) if link is not None else 0.0
            rate = numerator / denominator if denominator > 0 else np.nan
            rows.append(
                {
                    "month": month,
                    "from_bucket": source,
                    "to_bucket": target,
                    "flow_rate": rate,
                    "numerator": numerator,
                    "denominator": denominator,
                }
            )
    table = pd.DataFrame(rows, columns=[*FLOW_COLUMNS, "numerator", "denominator"])
    if table.empty:
        implied = pd.DataFrame(columns=["month", "implied_loss_rate"])
    else:
        implied = (
            table.groupby("month", sort=True)["flow_rate"]
            .apply(lambda rates: float(np.prod(rates.to_numpy())))
            .rename("implied_loss_rate")
            .reset_index()
        )
    return FlowRates(buckets=buckets, table=table, implied_loss=implied)


def flow_rates(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    buckets: Buckets = DEFAULT_BUCKETS,
) -> FlowRates:
    """Compute the flow rates of every month t that has a month-end t-1 in the data."""
    filters = resolve_as_of(con, filters)
    first, last = snapshot_month_range(con, filters)
    if first is None or first >= last:
        empty = pd.DataFrame(columns=["month", "code", "loan_count", "balance"])
        return flow_rates_from_tables(empty, pd.DataFrame(columns=["month"]), [], buckets)
    month_from = month_end(first + dt.timedelta(days=1))
    balances = load_bucket_balances(con, filters, buckets, first, last)
    links = load_flow_links(con, filters, buckets, month_from, last)
    months = [stamp.date() for stamp in pd.date_range(month_from, last, freq="ME")]
    return flow_rates_from_tables(balances, links, months, buckets)


# Report commands ------------------------------------------------------------------------

def bucket_bounds_type(text: str) -> Buckets:
    """Parse ``--buckets`` for argparse, so invalid bounds are a usage error (exit code 2)."""
    try:
        return parse_buckets(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_bucket_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--buckets``: the upper dpd bounds of M1, M2, ..."""
    parser.add_argument(
        "--buckets",
        type=bucket_bounds_type,
        default=DEFAULT_BUCKETS,
        help="upper dpd bounds of M1, M2, ... in days, comma-separated; the last bucket is "
        "open-ended (default: 30,60,90,120,150,180, so M1 = 1-30 and M7+ = over 180)",
    )


def _add_rollrate_arguments(parser: argparse.ArgumentParser) -> None:
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--month", help="later month t (YYYY-MM) of the t-1 -> t matrix (default: the as-of month)")
    choice.add_argument("--from", dest="month_from", help="first later month t of a window (YYYY-MM)")
    parser.add_argument("--to", dest="month_to", help="last later month t of a window (YYYY-MM; default: the as-of month)")
    add_bucket_argument(parser)


def _run_rollrate(con, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    matrix = migration_matrix(
        con,
        filters,
        args.buckets,
        month=parse_month(args.month) if args.month else None,
        month_from=parse_month(args.month_from) if args.month_from else None,
        month_to=parse_month(args.month_to) if args.month_to else None,
    )
    if matrix.is_empty:
        raise ValueError("no loans were active at t-1 for the chosen month and filters")
    if matrix.missing_loans:
        logger.warning(
            "%d loans active at t-1 have no snapshot at t and are left out of the matrix",
            matrix.missing_loans,
        )
    return matrix.table


def _add_flowrate_arguments(parser: argparse.ArgumentParser) -> None:
    add_bucket_argument(parser)


def _run_flowrate(con, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    result = flow_rates(con, filters, args.buckets)
    if result.table.empty:
        raise ValueError("flow rates need at least two snapshot months for the chosen filters")
    return result.table[FLOW_COLUMNS]


ROLLRATE_COMMAND = Command(
    name="rollrate",
    help="migration matrix between buckets (C, M1 ... M7+, PAID, WO) for month t-1 -> t "
    "or a pooled window, by count and by t-1 balance",
    run=_run_rollrate,
    add_arguments=_add_rollrate_arguments,
)

FLOWRATE_COMMAND = Command(
    name="flowrate",
    help="monthly flow rates along the chain C -> M1 -> ... -> M7+ -> WO",
    run=_run_flowrate,
    add_arguments=_add_flowrate_arguments,
)
