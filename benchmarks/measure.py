"""Run one benchmark step in this process and print its timings and peak memory as JSON.

Each step runs in its own Python process (started by ``benchmarks/run.py``), so the peak
resident memory reported by ``getrusage`` belongs to that step alone, DuckDB included.

Usage: python -m benchmarks.measure STEP_KIND NAME --db PATH [--runs 5] [...]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size in bytes.

    Reads VmHWM from /proc/self/status: getrusage's ru_maxrss also counts the parent
    process's peak from before the fork, so a large benchmark runner would inflate it.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def time_runs(function, runs: int, warmup: int = 1) -> dict:
    """Call ``function`` warmup + runs times; return the run times and the last result."""
    result = None
    for _ in range(warmup):
        result = function()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "median_s": statistics.median(seconds), "result": result}


def measure_report(
    db_path: str, command_name: str, extra_args: list[str], runs: int, save: str | None
) -> dict:
    """Time one ``python -m analysis`` report table, called in-process on one connection."""
    from analysis import cli
    from queries import db

    parser = cli.build_parser()
    args = parser.parse_args([command_name, "--db", db_path, *extra_args])
    command = cli.load_command(command_name)
    filters = cli.filters_from_args(args)
    con = db.connect(db_path, read_only=True)
    timing = time_runs(lambda: command.run(con, args, filters), runs)
    table = timing.pop("result")
    con.close()
    timing["rows"] = len(table)
    if save:
        _save_report_table(table, save)
    return timing


def _save_report_table(table, save: str) -> None:
    """Write the report table to Parquet; a streamed export (cohort) is copied as written."""
    from analysis.export import WrittenExport

    if not isinstance(table, WrittenExport):
        table.to_parquet(save, index=False)
    elif table.file_format == "parquet":
        shutil.copyfile(table.path, save)
    else:
        raise ValueError(f"--save needs a Parquet export; the command wrote {table.file_format} to {table.path}")


def measure_floor(db_path: str, sql: str, runs: int) -> dict:
    """Time a bare aggregate over the columns a report reads: the scan floor."""
    from queries import db

    con = db.connect(db_path, read_only=True)
    timing = time_runs(lambda: con.execute(sql).fetchall(), runs)
    timing.pop("result")
    con.close()
    return timing


def measure_pandas(parquet_dir: str, name: str, as_of: str, runs: int) -> dict:
    """Time the plain pandas version of one report, loading the Parquet files each run."""
    from benchmarks import pandas_reference

    function = getattr(pandas_reference, name)
    timing = time_runs(lambda: function(Path(parquet_dir), as_of), runs)
    table = timing.pop("result")
    out = Path(parquet_dir) / f"pandas_{name}.parquet"
    table.to_parquet(out, index=False)
    timing["rows"] = len(table)
    timing["output"] = str(out)
    return timing


def measure_import(db_path: str, loans: str, months: str, runs: int) -> dict:
    """Time a strict import of a loans file and a month-end file into a new database."""
    from ingest.api import load_files

    def load_once():
        for suffix in ("", ".wal"):
            Path(db_path + suffix).unlink(missing_ok=True)
        report = load_files(db_path, {"loans": Path(loans), "loan_months": Path(months)}, mode="strict")
        if not report.ok:
            raise RuntimeError(f"benchmark import failed: {report.counts_by_rule}")
        return report

    timing = time_runs(load_once, runs, warmup=0)
    timing.pop("result")
    return timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.measure")
    parser.add_argument("kind", choices=["report", "floor", "pandas", "import"])
    parser.add_argument("name")
    parser.add_argument("--db")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sql")
    parser.add_argument("--parquet-dir")
    parser.add_argument("--as-of")
    parser.add_argument("--loans")
    parser.add_argument("--months")
    parser.add_argument("--args", default="", help="extra report arguments, space-separated")
    parser.add_argument("--save", help="write the report table to this Parquet file")
    options = parser.parse_args(argv)

    if options.kind == "report":
        result = measure_report(
            options.db, options.name, options.args.split(), options.runs, options.save
        )
    elif options.kind == "floor":
        result = measure_floor(options.db, options.sql, options.runs)
    elif options.kind == "pandas":
        result = measure_pandas(options.parquet_dir, options.name, options.as_of, options.runs)
    else:
        result = measure_import(options.db, options.loans, options.months, options.runs)
    result["peak_rss_bytes"] = peak_rss_bytes()
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
