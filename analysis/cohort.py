"""Analyst cohort downloads (数据下载): select loans by any stored attribute and export them.

The selection runs the named queries in ``queries/cohort.sql``. Every filter value reaches
DuckDB as a bound parameter. Column choices are checked against fixed allow-lists, plus
the attribute names found in ``loan_attributes``, before any SQL runs. Downloads
contain only stored fields: personal data is pseudonymised or dropped at import, so no
option here can bring it back. Each download is recorded in ``download_audit``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

import queries
from analysis.buckets import DEFAULT_BUCKETS, Buckets
from analysis.cli import Command, UsageError
from analysis import export
from analysis.export import format_from_path
from analysis.filters import Filters, resolve_as_of
from queries import db

logger = logging.getLogger(__name__)

GRAINS = ("loan", "loan-month")
DOWNLOAD_FORMATS = ("csv", "xlsx", "parquet")
# The report command also writes JSON, like every other report command.
CLI_FORMATS = (*DOWNLOAD_FORMATS, "json")

# Prefix of an extra-attribute column (loan_attributes) in a download.
ATTRIBUTE_PREFIX = "attr:"

# Loan-level columns a download may contain, in display order. bucket_as_of is the label
# (C, M1, ..., PAID, WO) of the query's bucket_code_as_of.
LOAN_COLUMNS: tuple[str, ...] = (
    "loan_id",
    "borrower_id",
    "origination_date",
    "vintage",
    "principal",
    "term_months",
    "annual_rate",
    "repayment_method",
    "product",
    "channel",
    "branch",
    "province",
    "city",
    "county",
    "region_code",
    "grade",
    "score",
    "guarantee_type",
    "group_id",
    "is_first_loan",
    "borrower_age",
    "borrower_gender",
    "as_of_date",
    "mob",
    "status_as_of",
    "dpd_as_of",
    "bucket_as_of",
    "outstanding_principal_as_of",
    "max_dpd",
    "ever_charged_off",
    "months_observed",
)

# Columns of one month-end snapshot. At loan-month grain a download may combine these with
# any loan-level column; bucket is the label of the query's bucket_code.
MONTH_COLUMNS: tuple[str, ...] = (
    "snapshot_date",
    "mob",
    "dpd",
    "bucket",
    "outstanding_principal",
    "overdue_principal",
    "overdue_interest",
    "status",
    "principal_paid",
    "interest_paid",
    "charged_off_amount",
    "recovered_amount",
    "is_derived",
)

DEFAULT_LOAN_COLUMNS: tuple[str, ...] = (
    "loan_id",
    "origination_date",
    "principal",
    "product",
    "channel",
    "province",
    "city",
    "grade",
    "status_as_of",
    "dpd_as_of",
    "bucket_as_of",
    "outstanding_principal_as_of",
    "max_dpd",
)

DEFAULT_MONTH_COLUMNS: tuple[str, ...] = (
    "loan_id",
    "snapshot_date",
    "mob",
    "dpd",
    "bucket",
    "outstanding_principal",
    "status",
    "principal_paid",
)


@dataclass(frozen=True)
class CohortFilters:
    """Download filters: the shared dashboard filters plus the cohort-only ones.

    An empty tuple or None means "no filter" for that field. ``buckets`` contains state
    labels at the as-of month (C, M1, ..., PAID, WO). ``ever_dpd`` selects loans whose dpd
    exceeded it at any month-end up to the as-of month, or that were charged off.
    ``attributes`` contains (name, values) pairs from loan_attributes: values of one name
    are alternatives, and every name must match.
    """

    base: Filters = field(default_factory=Filters)
    cities: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    ever_dpd: int | None = None
    strategies: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def params(self, bucket_set: Buckets = DEFAULT_BUCKETS) -> dict:
        """Return the bound parameters of ``cohort_loans``.

        Raises
        ------
        ValueError
            If a bucket label is not one of the bucket set's states, or ever_dpd is negative.
        """
        unknown = [label for label in self.buckets if label not in bucket_set.labels]
        if unknown:
            raise ValueError(
                f"invalid bucket label(s) {unknown}; use one of {', '.join(bucket_set.labels)}"
            )
        if self.ever_dpd is not None and (isinstance(self.ever_dpd, bool) or self.ever_dpd < 0):
            raise ValueError(f"ever-dpd must be a whole number of days >= 0; got {self.ever_dpd!r}")
        names = [name for name, values in self.attributes for _ in values]
        values = [value for _, values in self.attributes for value in values]
        return {
            **self.base.params(),
            **bucket_set.params(),
            "cities": list(self.cities) or None,
            "bucket_codes": [bucket_set.labels.index(label) for label in self.buckets] or None,
            "ever_dpd": self.ever_dpd,
            "strategies": list(self.strategies) or None,
            "attribute_names": names or None,
            "attribute_values": values or None,
        }

    def describe(self) -> dict:
        """Return the filter values as JSON-friendly data (for the audit table)."""
        described = self.base.describe()
        described.update(
            {
                "cities": list(self.cities),
                "buckets": list(self.buckets),
                "ever_dpd": self.ever_dpd,
                "strategies": list(self.strategies),
                "attributes": {name: list(values) for name, values in self.attributes},
            }
        )
        return described


@dataclass(frozen=True)
class Selection:
    """The loans a cohort filter selects, with the counts the download page shows live."""

    loans: pd.DataFrame          # every LOAN_COLUMNS column, one row per loan
    as_of: dt.date | None        # as-of month-end used
    loan_count: int
    balance: float               # outstanding principal at the as-of month, yuan
    loan_month_count: int        # rows of a loan-month download
    filters: CohortFilters | None = None     # the filters, with the as-of month resolved


@dataclass(frozen=True)
class CohortSummary:
    """Counts of a cohort selection, computed in SQL without fetching its rows."""

    as_of: dt.date | None        # as-of month-end used
    loan_count: int
    balance: float               # outstanding principal at the as-of month, yuan
    loan_month_count: int        # rows of a loan-month download


def _resolved(con: duckdb.DuckDBPyConnection, filters: CohortFilters) -> CohortFilters:
    """Return ``filters`` with the as-of month set (the latest month when unset)."""
    base = resolve_as_of(con, filters.base)
    return CohortFilters(**{**filters.__dict__, "base": base})


def _selection_params(filters: CohortFilters, bucket_set: Buckets) -> dict:
    return {**filters.params(bucket_set), "bucket_labels": list(bucket_set.labels)}


def summarise(
    con: duckdb.DuckDBPyConnection,
    filters: CohortFilters,
    bucket_set: Buckets = DEFAULT_BUCKETS,
) -> CohortSummary:
    """Return the loan count, balance and loan-month rows that ``filters`` select.

    Runs ``cohort_selection`` inside an aggregate, so the page's live counts do not fetch
    every selected loan.
    """
    filters = _resolved(con, filters)
    selection_sql = queries.get_query("cohort_selection").sql
    row = queries.run_sql(
        con,
        "select count(*) as loan_count, "
        "coalesce(sum(outstanding_principal_as_of), 0) as balance, "
        f"coalesce(sum(months_observed), 0) as loan_month_count from ({selection_sql})",
        _selection_params(filters, bucket_set),
    ).iloc[0]
    return CohortSummary(
        as_of=filters.base.as_of,
        loan_count=int(row["loan_count"]),
        balance=float(row["balance"]),
        loan_month_count=int(row["loan_month_count"]),
    )


def attribute_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return the extra-attribute names stored in loan_attributes, sorted."""
    rows = con.execute("select distinct attribute from loan_attributes order by attribute").fetchall()
    return [row[0] for row in rows]


