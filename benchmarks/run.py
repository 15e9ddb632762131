"""LoanLens benchmark at portfolio scale: ``python -m benchmarks.run``.

Generates the demo portfolio (1,000,000 loans by default) and exports it to CSV and
Parquet. Then each step runs in its own process: import from CSV and from Parquet, every
report table, and the DuckDB scan floor of the main reports. A plain pandas version of
vintage, rollrate, regions and kpis is timed and its results compared with LoanLens's,
and the first load of each dashboard page is timed in headless Chromium. Results are appended to
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = REPO_ROOT / "benchmarks" / "RESULTS.md"
logger = logging.getLogger("benchmarks.run")

GIB = 1024**3

# Report commands measured, with the extra arguments each is called with.
REPORTS: dict[str, list[str]] = {
    "kpis": [],
    "vintage": ["--threshold", "30", "--by", "count", "--basis", "ever"],
    "rollrate": [],
    "flowrate": [],
    "survival": ["--event-dpd", "90", "--segment", "grade"],
    "cox": ["--covariates", "grade,product,channel"],
    "regions": [],
    "collections": [],
    "compliance": [],
    "ratecap": [],
    "cohort": ["--grain", "loan"],
}

# Targets for 1,000,000 loans on 2 cores and 24 GiB: times in seconds, memory in bytes.
REPORT_TARGET_S = 1.0
COX_TARGET_S = 10.0
IMPORT_TARGET_S = {"parquet": 60.0, "csv": 120.0}
PAGE_TARGET_S = 3.0
MEMORY_TARGET_BYTES = 4 * GIB
PANDAS_SPEEDUP_TARGET = 10.0
FLOOR_RATIO_TARGET = 3.0

# The fact-table columns each main report reads. A bare aggregate over them is the report's
# scan floor. Sums and maxima are used because DuckDB computes count(column) of a NOT NULL
# column from metadata without reading it.
FLOOR_SQL: dict[str, str] = {
    "vintage": (
        "select max(origination_date), sum(principal) from loan_facts;"
        " select sum(loan_key), sum(mob), sum(month_number), sum(dpd), max(status),"
        " count(*) filter (where is_active), sum(outstanding_principal), sum(principal),"
        " max(origination_date) from month_facts"
    ),
    "rollrate": (
        "select max(snapshot_date), sum(month_number), sum(dpd), count(*) filter (where is_active),"
        " sum(outstanding_principal), sum(next_dpd), max(next_status),"
        " sum(next_outstanding_principal), max(origination_date) from month_facts"
    ),
    "regions": (
        "select sum(loan_key), max(province), max(city), max(county), max(region_code) from loan_facts;"
        " select sum(loan_key), max(snapshot_date), sum(dpd), max(status),"
        " count(*) filter (where is_active), sum(outstanding_principal) from month_facts"
    ),
    "kpis": (
        "select max(origination_date), sum(principal), max(vintage), max(fpd30_judged_month),"
        " count(*) filter (where is_fpd30), count(*) filter (where fpd30_from_installments)"
        " from loan_facts;"
        " select max(snapshot_date), sum(dpd), sum(outstanding_principal), max(status),"
        " count(*) filter (where is_active), sum(charged_off_amount), sum(recovered_amount)"
        " from month_facts"
    ),
}


def run_step(arguments: list[str]) -> dict:
    """Run ``python -m benchmarks.measure ARGUMENTS`` and return its JSON result."""
    command = [sys.executable, "-m", "benchmarks.measure", *arguments]
    logger.info("running %s", " ".join(arguments[:2]))
    completed = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        logger.error("step %s failed: %s", arguments[:2], completed.stderr[-2000:])
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr else "failed"}
    return json.loads(completed.stdout)


def generate(work: Path, loans: int, seed: int, as_of: str) -> tuple[Path, dict]:
    """Generate the demo portfolio database in a child process; return its path and timing."""
    db_path = work / "demo.duckdb"
    if db_path.exists():
        logger.info("reusing %s", db_path)
        return db_path, {"reused": True}
    script = (
        "import json, resource, sys, time\n"
        "from ingest.demo import generate_demo\n"
        "start = time.perf_counter()\n"
        f"generate_demo({str(db_path)!r}, n_loans={loans}, seed={seed}, as_of={as_of!r})\n"
        "json.dump({'seconds': time.perf_counter() - start,"
        " 'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}, sys.stdout)\n"
    )
    logger.info("generating %d demo loans into %s", loans, db_path)
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return db_path, json.loads(completed.stdout)


def rebuild_facts_if_stale(db_path: Path) -> dict:
    """Rebuild the fact tables of a reused database written by an older LoanLens.

    Runs in a child process, so this process stays small: the steps it starts later
    are forked from it.
    """
    script = (
        "import json, sys, time\n"
        "from ingest import facts\n"
        "start = time.perf_counter()\n"
        f"rebuilt = facts.ensure_current({str(db_path)!r})\n"
        "json.dump({'rebuilt': rebuilt, 'seconds': time.perf_counter() - start}, sys.stdout)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(completed.stdout)


def export_tapes(db_path: Path, work: Path) -> dict[str, Path]:
    """Export loans and loan_months to CSV and Parquet files, as a lender's tape would be."""
    paths = {}
    con = duckdb.connect(str(db_path), read_only=True)
    loan_columns = (
        "loan_id, borrower_id, origination_date, principal, term_months, annual_rate,"
        " repayment_method, product, channel, branch, province, city, county, region_code,"
        " grade, score, guarantee_type, group_id, is_first_loan, borrower_age, borrower_gender"
    )
    month_columns = (
        "loan_id, snapshot_date, dpd, outstanding_principal, overdue_principal,"
        " overdue_interest, status, principal_paid, interest_paid, charged_off_amount,"
        " recovered_amount"
    )
    for table, columns in (("loans", loan_columns), ("loan_months", month_columns)):
        for file_format in ("parquet", "csv"):
            path = work / file_format / f"{table}.{file_format}"
            paths[f"{table}.{file_format}"] = path
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            options = "(format parquet)" if file_format == "parquet" else "(header, delimiter ',')"
            # Paths are generated here, not user input; COPY cannot take a bound file name.
            con.execute(f"copy (select {columns} from {table}) to '{path}' {options}")
    con.close()
    return paths


