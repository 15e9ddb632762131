"""Helpers shared by the example converters: command-line options, writing and loading.

Each converter turns one public data set into LoanLens tape files (CSV, UTF-8, headers
named as the loan-tape contract names its columns) and, with ``--load``, imports them
with ``python -m ingest load`` exactly as a user would.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
REALDATA = REPO_ROOT.parent / "shared" / "realdata"

# Order in which `python -m ingest load` receives the tables: loans first, so that the
# other tables can check their loan ids against it.
TABLE_ORDER = ("loans", "loan_months", "installments", "collection_actions")

# Option of `python -m ingest load` that takes each table's file.
LOAD_OPTIONS = {
    "loans": "--loans",
    "loan_months": "--months",
    "installments": "--installments",
    "collection_actions": "--actions",
}


def build_parser(description: str, default_source: Path) -> argparse.ArgumentParser:
    """Return the parser for the options every converter shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--source",
        type=Path,
        default=default_source,
        help=f"source data folder or file (default: {default_source})",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the tape CSV files")
    parser.add_argument(
        "--db", help="database file for --load (default: $LOANLENS_DB or data/loanlens.duckdb)"
    )
    parser.add_argument(
        "--load", action="store_true", help="import the written files with `python -m ingest load`"
    )
    parser.add_argument(
        "--mode",
        choices=("strict", "quarantine"),
        default="strict",
        help="import mode for --load (default: strict)",
    )
    return parser


def write_tables(tables: dict[str, pd.DataFrame], out: Path) -> dict[str, Path]:
    """Write each table to ``out/<table>.csv`` (UTF-8, no index) and return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in TABLE_ORDER:
        if name not in tables:
            continue
        path = out / f"{name}.csv"
        tables[name].to_csv(path, index=False, encoding="utf-8")
        logger.info("wrote %s: %d rows", path, len(tables[name]))
        paths[name] = path
    return paths


def load_command(paths: dict[str, Path], db: str | None, mode: str) -> list[str]:
    """Return the `python -m ingest load` command line that imports ``paths``."""
    command = [sys.executable, "-m", "ingest", "load"]
    if db:
        command += ["--db", str(Path(db).resolve())]
    command += ["--mode", mode]
    for name in TABLE_ORDER:
        if name in paths:
            command += [LOAD_OPTIONS[name], str(paths[name].resolve())]
    return command


def run_load(paths: dict[str, Path], db: str | None, mode: str) -> int:
    """Run `python -m ingest load` on the tape files and return its exit code."""
    command = load_command(paths, db, mode)
    logger.info("running %s", " ".join(command))
    return subprocess.run(command, cwd=REPO_ROOT, check=False).returncode


def main(description: str, default_source: Path, convert, *, outside_repo: bool = False) -> int:
    """Parse options, convert the source with ``convert(source) -> tables``, write, load.

    With ``outside_repo``, an --out folder inside the repository is rejected, for data
    whose licence forbids redistribution.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser(description, default_source).parse_args()
    if not args.source.exists():
        print(f"error: source {args.source} not found; pass --source", file=sys.stderr)
        return 1
    if outside_repo and args.out.resolve().is_relative_to(REPO_ROOT):
        print(
            f"error: --out {args.out} is inside the repository {REPO_ROOT}; this data may not "
            "be redistributed, so write it elsewhere, e.g. --out /tmp/hc",
            file=sys.stderr,
        )
        return 2
    tables = convert(args.source)
    paths = write_tables(tables, args.out)
    if not args.load:
        return 0
    return run_load(paths, args.db, args.mode)