def allowed_columns(con: duckdb.DuckDBPyConnection, grain: str) -> list[str]:
    """Return every column a download of ``grain`` may contain, in display order."""
    check_grain(grain)
    attributes = [ATTRIBUTE_PREFIX + name for name in attribute_names(con)]
    if grain == "loan":
        return [*LOAN_COLUMNS, *attributes]
    month_first = ["loan_id", *MONTH_COLUMNS]
    loan_rest = [column for column in LOAN_COLUMNS if column not in month_first]
    return [*month_first, *loan_rest, *attributes]


def default_columns(grain: str) -> list[str]:
    """Return the columns preselected for ``grain``."""
    check_grain(grain)
    return list(DEFAULT_LOAN_COLUMNS if grain == "loan" else DEFAULT_MONTH_COLUMNS)


def check_grain(grain: str) -> None:
    """Raise ValueError unless ``grain`` is 'loan' or 'loan-month'."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {', '.join(GRAINS)}; got {grain!r}")


def check_columns(con: duckdb.DuckDBPyConnection, grain: str, columns: list[str]) -> list[str]:
    """Return ``columns`` after checking each against the allow-list of ``grain``.

    Raises
    ------
    ValueError
        If the list is empty, repeats a column or names a column that is not allowed.
    """
    allowed = allowed_columns(con, grain)
    if not columns:
        raise ValueError("choose at least one column")
    unknown = [column for column in columns if column not in allowed]
    if unknown:
        raise ValueError(
            f"unknown column(s) {unknown} for grain {grain!r}; allowed: {', '.join(allowed)}"
        )
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    if repeated:
        raise ValueError(f"column(s) {repeated} are listed more than once")
    return list(columns)


# --- the download query ---------------------------------------------------------------
# The download is one SQL statement assembled from the named queries of queries/cohort.sql:
# cohort_selection as a CTE, and cohort_loan_details, cohort_loan_months and
# cohort_month_sources only when a chosen column needs them. Column names reach the SQL
# text only after check_columns has matched them against the allow-list; values are
# bound parameters.

# Loan columns that loan_facts lacks (query cohort_loan_details).
DETAIL_COLUMNS = frozenset({
    "annual_rate", "repayment_method", "branch", "score", "guarantee_type", "group_id",
    "is_first_loan", "borrower_age", "borrower_gender",
})
# Month columns that month_facts lacks (query cohort_month_sources).
MONTH_SOURCE_COLUMNS = frozenset({"overdue_interest", "is_derived"})
# Amount columns (DECIMAL yuan), written as DOUBLE so that the file schema stays as it was
# when downloads went through pandas.
AMOUNT_COLUMNS = frozenset({
    "principal", "outstanding_principal_as_of", "outstanding_principal", "overdue_principal",
    "overdue_interest", "principal_paid", "interest_paid", "charged_off_amount",
    "recovered_amount",
})


def _quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column_expression(column: str, grain: str, attribute_params: dict[str, str]) -> str:
    """Return the select-list entry of one checked column."""
    if column.startswith(ATTRIBUTE_PREFIX):
        parameter = attribute_params[column[len(ATTRIBUTE_PREFIX):]]
        expression = f"a.{parameter}"
    elif column in MONTH_SOURCE_COLUMNS:
        expression = f"ms.{column}"
    elif grain == "loan-month" and column in MONTH_COLUMNS:
        expression = f"m.{column}"
    elif column in DETAIL_COLUMNS:
        expression = f"d.{column}"
    else:
        expression = f"s.{column}"
    if column in AMOUNT_COLUMNS:
        expression = f"{expression}::double"
    return f"{expression} as {_quote_identifier(column)}"


def download_sql(
    filters: CohortFilters,
    grain: str,
    columns: list[str],
    bucket_set: Buckets = DEFAULT_BUCKETS,
) -> tuple[str, dict]:
    """Return the SQL and bound parameters of a download with ``columns`` in order.

    ``filters`` must have its as-of month resolved and ``columns`` must have passed
    :func:`check_columns`. Rows are ordered by loan_id (and snapshot_date).
    """
    check_grain(grain)
    attributes = [column[len(ATTRIBUTE_PREFIX):] for column in columns if column.startswith(ATTRIBUTE_PREFIX)]
    attribute_params = {name: f"attribute_{number}" for number, name in enumerate(attributes, start=1)}
    values = {
        **_selection_params(filters, bucket_set),
        **{parameter: name for name, parameter in attribute_params.items()},
        "attribute_columns": attributes,
    }
    used_queries = [queries.get_query("cohort_selection")]
    ctes = [f"cohort_selection as (\n{used_queries[0].sql}\n)"]
    joins = []

    def add_query(cte_name: str, query_name: str, join: str) -> None:
        query = queries.get_query(query_name)
        used_queries.append(query)
        ctes.append(f"{cte_name} as (\n{query.sql}\n)")
        joins.append(join)

    if grain == "loan-month":
        add_query("month_rows", "cohort_loan_months", "inner join month_rows as m on m.loan_key = s.loan_key")
        if MONTH_SOURCE_COLUMNS.intersection(columns):
            add_query(
                "month_sources",
                "cohort_month_sources",
                "left join month_sources as ms on ms.loan_id = s.loan_id and ms.snapshot_date = m.snapshot_date",
            )
    if DETAIL_COLUMNS.intersection(columns):
        add_query("loan_details", "cohort_loan_details", "left join loan_details as d on d.loan_key = s.loan_key")
    parameter_names = set().union(*(query.parameters for query in used_queries))
    if attributes:
        parameter_names.update(["attribute_columns", *attribute_params.values()])
        pivot = ",\n".join(
            f"max(value) filter (where attribute = ${parameter}) as {parameter}"
            for parameter in attribute_params.values()
        )
        ctes.append(
            "attribute_values as (\nselect loan_id,\n" + pivot + "\nfrom loan_attributes\n"
            "where list_contains($attribute_columns::varchar[], attribute)\n"
            "  and loan_id in (select loan_id from cohort_selection)\ngroup by loan_id\n)"
        )
        joins.append("left join attribute_values as a on a.loan_id = s.loan_id")

    select_list = ",\n    ".join(_column_expression(column, grain, attribute_params) for column in columns)
    order = "s.loan_id, m.snapshot_date" if grain == "loan-month" else "s.loan_id"
    sql = (
        "with\n" + ",\n".join(ctes)
        + f"\nselect\n    {select_list}\nfrom cohort_selection as s\n"
        + "\n".join(joins)
        + f"\norder by {order}"
    )
    return sql, {name: values[name] for name in sorted(parameter_names)}


def select_loans(
    con: duckdb.DuckDBPyConnection,
    filters: CohortFilters,
    bucket_set: Buckets = DEFAULT_BUCKETS,
) -> Selection:
    """Fetch every loan-level column of the loans ``filters`` select, with their counts.

    The as-of month is the shared filter's, or the latest month in the data when unset.
    For a file, :func:`write_download` streams the rows instead of fetching them.
    """
    filters = _resolved(con, filters)
    sql, params = download_sql(filters, "loan", list(LOAN_COLUMNS), bucket_set)
    loans = queries.run_sql(con, sql, params)
    balance = float(loans["outstanding_principal_as_of"].fillna(0).sum()) if len(loans) else 0.0
    return Selection(
        loans=loans,
        as_of=filters.base.as_of,
        loan_count=len(loans),
        balance=balance,
        loan_month_count=int(loans["months_observed"].sum()) if len(loans) else 0,
        filters=filters,
    )


def cohort_table(
    con: duckdb.DuckDBPyConnection,
    selection: Selection,
    grain: str,
    columns: list[str],
    bucket_set: Buckets = DEFAULT_BUCKETS,
) -> pd.DataFrame:
    """Return the download table of ``selection`` at ``grain`` with ``columns`` in order.

    Raises
    ------
    ValueError
        If the grain or a column is not allowed (see :func:`check_columns`), or the
        selection was not built by :func:`select_loans`.
    """
    columns = check_columns(con, grain, columns)
    if selection.filters is None:
        raise ValueError("the selection carries no filters; build it with select_loans")
    sql, params = download_sql(selection.filters, grain, columns, bucket_set)
    return queries.run_sql(con, sql, params)


def write_download(
    con: duckdb.DuckDBPyConnection,
    filters: CohortFilters,
    grain: str,
    columns: list[str],
    path: str | Path,
    file_format: str | None = None,
    bucket_set: Buckets = DEFAULT_BUCKETS,
) -> export.WrittenExport:
    """Write the download of ``filters`` at ``grain`` to ``path``, streamed from DuckDB.

    The rows never become a DataFrame, so a download of a million loans needs little
    memory. The result carries the row count and the file's SHA-256 for download_audit.

    Raises
    ------
    ValueError
        If the grain or a column is not allowed, or an xlsx file would exceed one sheet.
    """
    columns = check_columns(con, grain, columns)
    sql, params = download_sql(_resolved(con, filters), grain, columns, bucket_set)
    return export.export_query(con, sql, params, path, file_format)


def filter_options(con: duckdb.DuckDBPyConnection, max_values: int = 500) -> dict[str, list]:
    """Return the values offered by the download filters, keyed by field.

    Keys: product, channel, province, grade, city, strategy and 'attribute:<name>'. An
    attribute with more than ``max_values`` distinct values maps to an empty list.
    """
    rows = queries.run(con, "cohort_filter_options", {"max_values": max_values})
    options: dict[str, list] = {}
    for field_name, group in rows.groupby("field", sort=True):
        options[field_name] = group["value"].dropna().tolist()
    return options


def file_sha256(data: bytes) -> str:
    """Return the SHA-256 hex digest of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def record_download(
    con: duckdb.DuckDBPyConnection,
    *,
    user_name: str,
    filters: CohortFilters,
    grain: str,
    columns: list[str],
    file_format: str,
    row_count: int,
    sha256: str,
) -> None:
    """Append one row to download_audit; ``con`` must be a read-write connection."""
    queries.execute(
        con,
        "download_audit_insert",
        {
            "downloaded_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
            "user_name": user_name,
            "filters": json.dumps(filters.describe(), ensure_ascii=False, sort_keys=True),
            "grain": grain,
            "columns": ",".join(columns),
            "file_format": file_format,
            "row_count": row_count,
            "file_sha256": sha256,
        },
    )
    logger.info(
        "recorded download: user=%s grain=%s format=%s rows=%d sha256=%s",
        user_name, grain, file_format, row_count, sha256,
    )


