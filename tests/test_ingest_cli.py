"""Import tests: the command line (`python -m ingest load|status`) and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures_ingest import LOANS_HEADER, LOANS_ROWS, MONTHS_HEADER, MONTHS_ROWS, write_csv

REPO_ROOT = Path(__file__).resolve().parent.parent


def _run(args, tmp_path, **env_vars) -> subprocess.CompletedProcess:
    env = dict(os.environ, LOANLENS_SECRET_FILE=str(tmp_path / "secret.key"), PYTHONPATH=str(REPO_ROOT))
    env.pop("LOANLENS_LANG", None)
    env.update(env_vars)
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


def test_cli_quarantine_file_rejected_in_full_exits_1(tmp_path):
    db = tmp_path / "db.duckdb"
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS)
    # Without the required 逾期天数 (dpd) column the whole months file is rejected.
    header = [name for name in MONTHS_HEADER if name != "逾期天数"]
    rows = [[value for name, value in zip(MONTHS_HEADER, row) if name != "逾期天数"] for row in MONTHS_ROWS]
    months = write_csv(tmp_path / "months.csv", header, rows)
    report = tmp_path / "report.json"
    result = _run(["load", "--db", str(db), "--loans", str(loans), "--months", str(months), "--mode", "quarantine",
                   "--as-of", "2017-12-31", "--report", str(report), "--lang", "en"], tmp_path)
    assert result.returncode == 1, result.stderr
    assert "rejected in full" in result.stdout
    assert "months.csv" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["ok"] is True  # the loans file loaded
    assert data["files_rejected"] == ["months.csv"]
    assert [file["result"] for file in data["files"]] == ["loaded", "rejected"]
    assert "files rejected in full: months.csv" in result.stderr


def test_cli_unstored_columns_reported(tmp_path):
    db = tmp_path / "db.duckdb"
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER + ["催收组别"],
                       [row + ["A组"] for row in MONTHS_ROWS])
    report = tmp_path / "report.json"
    result = _run(["load", "--db", str(db), "--loans", str(loans), "--months", str(months),
                   "--as-of", "2017-12-31", "--report", str(report)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "未保存的列" in result.stdout
    assert "催收组别" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["files"][1]["columns_not_stored"] == ["催收组别"]
    assert data["files"][0]["columns_not_stored"] == []


def test_cli_lang_from_environment_and_english_logs(tmp_path):
    db = tmp_path / "db.duckdb"
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    assert _run(["load", "--db", str(db), "--loans", str(loans), "--months", str(months),
                 "--as-of", "2017-12-31"], tmp_path).returncode == 0

    english = _run(["status", "--db", str(db)], tmp_path, LOANLENS_LANG="en")
    assert "loans: 3 rows" in english.stdout
    chinese = _run(["status", "--db", str(db)], tmp_path)
    assert "loans：3 行" in chinese.stdout
    chosen = _run(["status", "--db", str(db), "--lang", "zh"], tmp_path, LOANLENS_LANG="en")
    assert "loans：3 行" in chosen.stdout

    bad = [row[:] for row in LOANS_ROWS]
    bad[0][2] = "abc"
    rejected = _run(["load", "--db", str(db), "--loans", str(write_csv(tmp_path / "bad.csv", LOANS_HEADER, bad)),
                     "--months", str(months), "--as-of", "2017-12-31"], tmp_path)
    assert rejected.returncode == 1
    assert "不是有效金额" in rejected.stdout  # the summary follows --lang (default zh)
    assert "WARNING" in rejected.stderr
    assert "'abc' is not a valid amount" in rejected.stderr  # logs stay English
    assert "不是有效金额" not in rejected.stderr
