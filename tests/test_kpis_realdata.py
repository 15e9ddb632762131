"""KPIs on the UCI Taiwan credit-card panel loaded through the import command.

The expected values come from the plain pandas reference in tests/kpis_reference.py,
computed from the same tables.
"""

import subprocess
import sys

import numpy as np
import pytest

from analysis import kpis
from analysis.filters import Filters
from queries import db
from tests.browser import REPO_ROOT
from tests.kpis_reference import reference_monthly_kpis

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def test_uci_panel_kpis_match_pandas(realdata, tmp_path):
    db_file = tmp_path / "uci.duckdb"
    completed = subprocess.run(
        [sys.executable, "examples/uci_taiwan.py", "--out", str(tmp_path / "tape"), "--db", str(db_file), "--load"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    con = db.connect(db_file, read_only=True)
    try:
        actual = kpis.monthly_kpis(con, Filters())
        expected = reference_monthly_kpis(con)
    finally:
        con.close()

    # Six month-ends, April to September 2005.
    assert len(actual) == 6
    assert actual["month"].tolist() == expected["month"].tolist()
    for column in kpis.REPORT_COLUMNS[1:]:
        np.testing.assert_allclose(
            actual[column].astype(float).to_numpy(),
            expected[column].astype(float).to_numpy(),
            rtol=1e-9, atol=1e-6, err_msg=column,
        )
    # September 2005: 30,000 accounts active and a share of them late (status >= 1).
    assert actual["active_loans"].iloc[-1] == 30_000
    assert 0 < actual["m1plus_count_rate"].iloc[-1] < 1
