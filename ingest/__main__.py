"""Command line: ``python -m ingest load|status|demo|rebuild-facts``.

Exit codes of ``load``: 0 when every file loaded (in quarantine mode some rows may be in
the rejects table); 1 when the load was rejected (strict mode, any error), when any file
was rejected in full (quarantine mode: unreadable, a file-level error such as a missing
column, or no valid row), or when the load failed and was rolled back; 2 for a usage error
(bad options, unknown table, an input file that does not exist, no loans file for an empty
database). ``status`` exits 1 when the database file
does not exist.

Printed summaries follow ``--lang`` (default ``$LOANLENS_LANG``, else zh); log lines on
stderr are English.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ingest.columns import TABLES

logger = logging.getLogger("ingest")

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
LANGS = ("zh", "en")

OPTIONS = {"loans": "--loans", "loan_months": "--months", "installments": "--installments",
           "collection_actions": "--actions"}


def _default_lang() -> str:
    lang = os.environ.get("LOANLENS_LANG", "zh").strip().lower()
    return lang if lang in LANGS else "zh"


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Import loan tapes into LoanLens.")
    commands = parser.add_subparsers(dest="command", required=True)

    load = commands.add_parser("load", help="validate and import loan-tape files")
    load.add_argument("--db", help="database file (default: $LOANLENS_DB or data/loanlens.duckdb)")
    load.add_argument("--mode", choices=("strict", "quarantine"), default="strict",
                      help="strict: any error rejects everything (default); quarantine: good rows load")
    load.add_argument("--mapping", help="column mapping TOML file")
    load.add_argument("--encoding", metavar="ENC",
                      help="text encoding of the CSV files, e.g. big5 (default: detected); for one file only "
                           "write loans=big5 (names: loans, months, installments, actions; comma-separated)")
    load.add_argument("--report", help="write the full report as JSON to this file; the rejects CSV goes beside it")
    load.add_argument("--as-of", dest="as_of", help="data as-of date YYYY-MM-DD (default: today)")
    load.add_argument("--lang", choices=LANGS, default=_default_lang(),
                      help="language of the printed summary (default: $LOANLENS_LANG, else zh); logs are English")
    load.add_argument("-v", "--verbose", action="store_true", help="log every import step to stderr")
    for table, option in OPTIONS.items():
        load.add_argument(option, dest=table, metavar="FILE",
                          help=f"{table} file (.csv/.tsv/.txt, .xlsx or .parquet)")

    status = commands.add_parser("status", help="show tables, months covered and the last loads")
    status.add_argument("--db", help="database file")
    status.add_argument("--lang", choices=LANGS, default=_default_lang(),
                        help="language of the printed status (default: $LOANLENS_LANG, else zh)")

    rebuild = commands.add_parser("rebuild-facts", help="rebuild the fact tables the reports read")
    rebuild.add_argument("--db", help="database file")
    commands.add_parser("demo", help="build the demo portfolio (see python -m ingest demo --help)", add_help=False)
    return parser


def _progress_bar():
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", disable=None, leave=False, file=sys.stderr)

    def update(fraction: float, message: str) -> None:
        bar.n = int(round(fraction * 100))
        bar.set_description(message[:40])
        bar.refresh()

    return bar, update


def _run_load(args, parser) -> int:
    from ingest.load import UsageError, load_files
    from ingest.mapping import MappingError, load_mapping

    import messages

    files = {table: Path(getattr(args, table)) for table in TABLES if getattr(args, table)}
    if not files:
        parser.error("give --loans FILE, or --months/--installments/--actions FILE for loans already "
                     "in the database")
    for path in files.values():
        if not path.is_file():
            parser.error(messages.t("ingest.cli.file_not_found", args.lang, path=str(path.resolve())))
    try:
        mapping = load_mapping(args.mapping) if args.mapping else None
    except (OSError, MappingError) as error:
        parser.error(f"cannot use mapping file {args.mapping}: {error}")
    encoding = _encoding_option(args.encoding, parser)
    rejects_dir = Path(args.report).resolve().parent if args.report else None
    bar, update = _progress_bar()
    try:
        report = load_files(args.db, files, mode=args.mode, mapping=mapping, as_of=args.as_of,
                            progress=update, rejects_dir=rejects_dir, encoding=encoding)
    except UsageError as error:
        bar.close()
        parser.error(str(error))
    except Exception as error:  # noqa: BLE001 - reported as exit code 1
        bar.close()
        logger.error("load failed and the database was not changed: %s: %s", type(error).__name__, error)
        return EXIT_REJECTED
    finally:
        bar.close()
    if args.report:
        report.write_json(args.report)
    print(report.summary(args.lang))
    return EXIT_OK if report.ok and not report.files_rejected else EXIT_REJECTED


def _encoding_option(value: str | None, parser) -> str | dict[str, str] | None:
    """Return one encoding for every file, or table -> encoding for 'loans=big5,months=utf-8'."""
    if not value or "=" not in value:
        return value
    tables = {option.lstrip("-"): table for table, option in OPTIONS.items()}
    out = {}
    for part in value.split(","):
        name, _, encoding = part.partition("=")
        if name.strip() not in tables or not encoding.strip():
            parser.error(f"--encoding {value!r}: write ENC, or NAME=ENC pairs with NAME one of "
                         f"{', '.join(tables)}")
        out[tables[name.strip()]] = encoding.strip()
    return out


def _run_status(args) -> int:
    from ingest.status import status_text

    try:
        print(status_text(args.db, args.lang))
    except FileNotFoundError as error:
        print(str(error), file=sys.stderr)
        return EXIT_REJECTED
    return EXIT_OK


def _run_rebuild_facts(args) -> int:
    from ingest import facts
    from queries import db

    path = db.resolve_db_path(args.db)
    if not path.exists():
        print(f"database file {path} does not exist", file=sys.stderr)
        return EXIT_REJECTED
    con = db.connect(path)
    try:
        con.execute("begin transaction")
        facts.rebuild(con)
        con.execute("commit")
    finally:
        con.close()
    print(f"fact tables of {path} rebuilt")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "demo":
        from ingest.demo import main as demo_main

        return demo_main(argv[1:]) or 0
    parser = _build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO if getattr(args, "verbose", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "load":
        return _run_load(args, parser)
    if args.command == "rebuild-facts":
        return _run_rebuild_facts(args)
    return _run_status(args)


if __name__ == "__main__":
    sys.exit(main())