def list_downloads(con: duckdb.DuckDBPyConnection, limit: int = 500) -> pd.DataFrame:
    """Return recorded downloads, newest first."""
    return queries.run(con, "download_audit_list", {"limit": limit})


def os_user_name() -> str:
    """Return the operating-system user name, or 'unknown' when it cannot be found."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- command line: python -m analysis cohort -------------------------------------------


def _split(values: list[str] | None) -> tuple[str, ...]:
    result: list[str] = []
    for value in values or []:
        result.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(result)


def parse_attributes(values: list[str] | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parse repeated NAME=VALUE options; repeating a name adds alternative values.

    Raises
    ------
    ValueError
        If an option has no '=' or an empty name.
    """
    grouped: dict[str, list[str]] = {}
    for item in values or []:
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"--attribute must look like NAME=VALUE; got {item!r}")
        grouped.setdefault(name.strip(), []).append(value)
    return tuple((name, tuple(found)) for name, found in grouped.items())


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--city", action="append", help="city filter, repeatable or comma-separated")
    parser.add_argument(
        "--bucket",
        action="append",
        help="state at the as-of month: C, M1 ... M7+, PAID, WO; repeatable or comma-separated",
    )
    parser.add_argument(
        "--ever-dpd",
        type=int,
        help="keep loans whose dpd exceeded this many days at any month-end up to the as-of "
        "month, or that were charged off",
    )
    parser.add_argument(
        "--strategy", action="append", help="collection strategy (催收策略) of at least one action"
    )
    parser.add_argument(
        "--attribute",
        action="append",
        metavar="NAME=VALUE",
        help="extra attribute filter; repeat a name for alternative values",
    )
    parser.add_argument("--grain", choices=GRAINS, default="loan", help="one row per loan or per loan and month-end")
    parser.add_argument("--columns", help="comma-separated output columns (default: a standard set)")


