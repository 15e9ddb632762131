"""Time to 30+ dpd on the Home Credit instalment sample, imported with `python -m ingest load`.

The sample is converted to tape files by examples/home_credit.py (relative days placed on
the anchor date 2018-05-31) into a temporary folder, never into the repository. The
curve is checked against statsmodels' SurvfuncRight on the same records, and against the
figures quoted in the worked example of docs/en/survival.md and docs/zh-CN/survival.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from analysis.filters import Filters
from analysis.survival import cumulative_incidence, kaplan_meier
from analysis.survival_data import load_survival_data
from queries import db

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
CONVERTER = REPO_ROOT / "examples" / "home_credit.py"


@pytest.fixture(scope="module")
def home_credit_db(realdata, tmp_path_factory) -> Path:
    source = realdata / "home-credit-sample" / "installments_payments.csv"
    if not source.exists():
        pytest.skip(f"{source} not found")
    if not CONVERTER.exists():
        pytest.skip("examples/home_credit.py (the Home Credit converter) is not in this build")
    folder = tmp_path_factory.mktemp("home_credit")
    db_file = folder / "hc.duckdb"
    completed = subprocess.run(
        [sys.executable, str(CONVERTER), "--out", str(folder / "tape"), "--db", str(db_file), "--load"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return db_file


@pytest.fixture(scope="module")
def home_credit_data(home_credit_db):
    con = db.connect(home_credit_db, read_only=True)
    try:
        yield load_survival_data(con, Filters(), 30)
    finally:
        con.close()


def test_home_credit_curve_matches_statsmodels(home_credit_data):
    records = home_credit_data.records
    assert home_credit_data.n_defaults > 50
    km = kaplan_meier(home_credit_data).table.set_index("timeline")
    reference = SurvfuncRight(records["duration_mob"], records["event"].astype(int), entry=records["entry_mob"])
    times = reference.surv_times.astype(int)
    np.testing.assert_allclose(km.loc[times, "survival"], reference.surv_prob, atol=1e-12)
    assert (np.diff(km["survival"].to_numpy()) <= 1e-15).all()


def test_home_credit_figures_quoted_in_docs(home_credit_data):
    # The worked example in docs/*/survival.md quotes these numbers; update both together.
    km = kaplan_meier(home_credit_data)
    summary = km.summary.iloc[0]
    at = km.survival_at.set_index("month")["survival"]
    assert home_credit_data.n_loans == 1741
    assert home_credit_data.n_defaults == 285
    assert home_credit_data.n_prepayments == 1255
    assert summary["median_mob"] == 51
    assert at[6] == pytest.approx(0.913, abs=5e-4)
    assert at[12] == pytest.approx(0.762, abs=5e-4)
    assert at[24] == pytest.approx(0.566, abs=5e-4)
    incidence = cumulative_incidence(home_credit_data).table.set_index("timeline")
    assert incidence.loc[24, "cif_default"] == pytest.approx(0.174, abs=5e-4)
    assert incidence.loc[24, "one_minus_km"] == pytest.approx(0.434, abs=5e-4)
    assert incidence.loc[24, "cif_prepayment"] == pytest.approx(0.761, abs=5e-4)
    notes = {note.code: note.params for note in home_credit_data.notes}
    assert notes["excluded_zero_duration"]["count"] == 31
    by_product = kaplan_meier(home_credit_data, "product")
    assert by_product.logrank.p_value == pytest.approx(0.0003, abs=5e-5)


def test_home_credit_tape_not_in_repository():
    assert not any(REPO_ROOT.rglob("installments_payments*.csv"))
