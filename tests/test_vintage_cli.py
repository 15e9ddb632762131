"""Report commands vintage, rollrate and flowrate (``python -m analysis``) on the hand tape.

Expected values are the hand-computed ones of tests/test_vintage_hand.py and
tests/test_rollrate_hand.py.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pandas as pd
import pytest

from analysis.cli import main
from tests.conftest import REPO_ROOT
from tests.fixtures_vintage import hand_tape


@pytest.fixture(scope="module")
def hand_db(tmp_path_factory):
    return hand_tape(tmp_path_factory.mktemp("cli") / "hand.duckdb")


def _run(capsys, *argv) -> tuple[int, pd.DataFrame | None, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    frame = pd.read_csv(io.StringIO(captured.out), keep_default_na=True) if code == 0 and captured.out else None
    return code, frame, captured.err


def test_vintage_command_columns_and_rates(capsys, hand_db):
    code, frame, _ = _run(capsys, "vintage", "--db", str(hand_db))
    assert code == 0
    assert list(frame.columns) == ["vintage", "mob", "loans", "principal", "bad_loans", "bad_principal", "rate"]
    january = frame[frame["vintage"] == "2026-01"].set_index("mob")
    assert january["bad_loans"].tolist() == [0, 0, 2, 2]
    assert january.loc[3, "rate"] == pytest.approx(0.5)
    assert frame[frame["vintage"] == "2026-02"]["mob"].tolist() == [0, 1, 2]


def test_vintage_command_options(capsys, hand_db):
    code, frame, _ = _run(
        capsys, "vintage", "--db", str(hand_db), "--threshold", "0", "--by", "balance",
        "--basis", "current", "--cohort", "quarter",
    )
    assert code == 0
    assert frame["vintage"].tolist() == ["2026Q1", "2026Q1"]
    assert frame["bad_principal"].tolist() == [0.0, 5400.0]
    assert frame["rate"].tolist() == pytest.approx([0.0, 5400 / 8000])


def test_vintage_command_filters(capsys, hand_db):
    code, frame, _ = _run(capsys, "vintage", "--db", str(hand_db), "--product", "p2")
    assert code == 0
    assert frame["loans"].unique().tolist() == [2]
    code, frame, _ = _run(capsys, "vintage", "--db", str(hand_db), "--as-of", "2026-02")
    assert code == 0
    assert frame["mob"].tolist() == [0, 1, 0]


def test_rollrate_command_month(capsys, caplog, hand_db):
    code, frame, _ = _run(capsys, "rollrate", "--db", str(hand_db), "--month", "2026-04")
    assert code == 0
    assert list(frame.columns) == ["from_bucket", "to_bucket", "loans", "balance", "count_share", "balance_share"]
    assert frame["from_bucket"].unique().tolist() == ["C", "M1", "M2", "M3", "M4", "M5", "M6", "M7+"]
    cells = frame.set_index(["from_bucket", "to_bucket"])
    assert cells.loc[("C", "PAID"), "balance"] == 1600.0
    assert cells.loc[("C", "PAID"), "count_share"] == 0.5
    assert cells.loc[("M2", "WO"), "balance_share"] == pytest.approx(3000 / 3900)
    # Empty source buckets are blank cells, not text.
    assert cells.loc[("M1", "C"), ["count_share", "balance_share"]].isna().all()
    assert "1 loans active at t-1 have no snapshot at t" in caplog.text


def test_rollrate_command_window_and_buckets(capsys, hand_db):
    code, frame, _ = _run(
        capsys, "rollrate", "--db", str(hand_db), "--from", "2026-02", "--to", "2026-04",
        "--buckets", "30,60",
    )
    assert code == 0
    assert frame["to_bucket"].unique().tolist() == ["C", "M1", "M2", "M3+", "PAID", "WO"]
    cells = frame.set_index(["from_bucket", "to_bucket"])
    assert cells.loc[("C", "C"), "loans"] == 4
    assert cells.loc[("C", "M1"), "count_share"] == pytest.approx(3 / 8)


def test_rollrate_command_writes_xlsx(capsys, hand_db, tmp_path):
    out = tmp_path / "matrix.xlsx"
    code, _, _ = _run(capsys, "rollrate", "--db", str(hand_db), "--out", str(out))
    assert code == 0
    frame = pd.read_excel(out)
    assert len(frame) == 8 * 10


def test_flowrate_command(capsys, hand_db):
    code, frame, _ = _run(capsys, "flowrate", "--db", str(hand_db))
    assert code == 0
    assert list(frame.columns) == ["month", "from_bucket", "to_bucket", "flow_rate"]
    rates = frame.set_index(["month", "from_bucket", "to_bucket"])["flow_rate"]
    assert rates[("2026-02-28", "C", "M1")] == pytest.approx(0.72)
    assert rates[("2026-04-30", "M2", "M3")] == pytest.approx(900 / 3900)


@pytest.mark.parametrize(
    "argv",
    [
        ("rollrate", "--buckets", "60,30"),
        ("rollrate", "--buckets", "30,abc"),
        ("rollrate", "--month", "2026-04", "--from", "2026-02"),
        ("vintage", "--threshold", "-1"),
        ("vintage", "--by", "amount"),
        ("flowrate", "--buckets", ""),
    ],
)
def test_commands_reject_bad_options(capsys, hand_db, argv):
    if argv == ("flowrate", "--buckets", ""):
        # An empty value means the default buckets, not an error.
        code, frame, _ = _run(capsys, *argv, "--db", str(hand_db))
        assert code == 0
        return
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--db", str(hand_db)])
    assert exit_info.value.code == 2


def test_rollrate_month_after_data_fails(capsys, hand_db):
    code, _, err = _run(capsys, "rollrate", "--db", str(hand_db), "--month", "2025-01")
    assert code == 1
    assert "no loans were active" in err


def test_commands_on_empty_database(capsys, db_path):
    for command in ("vintage", "rollrate", "flowrate"):
        code, _, err = _run(capsys, command, "--db", str(db_path))
        assert code == 1, command
        assert err.startswith("error:"), command


def test_module_entry_point(hand_db):
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "rollrate", "--db", str(hand_db), "--month", "2026-03"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "from_bucket,to_bucket,loans,balance,count_share,balance_share"
