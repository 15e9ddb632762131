"""Regional rates (analysis/regions.py) against an independent computation.

Expected values come from a plain pandas reimplementation on the raw rows (or on the
source CSV for the OpenIntro sample), with Wilson intervals from statsmodels
``proportion_confint(method="wilson")``; region names in the expected values come from a
hand-written mapping, not from ingest.regions.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from analysis import regions
from analysis.filters import Filters
from ingest import facts
from queries import db
from tests.fixtures_regions import (
    MIXED_AS_OF,
    OPENINTRO_CSV,
    build_county_db,
    build_mixed_db,
    build_openintro_db,
)

# Hand mapping of the mixed tape's province spellings (see tests/fixtures_regions.py).
MIXED_NAMES = {
    "广东": "广东省",
    "广东省": "广东省",
    "440000": "广东省",
    "浙江省": "浙江省",
    " 浙江 ": "浙江省",
    "内蒙古": "内蒙古自治区",
    "广栋省": "广栋省",
}
BAD_DPD = {"m1plus": 0, "par30": 30, "npl": 90}


@pytest.fixture(scope="module")
def mixed_path(tmp_path_factory):
    return build_mixed_db(tmp_path_factory.mktemp("mixed") / "mixed.duckdb")


@pytest.fixture(scope="module")
def mixed_data(mixed_path):
    con = db.connect(mixed_path, read_only=True)
    try:
        yield regions.load_region_months(con, Filters())
    finally:
        con.close()


@pytest.fixture(scope="module")
def openintro_data(tmp_path_factory):
    path = build_openintro_db(tmp_path_factory.mktemp("openintro") / "openintro.duckdb")
    con = db.connect(path, read_only=True)
    try:
        yield regions.load_region_months(con, Filters())
    finally:
        con.close()


def _raw_snapshot(path, month: dt.date) -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "select l.loan_id, l.province, lm.dpd, lm.status, "
            "lm.outstanding_principal::double as balance "
            "from loans l join loan_months lm using (loan_id) where lm.snapshot_date = ?",
            [month],
        ).df()
    finally:
        con.close()


def _expected(frame: pd.DataFrame, region_column: str, bad: pd.Series) -> pd.DataFrame:
    """Plain pandas rates with statsmodels Wilson intervals."""
    frame = frame.assign(bad=bad, bad_balance=np.where(bad, frame["balance"], 0.0))
    grouped = frame.groupby(region_column).agg(
        loans=("bad", "size"), bad_loans=("bad", "sum"), balance=("balance", "sum"),
        bad_balance=("bad_balance", "sum"),
    )
    lower, upper = proportion_confint(grouped["bad_loans"], grouped["loans"], alpha=0.05,
                                      method="wilson")
    grouped["count_rate"] = grouped["bad_loans"] / grouped["loans"]
    grouped["balance_rate"] = grouped["bad_balance"] / grouped["balance"]
    grouped["ci_lower"] = lower
    grouped["ci_upper"] = upper
    return grouped


@pytest.mark.parametrize("metric", ["m1plus", "par30", "npl"])
def test_mixed_tape_rates_equal_pandas(mixed_path, mixed_data, metric):
    raw = _raw_snapshot(mixed_path, MIXED_AS_OF)
    active = raw[~raw["status"].isin(["paid_off", "charged_off"]) & raw["province"].notna()].copy()
    active["region"] = active["province"].map(MIXED_NAMES)
    expected = _expected(active, "region", active["dpd"] > BAD_DPD[metric])

    result = regions.region_rates(mixed_data, metric=metric, by="count").table
    result = result[result["region"].notna()].set_index("region")

    assert sorted(result.index) == sorted(expected.index)
    for region, row in expected.iterrows():
        got = result.loc[region]
        assert got["loans"] == row["loans"], region
        assert got["bad_loans"] == row["bad_loans"], region
        assert got["balance"] == pytest.approx(row["balance"]), region
        assert got["bad_balance"] == pytest.approx(row["bad_balance"]), region
        assert got["rate"] == pytest.approx(row["count_rate"]), region
        assert got["ci_lower"] == pytest.approx(row["ci_lower"], abs=1e-12), region
        assert got["ci_upper"] == pytest.approx(row["ci_upper"], abs=1e-12), region
        assert got["balance_rate"] == pytest.approx(row["balance_rate"]), region


def test_mixed_tape_spellings_join_and_misspelling_reported(mixed_data):
    rates = regions.region_rates(mixed_data)
    table = rates.table

    guangdong = table[table["region"] == "广东省"]
    assert len(guangdong) == 1
    assert guangdong["region_code"].item() == "440000"
    assert bool(guangdong["matched"].item())
    assert (table["region"] == "广东").sum() == 0
    assert (table["region"] == "440000").sum() == 0

    assert "广栋省" in rates.unmatched["value"].tolist()
    misspelt = table[table["region"] == "广栋省"]
    assert len(misspelt) == 1
    assert not bool(misspelt["matched"].item())
    assert None in rates.unmatched["value"].tolist()
    assert rates.unmatched_loans == int(table.loc[~table["matched"], "loans"].sum())
    assert rates.missing_loans > 0


def test_mixed_tape_three_guangdong_forms_sum(mixed_path, mixed_data):
    raw = _raw_snapshot(mixed_path, MIXED_AS_OF)
    active = raw[~raw["status"].isin(["paid_off", "charged_off"])]
    forms = active[active["province"].isin(["广东", "广东省", "440000"])]
    table = regions.region_rates(mixed_data).table
    assert table.loc[table["region"] == "广东省", "loans"].item() == len(forms)


def test_min_size_greys_and_unranks(mixed_data):
    table = regions.region_rates(mixed_data, min_size=30).table.set_index("region", drop=False)
    small = table[table["loans"] < 30]
    assert "内蒙古自治区" in small.index
    assert small["below_min_size"].all()
    assert small["rank"].isna().all()
    ranked = table.dropna(subset=["rank"]).sort_values("rank")
    assert (ranked["loans"] >= 30).all()
    assert ranked["rate"].is_monotonic_decreasing
    assert ranked["rank"].tolist()[0] == 1

    everything = regions.region_rates(mixed_data, min_size=0).table
    assert everything.loc[everything["region"].notna(), "rank"].notna().all()


def test_balance_basis_has_no_interval(mixed_data):
    table = regions.region_rates(mixed_data, by="balance").table
    assert table["ci_lower"].isna().all()
    assert table["ci_upper"].isna().all()
    assert (table["rate"] == table["balance_rate"]).all()


def test_drill_down_to_cities(mixed_path, mixed_data):
    raw = _raw_snapshot(mixed_path, MIXED_AS_OF)
    con = duckdb.connect(str(mixed_path), read_only=True)
    cities = con.execute("select loan_id, city, region_code from loans").df()
    con.close()
    active = raw[~raw["status"].isin(["paid_off", "charged_off"])].merge(cities, on="loan_id")
    zhejiang = active[active["province"].isin(["浙江省", " 浙江 "])].copy()
    # Hand mapping: 杭州市 as written, 宁波 short form, 330100 the code of 杭州市.
    zhejiang["region"] = np.where(
        zhejiang["city"].eq("宁波"), "宁波市",
        np.where(zhejiang["city"].eq("杭州市") | zhejiang["region_code"].eq("330100"), "杭州市", None),
    )
    expected = zhejiang.groupby("region").size()

    table = regions.region_rates(mixed_data, level="city", province="浙江").table
    got = table.set_index("region")["loans"]
    assert got.to_dict() == expected.to_dict()
    assert set(table["region_code"]) == {"330100", "330200"}


def test_drill_down_rejects_unknown_province(mixed_data):
    with pytest.raises(ValueError, match="matches no Chinese province"):
        regions.region_rates(mixed_data, level="city", province="广栋省")


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [
        ("level", "town", "level must be one of"),
        ("metric", "m2plus", "metric must be one of"),
        ("by", "amount", "by must be one of"),
        ("min_size", -1, "minimum size must be 0 or more"),
    ],
)
def test_region_rates_rejects_bad_option(mixed_data, argument, value, message):
    with pytest.raises(ValueError, match=message):
        regions.region_rates(mixed_data, **{argument: value})


def test_trend_matches_monthly_pandas(mixed_path, mixed_data):
    trend = regions.region_trend(mixed_data, ["广东省", "浙江省"], metric="par30")
    assert sorted(trend["region"].unique()) == ["广东省", "浙江省"]
    assert len(trend) == 6  # three months each
    for month in trend["month"].unique():
        raw = _raw_snapshot(mixed_path, month)
        active = raw[~raw["status"].isin(["paid_off", "charged_off"]) & raw["province"].notna()].copy()
        active["region"] = active["province"].map(MIXED_NAMES)
        expected = _expected(active, "region", active["dpd"] > 30)
        for row in trend[trend["month"] == month].itertuples():
            assert row.loans == expected.loc[row.region, "loans"]
            assert row.rate == pytest.approx(expected.loc[row.region, "count_rate"])
            assert row.ci_lower == pytest.approx(expected.loc[row.region, "ci_lower"], abs=1e-12)


def test_default_trend_regions_top_and_bottom(mixed_data):
    rates = regions.region_rates(mixed_data, min_size=0)
    ranked = rates.table.dropna(subset=["rank"]).sort_values("rank")["region"].tolist()
    picked = regions.default_trend_regions(rates, count=1)
    assert picked == [ranked[0], ranked[-1]]


def test_wilson_interval_equals_statsmodels():
    successes = np.array([0, 1, 5, 50, 99, 100, 3])
    trials = np.array([10, 10, 40, 100, 100, 100, 1_000_000])
    lower, upper = regions.wilson_interval(successes, trials)
    expected_lower, expected_upper = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    np.testing.assert_allclose(lower, expected_lower, atol=1e-12)
    np.testing.assert_allclose(upper, expected_upper, atol=1e-12)


def test_wilson_interval_zero_trials_is_nan():
    lower, upper = regions.wilson_interval([0], [0])
    assert np.isnan(lower[0])
    assert np.isnan(upper[0])


# OpenIntro Lending Club sample: US states, one snapshot ------------------------------------

OPENINTRO_BAD = {
    "m1plus": {"In Grace Period", "Late (16-30 days)", "Late (31-120 days)"},
    "par30": {"Late (31-120 days)"},
    "npl": set(),
}


@pytest.mark.parametrize("metric", ["m1plus", "par30", "npl"])
@pytest.mark.parametrize("by", ["count", "balance"])
def test_openintro_rates_equal_pandas(openintro_data, metric, by):
    source = pd.read_csv(OPENINTRO_CSV)
    active = source[~source["loan_status"].isin(["Fully Paid", "Charged Off"])].copy()
    active["balance"] = active["balance"].astype(float)
    expected = _expected(active, "state", active["loan_status"].isin(OPENINTRO_BAD[metric]))

    rates = regions.region_rates(openintro_data, metric=metric, by=by)
    result = rates.table.set_index("region")

    assert sorted(result.index) == sorted(expected.index)
    assert not rates.any_matched
    for state, row in expected.iterrows():
        got = result.loc[state]
        assert got["loans"] == row["loans"], state
        assert got["bad_loans"] == row["bad_loans"], state
        assert got["balance"] == pytest.approx(row["balance"]), state
        assert got["rate"] == pytest.approx(row[f"{by}_rate"]), state
        if by == "count":
            assert got["ci_lower"] == pytest.approx(row["ci_lower"], abs=1e-12), state
            assert got["ci_upper"] == pytest.approx(row["ci_upper"], abs=1e-12), state
        assert bool(got["below_min_size"]) == (row["loans"] < 30), state


def test_openintro_states_listed_unmatched_but_ranked(openintro_data):
    rates = regions.region_rates(openintro_data)
    assert len(rates.unmatched) == rates.table["region"].nunique()
    assert "CA" in rates.unmatched["value"].tolist()
    assert rates.table["rank"].notna().sum() == (rates.table["loans"] >= 30).sum()
    tiles = regions.tile_map_frame(rates)
    assert not tiles["has_data"].any()


def test_empty_database_gives_empty_result(con):
    data = regions.load_region_months(con, Filters())
    assert data.as_of is None
    rates = regions.region_rates(data)
    assert rates.table.empty
    assert rates.unmatched.empty
    assert regions.region_trend(data, ["广东省"]).empty


def test_as_of_filter_uses_that_month(mixed_path):
    con = db.connect(mixed_path, read_only=True)
    try:
        data = regions.load_region_months(con, Filters(as_of=dt.date(2025, 5, 31)), months=1)
    finally:
        con.close()
    assert data.as_of == dt.date(2025, 5, 31)
    assert set(data.frame["month"]) == {dt.date(2025, 5, 31)}
    raw = _raw_snapshot(mixed_path, dt.date(2025, 5, 31))
    assert data.frame["loans"].sum() == (~raw["status"].isin(["paid_off", "charged_off"])).sum()


def test_par30_restructured_toggle(tmp_path):
    path = build_mixed_db(tmp_path / "restructured.duckdb")
    con = duckdb.connect(str(path))
    con.execute(
        "update loan_months set status = 'restructured', dpd = 0 "
        "where snapshot_date = ? and loan_id in ('M0001', 'M0002')",
        [MIXED_AS_OF],
    )
    facts.rebuild(con)
    con.close()
    con = db.connect(path, read_only=True)
    try:
        plain = regions.load_region_months(con, Filters(), months=1)
        toggled = regions.load_region_months(con, Filters(), months=1, par30_restructured=True)
    finally:
        con.close()
    assert toggled.frame["par30_loans"].sum() == plain.frame["par30_loans"].sum() + 2


def test_npl_presets_share_the_91_day_floor():
    assert regions.npl_floor("bank_2023") == 90
    assert regions.npl_floor("simple_90_180_360") == 90
    with pytest.raises(ValueError, match="npl preset must be one of"):
        regions.npl_floor("basel")


def test_query_columns_match_its_documentation(mixed_path):
    import queries

    query = queries.get_query("region_month_totals")
    documented = [
        "month", "province_text", "city_text", "county_text", "region_code", "loans", "balance",
        "m1plus_loans", "m1plus_balance", "par30_loans", "par30_balance", "npl_loans", "npl_balance",
    ]
    for column in documented:
        assert column in query.doc, column
    con = db.connect(mixed_path, read_only=True)
    try:
        frame = queries.run(con, "region_month_totals", {
            **Filters().params(), "as_of": MIXED_AS_OF, "from_month": MIXED_AS_OF,
            "npl_dpd": 90, "par30_restructured": False,
        })
    finally:
        con.close()
    assert frame.columns.tolist() == documented


def test_county_names_repeat_across_cities(tmp_path):
    """鼓楼区 exists in 南京市 and 徐州市 (both 江苏省): two rows, named with their city."""
    path = build_county_db(tmp_path / "counties.duckdb")
    con = db.connect(path, read_only=True)
    try:
        data = regions.load_region_months(con, Filters(), months=1)
    finally:
        con.close()

    nationwide = regions.region_rates(data, level="county", min_size=0).table.set_index("region")
    assert nationwide.loc["南京市鼓楼区", "loans"] == 2
    assert nationwide.loc["南京市鼓楼区", "region_code"] == "320106"
    assert nationwide.loc["徐州市鼓楼区", "loans"] == 1
    assert nationwide.loc["徐州市鼓楼区", "rate"] == 1.0
    assert nationwide.loc["杭州市西湖区", "region_code"] == "330106"

    within_city = regions.region_rates(data, level="county", province="江苏", city="南京",
                                       min_size=0).table
    assert within_city["region"].tolist() == ["鼓楼区"]
    assert within_city["region_code"].tolist() == ["320106"]
