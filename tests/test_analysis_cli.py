"""The report command framework: help text, exit codes, filter normalisation, warnings."""

import subprocess
import sys

import pytest

from analysis import cli
from analysis.cli import COMMANDS, filters_from_args
from tests.browser import REPO_ROOT


def _run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", *arguments],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )


def test_top_level_help_lists_every_command():
    completed = _run("--help")
    assert completed.returncode == 0, completed.stderr
    for name in COMMANDS:
        assert name in completed.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_help_renders(name):
    # Help texts such as "95% confidence bands" once crashed argparse's %-formatting.
    completed = _run(name, "--help")
    assert completed.returncode == 0, completed.stderr
    assert "--out" in completed.stdout


def test_province_filter_accepts_short_names():
    parser = cli.build_parser()
    args = parser.parse_args(["kpis", "--province", "广东,440000", "--province", "Texas"])
    assert filters_from_args(args).provinces == ("广东省", "广东省", "Texas")


def test_reversed_vintage_range_rejected():
    parser = cli.build_parser()
    args = parser.parse_args(["kpis", "--vintage-from", "2026-12", "--vintage-to", "2025-01"])
    with pytest.raises(ValueError, match="swap them"):
        filters_from_args(args)


def test_unknown_cox_covariate_is_usage_error(demo_db):
    completed = _run("cox", "--db", str(demo_db), "--covariates", "foo,bar")
    assert completed.returncode == 2
    assert "--covariates must list" in completed.stderr


def test_cohort_unknown_column_is_usage_error(demo_db, tmp_path):
    completed = _run("cohort", "--db", str(demo_db), "--columns", "foo", "--out", str(tmp_path / "c.csv"))
    assert completed.returncode == 2
    assert "foo" in completed.stderr


def test_filter_matching_nothing_warns(demo_db):
    completed = _run("kpis", "--db", str(demo_db), "--product", "不存在的产品")
    assert completed.returncode == 0
    assert "no loans match the filters" in completed.stderr


def test_as_of_after_data_warns(demo_db):
    completed = _run("kpis", "--db", str(demo_db), "--as-of", "2030-01")
    assert completed.returncode == 0
    assert "is after the latest month in the data (2026-11)" in completed.stderr