def _cohort_filters(args: argparse.Namespace, filters: Filters) -> CohortFilters:
    return CohortFilters(
        base=filters,
        cities=_split(args.city),
        buckets=_split(args.bucket),
        ever_dpd=args.ever_dpd,
        strategies=_split(args.strategy),
        attributes=parse_attributes(args.attribute),
    )


def _run(
    con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters
) -> export.WrittenExport:
    """Stream the cohort to ``--out``; the audit row is written after the connection closes."""
    if not args.out:
        raise UsageError("cohort downloads are audited with the file's hash; pass --out FILE")
    file_format = format_from_path(args.out)
    if file_format not in CLI_FORMATS:
        raise UsageError(f"cohort downloads are CSV, .xlsx, Parquet or JSON; got {args.out!r}")
    try:
        cohort_filters = _cohort_filters(args, filters)
        columns = list(_split([args.columns])) if args.columns else default_columns(args.grain)
        check_columns(con, args.grain, columns)
        cohort_filters.params()  # raises ValueError on an unknown bucket label
    except UsageError:
        raise
    except ValueError as error:
        raise UsageError(str(error)) from None
    return write_download(con, cohort_filters, args.grain, columns, args.out, file_format)


def _record_cli_download(args: argparse.Namespace, filters: Filters, written: export.WrittenExport) -> None:
    """Add the download_audit row of the written file through a short write connection.

    Called by the report framework after ``--out`` is written and its read-only
    connection is closed, because the audit row needs a write connection.
    """
    out = args.out
    if not Path(out).exists():
        logger.error("download %s was not written; no audit row recorded", out)
        return
    try:
        con = db.connect(args.db)
    except duckdb.Error as error:
        logger.error("cannot record the download of %s in download_audit: %s", out, error)
        return
    try:
        record_download(
            con,
            user_name=os_user_name(),
            filters=_cohort_filters(args, filters),
            grain=args.grain,
            columns=list(written.columns),
            file_format=written.file_format,
            row_count=written.row_count,
            sha256=written.sha256,
        )
    finally:
        con.close()


COHORT_COMMAND = Command(
    name="cohort",
    help="Download the loans (or loan-months) matching the filters; recorded in download_audit.",
    run=_run,
    add_arguments=_add_arguments,
    after_write=_record_cli_download,
)
