"""``python -m analysis``: report tables for scripted monthly work.

Each subcommand is a :class:`Command` defined in a topic module (``analysis/kpis.py`` and
so on) and listed in :data:`COMMANDS`. Commands share the options ``--db``, ``--out``
and the dashboard filters, and call the same functions as the pages.

Exit codes: 0 success, 1 no data or a failed computation, 2 usage error (an invalid
option, or an option value the command cannot use, raised as :class:`UsageError`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from dataclasses import dataclass
from typing import Callable

import duckdb
import pandas as pd

from analysis.export import WrittenExport, format_from_path, write_table
from analysis.filters import Filters, parse_month
from ingest import facts
from queries import db

logger = logging.getLogger(__name__)


class UsageError(ValueError):
    """An option value a command cannot use (unknown column, unsupported format); exit code 2."""


@dataclass(frozen=True)
class Command:
    """One report subcommand.

    ``run(con, args, filters)`` returns the report table, or the file it wrote itself
    (``WrittenExport``: the cohort export streams to ``--out``); ``add_arguments(parser)`` adds
    the options specific to the command. ``after_write(args, filters, table)``, if set, is
    called once the table has been written to ``--out`` and the read-only connection is
    closed (the cohort export records its audit row there).
    """

    name: str
    help: str
    run: Callable[[duckdb.DuckDBPyConnection, argparse.Namespace, Filters], pd.DataFrame | WrittenExport]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    after_write: Callable[[argparse.Namespace, Filters, pd.DataFrame | WrittenExport], None] | None = None


# Subcommand name -> "module:attribute" of its Command, imported only when used.
COMMANDS: dict[str, str] = {
    "kpis": "analysis.kpis:KPIS_COMMAND",
    "vintage": "analysis.vintage:VINTAGE_COMMAND",
    "rollrate": "analysis.rollrate:ROLLRATE_COMMAND",
    "flowrate": "analysis.rollrate:FLOWRATE_COMMAND",
    "survival": "analysis.survival:SURVIVAL_COMMAND",
    "cox": "analysis.survival:COX_COMMAND",
    "regions": "analysis.regions:REGIONS_COMMAND",
    "collections": "analysis.collections:COLLECTIONS_COMMAND",
    "compliance": "analysis.compliance:COMPLIANCE_COMMAND",
    "ratecap": "analysis.compliance:RATECAP_COMMAND",
    "cohort": "analysis.cohort:COHORT_COMMAND",
}


def load_command(name: str) -> Command | None:
    """Import the Command for ``name``; None when its module is not part of this build."""
    module_name, attribute = COMMANDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name == module_name:
            return None
        raise
    return getattr(module, attribute, None)


def _split_values(values: list[str] | None) -> tuple[str, ...]:
    """Accept repeated options and comma-separated lists: --product a --product b,c."""
    result: list[str] = []
    for value in values or []:
        result.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(result)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --db, --out, --as-of and the shared filter options."""
    parser.add_argument("--db", help="database file (default: $LOANLENS_DB or data/loanlens.duckdb)")
    parser.add_argument(
        "--out",
        help="output file; the suffix picks the format (.csv with BOM, .xlsx, .json, .parquet); "
        "default: CSV on standard output",
    )
    parser.add_argument("--as-of", help="as-of month YYYY-MM (default: latest month in the data)")
    parser.add_argument("--product", action="append", help="product filter, repeatable or comma-separated")
    parser.add_argument("--channel", action="append", help="channel filter, repeatable or comma-separated")
    parser.add_argument("--province", action="append", help="province filter (full name, e.g. 广东省)")
    parser.add_argument("--grade", action="append", help="grade filter, repeatable or comma-separated")
    parser.add_argument("--vintage-from", help="first origination month YYYY-MM")
    parser.add_argument("--vintage-to", help="last origination month YYYY-MM")


def filters_from_args(args: argparse.Namespace) -> Filters:
    """Build Filters from the parsed shared options (raises ValueError on a bad month)."""
    vintage_from = parse_month(args.vintage_from).replace(day=1) if args.vintage_from else None
    vintage_to = parse_month(args.vintage_to) if args.vintage_to else None
    if vintage_from and vintage_to and vintage_from > vintage_to:
        raise ValueError(
            f"--vintage-from {args.vintage_from} is after --vintage-to {args.vintage_to}; swap them"
        )
    return Filters(
        as_of=parse_month(args.as_of) if args.as_of else None,
        products=_split_values(args.product),
        channels=_split_values(args.channel),
        provinces=_normalise_provinces(_split_values(args.province)),
        grades=_split_values(args.grade),
        vintage_from=vintage_from,
        vintage_to=vintage_to,
    )


def _normalise_provinces(values: tuple[str, ...]) -> tuple[str, ...]:
    """Map short names and codes (广东, 440000) to the stored full names (广东省).

    A value that names no Chinese province (a US state in an imported sample, say) is kept
    as written, because the import stores such values unchanged.
    """
    from ingest.regions import normalise_province

    return tuple(normalise_province(value) or value for value in values)


def _warn_on_empty_selection(con: duckdb.DuckDBPyConnection, filters: Filters) -> None:
    """Log a warning when the filters match no loans or the as-of month is past the data."""
    from queries import run_sql
    from analysis.filters import FILTERED_LOANS_SQL, latest_month

    matched = run_sql(con, f"select count(*) as loan_count from {FILTERED_LOANS_SQL}", filters.params())
    if int(matched["loan_count"].iloc[0]) == 0:
        logger.warning("no loans match the filters %s; the report is empty or all zero", filters.describe())
    latest = latest_month(con)
    if filters.as_of and latest and filters.as_of > latest:
        logger.warning(
            "--as-of %s is after the latest month in the data (%s); the report ends at %s",
            filters.as_of.strftime("%Y-%m"), latest.strftime("%Y-%m"), latest.strftime("%Y-%m"),
        )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one subparser per available command."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis",
        description="LoanLens report tables, the same numbers the dashboard shows.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        command = load_command(name)
        if command is None:
            continue
        # argparse formats help text with %-style placeholders, so a literal "95%" must be doubled.
        help_text = command.help.replace("%", "%%")
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        add_common_arguments(subparser)
        if command.add_arguments:
            command.add_arguments(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one report command; return the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    command = load_command(args.command)
    try:
        filters = filters_from_args(args)
        if args.out:
            format_from_path(args.out)
    except ValueError as error:
        parser.error(str(error))  # exits with code 2
    try:
        facts.ensure_current(args.db)
        con = db.connect(args.db, read_only=True)
    except (FileNotFoundError, duckdb.IOException) as error:
        print(f"error: cannot open the database: {error}", file=sys.stderr)
        return 1
    try:
        _warn_on_empty_selection(con, filters)
        table = command.run(con, args, filters)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        con.close()
    if args.out:
        write_table(table, args.out)
        logger.info("wrote %d rows to %s", len(table), args.out)
    else:
        table.to_csv(sys.stdout, index=False)
    if command.after_write:
        command.after_write(args, filters, table)
    return 0
