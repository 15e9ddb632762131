"""Import tests: the command line (`python -m ingest load|status`) and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures_ingest import LOANS_HEADER, LOANS_ROWS, MONTHS_HEADER, MONTHS_ROWS, write_csv

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run(args, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, LOANLENS_SECRET_FILE=str(tmp_path / "secret.key"), PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "ingest", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_exit_codes(tmp_path):
    db = tmp_path / "db.duckdb"
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    bad = [row[:] for row in LOANS_ROWS]
    bad[0][2] = "abc"
    bad_loans = write_csv(tmp_path / "bad.csv", LOANS_HEADER, bad)
    report = tmp_path / "report.json"

    ok = _run(["load", "--db", str(db), "--loans", str(loans), "--months", str(months),
               "--as-of", "2017-12-31", "--report", str(report), "--lang", "en"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "Import succeeded" in ok.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ok"] is True
    assert data["files"][0]["rows_loaded"] == 3

    rejected = _run(["load", "--db", str(db), "--loans", str(bad_loans), "--months", str(months),
                     "--as-of", "2017-12-31", "--report", str(report)], tmp_path)
    assert rejected.returncode == 1, rejected.stderr
    assert "bad.csv 第 2 行" in rejected.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["counts_by_rule"] == {"invalid_amount": 1}
    assert data["errors"][0]["line"] == 2
    assert list(tmp_path.glob("rejects-*.csv"))

    usage = _run(["load", "--db", str(db)], tmp_path)
    assert usage.returncode == 2
    assert "--loans" in usage.stderr
    bad_mode = _run(["load", "--db", str(db), "--loans", str(loans), "--mode", "lenient"], tmp_path)
    assert bad_mode.returncode == 2
    bad_date = _run(["load", "--db", str(db), "--loans", str(loans), "--months", str(months),
                     "--as-of", "31/12/2017"], tmp_path)
    assert bad_date.returncode == 2

    status = _run(["status", "--db", str(db), "--lang", "en"], tmp_path)
    assert status.returncode == 0, status.stderr
    assert "loans: 3 rows" in status.stdout
    assert "2017-03 to 2017-03" in status.stdout
    assert "rejected" in status.stdout
