"""Regional rates on the demo portfolio: equal to pandas, and the simulated risk order recovered.

The demo generator (ingest/demo.py) gives each province a known C -> M1 hazard multiplier;
demo_truth.json lists the five largest provinces from lowest to highest true hazard.
"""

from __future__ import annotations

import duckdb
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis import regions
from analysis.filters import Filters
from queries import db

BAD_DPD = {"m1plus": 0, "par30": 30, "npl": 90}


@pytest.fixture(scope="module")
def demo_data(demo_db):
    con = db.connect(demo_db, read_only=True)
    try:
        yield regions.load_region_months(con, Filters())
    finally:
        con.close()


@pytest.mark.parametrize("metric", ["m1plus", "par30", "npl"])
def test_demo_rates_equal_pandas(demo_db, demo_data, metric):
    con = duckdb.connect(str(demo_db), read_only=True)
    raw = con.execute(
        "select l.province, lm.dpd, lm.status, lm.outstanding_principal::double as balance "
        "from loans l join loan_months lm using (loan_id) where lm.snapshot_date = ?",
        [demo_data.as_of],
    ).df()
    con.close()
    active = raw[~raw["status"].isin(["paid_off", "charged_off"])].copy()
    active["bad"] = active["dpd"] > BAD_DPD[metric]
    active["bad_balance"] = active["balance"].where(active["bad"], 0.0)
    expected = active.groupby("province").agg(
        loans=("bad", "size"), bad_loans=("bad", "sum"), balance=("balance", "sum"),
        bad_balance=("bad_balance", "sum"),
    )
    lower, upper = proportion_confint(expected["bad_loans"], expected["loans"], method="wilson")

    table = regions.region_rates(demo_data, metric=metric).table.set_index("region")
    assert table["matched"].all()
    assert sorted(table.index) == sorted(expected.index)
    for index, (province, row) in enumerate(expected.iterrows()):
        got = table.loc[province]
        assert got["loans"] == row["loans"], province
        assert got["bad_loans"] == row["bad_loans"], province
        assert got["balance"] == pytest.approx(row["balance"]), province
        assert got["balance_rate"] == pytest.approx(row["bad_balance"] / row["balance"]), province
        assert got["rate"] == pytest.approx(row["bad_loans"] / row["loans"]), province
        assert got["ci_lower"] == pytest.approx(lower.iloc[index], abs=1e-12), province
        assert got["ci_upper"] == pytest.approx(upper.iloc[index], abs=1e-12), province


def test_demo_large_province_risk_order_recovered(demo_data, demo_truth):
    """Pooled over the page's 13-month trend window, the M1+ rate orders the five largest
    provinces as their true hazards do. One month alone is too noisy for adjacent pairs."""
    truth_order = demo_truth["provinces"]["large_province_risk_order"]
    trend = regions.region_trend(demo_data, truth_order, metric="m1plus", by="count")
    assert trend["month"].nunique() == regions.DEFAULT_TREND_MONTHS
    pooled = trend.groupby("region")[["bad_loans", "loans"]].sum()
    observed = (pooled["bad_loans"] / pooled["loans"]).sort_values().index.tolist()
    assert observed == truth_order


def test_demo_as_of_ranking_separates_risk_groups(demo_data, demo_truth):
    """At the as-of month the two lowest-hazard large provinces rank below the three highest."""
    truth_order = demo_truth["provinces"]["large_province_risk_order"]
    table = regions.region_rates(demo_data, metric="m1plus", by="count").table.set_index("region")
    ranks = table.loc[truth_order, "rank"]
    assert ranks[truth_order[:2]].min() > ranks[truth_order[2:]].max()


def test_demo_cities_match_truth_codes(demo_data, demo_truth):
    cities = demo_truth["provinces"]["cities"]["广东省"]
    table = regions.region_rates(demo_data, level="city", province="广东省", min_size=0).table
    matched = table[table["matched"]]
    assert dict(zip(matched["region"], matched["region_code"])) == cities
