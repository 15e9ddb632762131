"""Roll rates on the hand-made 5-loan, 4-month tape (tests/fixtures_vintage.py).

Every expected number is worked out by hand from the tape:

    loan  principal  Jan-31        Feb-28        Mar-31        Apr-30
    A     1000       C   1000      M1 (15) 900   M2 (45) 900   M3 (75) 900
    B     2000       C   2000      C   1800      C   1600      PAID
    C     1500       C   1500      M1 (20) 1500  C   1300      C   1200
    D     3000       C   3000      M1 (10) 3000  M2 (40) 3000  WO (charged off)
    E      500       -             C   500       C   450       (no row)
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from analysis.buckets import DEFAULT_BUCKETS, parse_buckets
from analysis.filters import Filters
from analysis.rollrate import flow_rates, migration_matrix
from queries import db
from tests.fixtures_vintage import MONTH_COLUMNS, hand_tape, write_tape

FEB, MAR, APR = dt.date(2026, 2, 28), dt.date(2026, 3, 31), dt.date(2026, 4, 30)


@pytest.fixture(scope="module")
def hand_con(tmp_path_factory):
    path = hand_tape(tmp_path_factory.mktemp("hand") / "hand.duckdb")
    connection = db.connect(path, read_only=True)
    yield connection
    connection.close()


def _nonzero(shares, row):
    values = shares.loc[row]
    return {label: value for label, value in values.items() if value != 0}


def test_matrix_april_exact(hand_con):
    matrix = migration_matrix(hand_con, Filters(), month=APR)
    # From C at March: B -> PAID, C -> C; E has no April row.
    assert _nonzero(matrix.count_shares, "C") == {"C": 0.5, "PAID": 0.5}
    assert _nonzero(matrix.balance_shares, "C") == pytest.approx({"C": 1300 / 2900, "PAID": 1600 / 2900})
    # From M2 at March: A -> M3, D -> WO.
    assert _nonzero(matrix.count_shares, "M2") == {"M3": 0.5, "WO": 0.5}
    assert _nonzero(matrix.balance_shares, "M2") == pytest.approx({"M3": 900 / 3900, "WO": 3000 / 3900})
    assert matrix.missing_loans == 1
    assert matrix.missing_balance == pytest.approx(450.0)


def test_matrix_empty_source_rows_are_nan(hand_con):
    matrix = migration_matrix(hand_con, Filters(), month=APR)
    for label in ("M1", "M3", "M4", "M5", "M6", "M7+"):
        assert matrix.count_shares.loc[label].isna().all()
        assert matrix.balance_shares.loc[label].isna().all()
    table = matrix.table[matrix.table["from_bucket"] == "M1"]
    assert (table["loans"] == 0).all()
    assert table["count_share"].isna().all()


def test_matrix_march_and_february_exact(hand_con):
    march = migration_matrix(hand_con, Filters(), month=MAR)
    assert _nonzero(march.count_shares, "C") == {"C": 1.0}
    assert _nonzero(march.count_shares, "M1") == pytest.approx({"C": 1 / 3, "M2": 2 / 3})
    assert _nonzero(march.balance_shares, "M1") == pytest.approx({"C": 1500 / 5400, "M2": 3900 / 5400})
    assert march.missing_loans == 0
    february = migration_matrix(hand_con, Filters(), month=FEB)
    assert _nonzero(february.count_shares, "C") == pytest.approx({"C": 0.25, "M1": 0.75})
    assert _nonzero(february.balance_shares, "C") == pytest.approx({"C": 2000 / 7500, "M1": 5500 / 7500})


def test_matrix_window_pools_months(hand_con):
    matrix = migration_matrix(hand_con, Filters(), month_from=FEB, month_to=APR)
    # C row over Feb-Apr: to C = B (Feb), B and E (Mar), C (Apr); to M1 = A, C, D (Feb);
    # to PAID = B (Apr).
    assert matrix.loans.loc["C", "C"] == 4
    assert matrix.loans.loc["C", "M1"] == 3
    assert matrix.loans.loc["C", "PAID"] == 1
    assert _nonzero(matrix.count_shares, "C") == pytest.approx({"C": 4 / 8, "M1": 3 / 8, "PAID": 1 / 8})
    assert _nonzero(matrix.balance_shares, "C") == pytest.approx(
        {"C": 5600 / 12700, "M1": 5500 / 12700, "PAID": 1600 / 12700}
    )
    assert _nonzero(matrix.count_shares, "M2") == {"M3": 0.5, "WO": 0.5}
    assert matrix.missing_loans == 1


def test_matrix_rows_sum_to_one(hand_con):
    matrix = migration_matrix(hand_con, Filters(), month_from=FEB, month_to=APR)
    for shares in (matrix.count_shares, matrix.balance_shares):
        sums = shares.sum(axis=1, min_count=1).dropna()
        assert len(sums) == 3
        assert np.allclose(sums.to_numpy(), 1.0, atol=1e-9, rtol=0)


def test_matrix_default_month_is_as_of(hand_con):
    default = migration_matrix(hand_con, Filters())
    assert default.month_from == APR
    assert default.month_to == APR


def test_matrix_custom_buckets(hand_con):
    buckets = parse_buckets("30,60")
    matrix = migration_matrix(hand_con, Filters(), buckets, month=APR)
    assert list(matrix.count_shares.columns) == ["C", "M1", "M2", "M3+", "PAID", "WO"]
    # A at dpd 75 is in the open bucket M3+ with bounds 30,60.
    assert _nonzero(matrix.count_shares, "M2") == {"M3+": 0.5, "WO": 0.5}


def test_matrix_filters_reach_sql(hand_con):
    matrix = migration_matrix(hand_con, Filters(products=("p2",)), month=APR)
    # Product p2 contains loans C and D only.
    assert _nonzero(matrix.count_shares, "C") == {"C": 1.0}
    assert _nonzero(matrix.count_shares, "M2") == {"WO": 1.0}
    assert matrix.missing_loans == 0


def test_matrix_as_of_cuts_later_months(hand_con):
    matrix = migration_matrix(hand_con, Filters(as_of=MAR), month_from=FEB, month_to=APR)
    assert matrix.month_to == MAR
    assert matrix.loans.to_numpy().sum() == 4 + 5


def test_matrix_window_reversed_rejected(hand_con):
    with pytest.raises(ValueError, match="after it ends"):
        migration_matrix(hand_con, Filters(), month_from=APR, month_to=FEB)


def test_matrix_month_and_window_rejected(hand_con):
    with pytest.raises(ValueError, match="not both"):
        migration_matrix(hand_con, Filters(), month=APR, month_from=FEB)


def test_cure_rates_from_matrix(hand_con):
    cures = migration_matrix(hand_con, Filters(), month=MAR).cure_rates().set_index("bucket")
    assert cures.loc["M1", "count_cure_rate"] == pytest.approx(1 / 3)
    assert cures.loc["M1", "balance_cure_rate"] == pytest.approx(1500 / 5400)
    assert math.isnan(cures.loc["M2", "count_cure_rate"])


def test_flow_rates_exact(hand_con):
    flows = flow_rates(hand_con, Filters(), DEFAULT_BUCKETS)
    table = flows.table.set_index(["month", "from_bucket", "to_bucket"])["flow_rate"]
    assert table[(FEB, "C", "M1")] == pytest.approx(5400 / 7500)
    assert table[(MAR, "C", "M1")] == 0.0
    assert table[(MAR, "M1", "M2")] == pytest.approx(3900 / 5400)
    assert table[(APR, "C", "M1")] == 0.0
    assert table[(APR, "M2", "M3")] == pytest.approx(900 / 3900)
    # M7+ held nothing at March, so D's charge-off gives no defined M7+ -> WO rate.
    assert math.isnan(table[(APR, "M7+", "WO")])
    assert sorted(set(flows.table["month"])) == [FEB, MAR, APR]
    assert flows.implied_loss["implied_loss_rate"].isna().all()


def test_flow_rates_pooled_and_implied_loss(hand_con):
    pooled = flow_rates(hand_con, Filters(), parse_buckets("30,60")).pooled().set_index(
        ["from_bucket", "to_bucket"]
    )["flow_rate"]
    assert pooled[("C", "M1")] == pytest.approx(5400 / 13150)
    assert pooled[("M1", "M2")] == pytest.approx(3900 / 5400)
    # M2 -> M3+ counts the April balance of loans moving from M2 to M3+ (A, 900).
    assert pooled[("M2", "M3+")] == pytest.approx(900 / 3900)
    assert math.isnan(pooled[("M3+", "WO")])
    assert math.isnan(pooled[("C", "WO")])


def test_flow_rates_write_off_link(tmp_path):
    """Charge-off from the open bucket: M4+ -> WO = written-off t-1 balance / M4+ balance."""
    loans = pd.DataFrame(
        {
            "loan_id": ["X", "Y"],
            "origination_date": [dt.date(2025, 1, 10)] * 2,
            "principal": [1000.0, 3000.0],
        }
    )
    months = pd.DataFrame(
        [
            ("X", dt.date(2025, 5, 31), 100, 1000.0, "active", None),
            ("Y", dt.date(2025, 5, 31), 120, 3000.0, "active", None),
            ("X", dt.date(2025, 6, 30), 130, 1000.0, "active", None),
            ("Y", dt.date(2025, 6, 30), 150, 0.0, "charged_off", 3000.0),
        ],
        columns=MONTH_COLUMNS,
    )
    path = write_tape(tmp_path / "wo.duckdb", loans, months)
    with db.connect(path, read_only=True) as con:
        flows = flow_rates(con, Filters(), parse_buckets("30,60,90"))
    row = flows.table.set_index(["from_bucket", "to_bucket"]).loc[("M4+", "WO")]
    assert row["flow_rate"] == pytest.approx(3000 / 4000)


def test_empty_database_gives_empty_results(con):
    matrix = migration_matrix(con, Filters())
    assert matrix.is_empty
    assert matrix.count_shares.isna().all().all()
    flows = flow_rates(con, Filters())
    assert flows.table.empty
    assert flows.implied_loss.empty
