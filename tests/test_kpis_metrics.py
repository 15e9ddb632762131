"""Monthly KPIs (analysis/kpis.py, queries/kpis.sql) against hand calculation and pandas.

Expected values come from two independent sources: hand calculation on the five-loan tape
in tests/fixtures_kpis.py, and the plain pandas reimplementation in tests/kpis_reference.py
on a random tape and on the demo portfolio.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import queries
from analysis import kpis
from analysis.filters import FILTERED_LOANS_SQL, Filters
from ingest import facts
from queries import db
from tests.fixtures_kpis import build_hand_tape, build_random_tape
from tests.kpis_reference import reference_monthly_kpis

REPO_ROOT = Path(__file__).resolve().parent.parent
APRIL, MARCH = dt.date(2025, 4, 30), dt.date(2025, 3, 31)


@pytest.fixture
def hand_con(tmp_path):
    con = db.connect(build_hand_tape(tmp_path / "hand.duckdb"), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def random_db(tmp_path_factory) -> Path:
    return build_random_tape(tmp_path_factory.mktemp("random") / "random.duckdb")


def _row(frame: pd.DataFrame, month: dt.date) -> pd.Series:
    return frame.set_index("month").loc[month]


def test_hand_tape_april_balances(hand_con):
    april = _row(kpis.monthly_kpis(hand_con, Filters()), APRIL)
    # Active in April: L1 700 + L2 1900 + L4 2000; L3 paid off and L5 charged off.
    assert april["active_balance"] == pytest.approx(4600)
    assert april["active_loans"] == 3
    # Only L2 is delinquent (95 dpd): M1+, PAR30 and NPL are all 1900 / 4600.
    assert april["m1plus_balance_rate"] == pytest.approx(1900 / 4600)
    assert april["m1plus_count_rate"] == pytest.approx(1 / 3)
    assert april["par30_rate"] == pytest.approx(1900 / 4600)
    assert april["npl_rate"] == pytest.approx(1900 / 4600)
    # L5 is charged off for 1000 with 200 recovered in the same month.
    assert april["chargeoff_amount"] == pytest.approx(1000)
    assert april["recovery_amount"] == pytest.approx(200)
    assert april["new_loans"] == 0


def test_hand_tape_march_rates(hand_con):
    march = _row(kpis.monthly_kpis(hand_con, Filters()), MARCH)
    # 800 + 1900 + 400 + 3000 + 1000 active; L1 35 dpd, L2 36 dpd, L4 16 dpd.
    assert march["active_balance"] == pytest.approx(7100)
    assert march["m1plus_balance_rate"] == pytest.approx(5700 / 7100)
    assert march["par30_rate"] == pytest.approx(2700 / 7100)
    assert march["npl_rate"] == 0
    assert march["new_loans"] == 1
    assert march["new_amount"] == pytest.approx(1000)


def test_par30_restructured_toggle(hand_con):
    march = _row(kpis.monthly_kpis(hand_con, Filters(), par30_restructured=True), MARCH)
    # L4 (3000, restructured at 16 dpd) joins L1 and L2.
    assert march["par30_rate"] == pytest.approx(5700 / 7100)


def test_fpd30_cohort_judged_by_month(hand_con):
    monthly = kpis.monthly_kpis(hand_con, Filters()).set_index("month")
    # January cohort (L1 first due 10 Feb, L2 20 Feb) is judged at the end of March: both
    # loans are >= 30 dpd then. February was too early for every cohort.
    assert np.isnan(monthly.loc[dt.date(2025, 2, 28), "fpd30_count_rate"])
    assert monthly.loc[MARCH, "fpd30_count_rate"] == pytest.approx(1.0)
    assert monthly.loc[MARCH, "fpd30_cohort"] == dt.date(2025, 1, 1)
    # February cohort at the end of April: L3 paid off (not FPD), L4 paid its first
    # instalment 36 days late (FPD by instalment). The March cohort (L5, first due
    # 3 Apr) cannot be judged before May, so it is not reported.
    assert monthly.loc[APRIL, "fpd30_count_rate"] == pytest.approx(0.5)
    assert monthly.loc[APRIL, "fpd30_cohort"] == dt.date(2025, 2, 1)
    assert monthly.loc[APRIL, "fpd30_amount_rate"] == pytest.approx(3000 / 3500)


def test_fpd30_cohorts_skip_unjudged(hand_con):
    cohorts = kpis.fpd30_cohorts(hand_con, Filters())
    assert [v.isoformat() for v in pd.to_datetime(cohorts["vintage"]).dt.date] == [
        "2025-01-01", "2025-02-01"
    ]
    assert cohorts["from_installments"].tolist() == [0, 1]


def test_as_of_excludes_later_months(hand_con):
    monthly = kpis.monthly_kpis(hand_con, Filters(as_of=MARCH))
    assert monthly["month"].max() == MARCH
    assert len(monthly) == 3


def test_five_class_presets_split_differently(tmp_path):
    path = tmp_path / "classes.duckdb"
    con = db.connect(path)
    con.execute("""
        insert into loans (loan_id, origination_date, principal, load_id)
        select 'C' || d::varchar, date '2023-01-01', 100, 1 from unnest([0, 10, 100, 200, 300, 400]) t(d)
    """)
    con.execute("""
        insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, status, load_id)
        select 'C' || d::varchar, date '2025-01-31', d, 100, 'active', 1
        from unnest([0, 10, 100, 200, 300, 400]) t(d)
    """)
    facts.rebuild(con)
    con.close()
    con = db.connect(path, read_only=True)
    bank = kpis.five_class(con, Filters(), "bank_2023").set_index("class_code")["loans"]
    simple = kpis.five_class(con, Filters(), "simple_90_180_360").set_index("class_code")["loans"]
    # Bank 2023: 次级 91-270 contains 100 and 200 dpd, 可疑 271-360 contains 300, 损失 400.
    assert bank.to_dict() == {"normal": 1, "special_mention": 1, "substandard": 2, "doubtful": 1, "loss": 1}
    # Simple: 次级 91-180 contains only 100, and 可疑 181-360 contains 200 and 300.
    assert simple.to_dict() == {"normal": 1, "special_mention": 1, "substandard": 1, "doubtful": 2, "loss": 1}
    # The NPL ratio (dpd > 90) is the same under both presets: 4 of 6 equal balances.
    for preset in kpis.CLASSIFICATION_PRESETS:
        monthly = kpis.monthly_kpis(con, Filters(), preset=preset)
        assert monthly["npl_rate"].iloc[-1] == pytest.approx(4 / 6)
    con.close()


def test_unknown_preset_rejected(hand_con):
    with pytest.raises(ValueError, match="bank_2023"):
        kpis.monthly_kpis(hand_con, Filters(), preset="bank_1998")


def test_empty_database_gives_empty_table(con):
    assert kpis.monthly_kpis(con, Filters()).empty
    assert kpis.five_class(con, Filters())["loans"].sum() == 0


def _compare_with_reference(con, filters: Filters, as_of=None) -> None:
    ids = set(queries.run_sql(con, f"select loan_id from {FILTERED_LOANS_SQL}", filters.params())["loan_id"])
    expected = reference_monthly_kpis(con, as_of=as_of, loan_ids=ids)
    actual = kpis.monthly_kpis(con, filters)
    assert actual["month"].tolist() == expected["month"].tolist()
    for column in kpis.REPORT_COLUMNS[1:]:
        np.testing.assert_allclose(
            actual[column].astype(float).to_numpy(),
            expected[column].astype(float).to_numpy(),
            rtol=1e-9, atol=1e-6, err_msg=column,
        )


def test_random_tape_matches_pandas(random_db):
    con = db.connect(random_db, read_only=True)
    _compare_with_reference(con, Filters())
    con.close()


def test_random_tape_filtered_matches_pandas(random_db):
    con = db.connect(random_db, read_only=True)
    as_of = dt.date(2025, 3, 31)
    filters = Filters(as_of=as_of, products=("消费贷", "车贷"), provinces=("广东省",),
                      vintage_from=dt.date(2024, 3, 1), vintage_to=dt.date(2024, 12, 1))
    _compare_with_reference(con, filters, as_of=as_of)
    con.close()


def test_kpi_changes_mom_yoy_verdicts(random_db):
    con = db.connect(random_db, read_only=True)
    monthly = kpis.monthly_kpis(con, Filters())
    con.close()
    as_of = dt.date(2025, 6, 30)
    changes = {change.column: change for change in kpis.kpi_changes(monthly, as_of)}
    by_month = monthly.set_index("month")
    par30 = changes["par30_rate"]
    # A rate's change is the difference of fractions (percentage points / 100).
    assert par30.mom_change == pytest.approx(
        by_month.loc[as_of, "par30_rate"] - by_month.loc[dt.date(2025, 5, 31), "par30_rate"]
    )
    assert par30.yoy_change == pytest.approx(
        by_month.loc[as_of, "par30_rate"] - by_month.loc[dt.date(2024, 6, 30), "par30_rate"]
    )
    assert par30.mom_verdict == ("worse" if par30.mom_change > 0 else "better")
    balance = changes["active_balance"]
    assert balance.mom_change == pytest.approx(
        by_month.loc[as_of, "active_balance"] / by_month.loc[dt.date(2025, 5, 31), "active_balance"] - 1
    )
    # Portfolio size is neither good nor bad: no verdict.
    assert balance.mom_verdict is None
    recovery = changes["recovery_amount"]
    assert recovery.mom_verdict == ("better" if recovery.mom_change > 0 else "worse")


def test_kpi_changes_without_history(hand_con):
    monthly = kpis.monthly_kpis(hand_con, Filters())
    changes = {change.column: change for change in kpis.kpi_changes(monthly, APRIL)}
    assert np.isnan(changes["par30_rate"].yoy_change)
    assert changes["par30_rate"].yoy_verdict is None
    # Charge-offs went from 0 to 1000: no relative change can be computed.
    assert np.isnan(changes["chargeoff_amount"].mom_change)


def test_highlights_pick_biggest_risk_move(hand_con):
    monthly = kpis.monthly_kpis(hand_con, Filters())
    chosen = kpis.highlights(kpis.kpi_changes(monthly, APRIL))
    assert [item.template for item in chosen] == [
        "kpis.highlight.balance", "kpis.highlight.risk_down", "kpis.highlight.losses"
    ]
    # FPD30 fell 50 pp (1.0 -> 0.5), more than M1+ (-39 pp), PAR30 (+3 pp) or NPL (+41 pp).
    assert chosen[1].change.column == "fpd30_count_rate"


def test_trend_has_13_months(random_db):
    con = db.connect(random_db, read_only=True)
    monthly = kpis.monthly_kpis(con, Filters())
    con.close()
    trend = kpis.trend(monthly, dt.date(2025, 6, 30))
    assert len(trend) == 13
    assert trend["month"].iloc[0] == dt.date(2024, 6, 30)


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analysis", "kpis", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )


def test_cli_csv_matches_function(random_db, tmp_path):
    out = tmp_path / "kpis.csv"
    result = _run_cli("--db", str(random_db), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"\xef\xbb\xbf"), "CSV starts with a UTF-8 BOM"
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert table.columns.tolist() == kpis.REPORT_COLUMNS
    con = db.connect(random_db, read_only=True)
    expected = kpis.report_table(kpis.monthly_kpis(con, Filters()))
    con.close()
    assert table["month"].tolist() == expected["month"].tolist()
    for column in kpis.REPORT_COLUMNS[1:]:
        np.testing.assert_allclose(table[column].to_numpy(dtype=float),
                                   expected[column].to_numpy(dtype=float), rtol=1e-9, err_msg=column)


def test_cli_as_of_and_json(random_db, tmp_path):
    out = tmp_path / "kpis.json"
    result = _run_cli("--db", str(random_db), "--as-of", "2024-12", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text(encoding="utf-8"))
    assert rows[-1]["month"] == "2024-12-31"
    assert set(rows[0]) == set(kpis.REPORT_COLUMNS)


def test_cli_xlsx_written(random_db, tmp_path):
    out = tmp_path / "kpis.xlsx"
    result = _run_cli("--db", str(random_db), "--product", "消费贷", "--out", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_excel(out)
    assert table.columns.tolist() == kpis.REPORT_COLUMNS


def test_cli_bad_month_is_usage_error(random_db):
    result = _run_cli("--db", str(random_db), "--as-of", "2024/12")
    assert result.returncode == 2
    assert "YYYY-MM" in result.stderr


def test_cli_empty_database_fails(db_path):
    result = _run_cli("--db", str(db_path))
    assert result.returncode == 1
    assert "no month-end snapshots" in result.stderr


@pytest.fixture
def demo_path(request) -> Path:
    """The shared demo portfolio; skipped while ingest.demo is not part of the build."""
    pytest.importorskip("ingest.demo")
    return request.getfixturevalue("demo_db")


def test_demo_portfolio_matches_pandas(demo_path):
    con = db.connect(demo_path, read_only=True)
    _compare_with_reference(con, Filters())
    con.close()


@pytest.mark.parametrize(
    ("name", "params", "columns"),
    [
        ("kpi_monthly", {"npl_dpd": 90, "par30_restructured": False},
         ["month", "active_balance", "active_loans", "m1plus_balance", "m1plus_loans",
          "par30_balance", "npl_balance", "new_loans", "new_amount", "chargeoff_amount",
          "recovery_amount"]),
        ("kpi_fpd30_cohorts", {},
         ["vintage", "loans", "principal", "judged_month", "fpd30_loans", "fpd30_principal",
          "from_installments"]),
        ("kpi_five_class", {"substandard_dpd": 90, "doubtful_dpd": 270, "loss_dpd": 360},
         ["class_rank", "class_code", "loans", "balance"]),
        ("dashboard_filter_options", {},
         ["products", "channels", "provinces", "grades", "first_vintage", "last_vintage",
          "snapshot_months", "loan_count"]),
        ("dashboard_loan_count", {}, ["loan_count"]),
    ],
)
def test_query_returns_documented_columns(hand_con, name, params, columns):
    frame = queries.run(hand_con, name, {**Filters(as_of=APRIL).params(), **params})
    assert frame.columns.tolist() == columns
    doc = queries.get_query(name).doc
    for column in columns:
        assert column in doc, f"{name} does not document {column}"