def browser_page_loads(db_path: Path, runs: int) -> dict:
    """Measure the first load and warm loads of each page in headless Chromium."""
    from benchmarks.pages import measure_pages

    return measure_pages(db_path, runs)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--loans", type=int, default=1_000_000, help="demo portfolio size (loans)")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--as-of", default="2026-11-30", help="demo as-of month-end (YYYY-MM-DD)")
    parser.add_argument("--work", default=str(REPO_ROOT / "benchmarks" / "work"),
                        help="folder for the generated database and tape files (reused when present)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per step after one warm-up")
    parser.add_argument("--import-runs", type=int, default=3, help="timed runs of each import")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-reports", action="store_true",
                        help="measure only the imports (and pages unless --skip-browser)")
    parser.add_argument("--only", help="comma-separated report names to measure (default: all)")
    options = parser.parse_args(argv)

    work = Path(options.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "load_average_start": os.getloadavg(),
    }

    db_path, results["generate"] = generate(work, options.loans, options.seed, options.as_of)
    results["facts"] = rebuild_facts_if_stale(db_path)
    with duckdb.connect(str(db_path), read_only=True) as con:
        results["size"] = {
            table: con.execute(f"select count(*) from {table}").fetchone()[0]
            for table in ("loans", "loan_months", "collection_actions")
        }
    paths = export_tapes(db_path, work)

    if not options.skip_import:
        results["import"] = {}
        for file_format in ("parquet", "csv"):
            results["import"][file_format] = run_step([
                "import", file_format, "--db", str(work / f"import_{file_format}.duckdb"),
                "--loans", str(paths[f"loans.{file_format}"]),
                "--months", str(paths[f"loan_months.{file_format}"]),
                "--runs", str(options.import_runs),
            ])

    names = options.only.split(",") if options.only else list(REPORTS)
    if options.skip_reports:
        names = []
    results["reports"] = {}
    for name in names:
        report_args = list(REPORTS[name])
        if name == "cohort":
            # The cohort export writes and audits its file itself, so it needs --out.
            report_args += ["--out", str(work / "cohort_export.parquet")]
        results["reports"][name] = run_step([
            "report", name, "--db", str(db_path), "--runs", str(options.runs),
            "--args", " ".join(report_args), "--save", str(work / f"loanlens_{name}.parquet"),
        ])

    results["floor"] = {}
    results["pandas"] = {}
    for name in [n for n in FLOOR_SQL if n in names]:
        results["floor"][name] = run_step([
            "floor", name, "--db", str(db_path), "--sql", FLOOR_SQL[name], "--runs", str(options.runs),
        ])
        results["pandas"][name] = run_step([
            "pandas", name, "--parquet-dir", str(work / "parquet"), "--as-of", options.as_of,
            "--runs", str(options.runs),
        ])

    from benchmarks.compare import compare_outputs

    results["comparison"] = compare_outputs(work, [n for n in FLOOR_SQL if n in names])

    if not options.skip_browser:
        results["pages"] = browser_page_loads(db_path, options.runs)

    results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    results["load_average_end"] = os.getloadavg()
    (work / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")

    from benchmarks.report import append_results

    append_results(RESULTS_FILE, results, options)
    logger.info("results appended to %s", RESULTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
