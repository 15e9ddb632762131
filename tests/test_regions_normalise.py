"""Region name and code normalisation (ingest/regions.py) and its reference table.

Expected names are the official GB/T 2260 names, checked by hand against the source
adcode list (cpca 0.5.5 adcodes.csv).
"""

from __future__ import annotations

import csv
import time

import numpy as np
import pandas as pd
import pytest

from ingest import regions


@pytest.mark.parametrize(
    "value",
    [
        "广东",
        "广东省",
        "440000",
        440000,
        440000.0,
        "440305",
        "440305000000",
        "广东省深圳市",
        "广东深圳",
        " 广 东 省 ",
        "广东省\u3000",
        "４４００００",  # full-width digits
        "广东省深圳市南山区",
        "深圳市",
        "Guangdong",
        "guangdong province",
    ],
)
def test_normalise_province_guangdong_forms(value):
    assert regions.normalise_province(value) == "广东省"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("内蒙古", "内蒙古自治区"),
        ("内蒙古自治区", "内蒙古自治区"),
        ("Inner Mongolia", "内蒙古自治区"),
        ("广西", "广西壮族自治区"),
        ("广西省", "广西壮族自治区"),
        ("新疆", "新疆维吾尔自治区"),
        ("宁夏", "宁夏回族自治区"),
        ("西藏", "西藏自治区"),
        ("北京", "北京市"),
        ("重庆市", "重庆市"),
        ("香港", "香港特别行政区"),
        ("Hong Kong SAR", "香港特别行政区"),
        ("澳门", "澳门特别行政区"),
        ("台湾", "台湾省"),
        ("陕西", "陕西省"),
        ("山西", "山西省"),
        ("海南", "海南省"),
        # A Qinghai prefecture whose name starts with 海南: the city match wins.
        ("海南藏族自治州", "青海省"),
        ("吉林市", "吉林省"),
        ("500229", "重庆市"),
    ],
)
def test_normalise_province_named_cases(value, expected):
    assert regions.normalise_province(value) == expected


@pytest.mark.parametrize(
    "value",
    [None, float("nan"), "", "  ", "NaN", "广栋省", "CA", "TX", "123456", "99", "abc", "省"],
)
def test_normalise_province_unknown_is_none(value):
    assert regions.normalise_province(value) is None


def test_normalise_province_every_unit_by_name_short_and_code():
    provinces = regions.reference_table("province")
    assert len(provinces) == 34
    for row in provinces.itertuples():
        assert regions.normalise_province(row.name) == row.name
        assert regions.normalise_province(row.short_name) == row.name
        assert regions.normalise_province(row.code) == row.name
        assert regions.normalise_province(row.name_en) == row.name


@pytest.mark.parametrize(
    ("value", "province", "expected"),
    [
        ("深圳", None, "深圳市"),
        ("深圳市", "广东", "深圳市"),
        ("广东省深圳市南山区", None, "深圳市"),
        ("440305", None, "深圳市"),
        ("440305000000", None, "深圳市"),
        ("北京", None, "北京市"),
        ("北京市海淀区", None, "北京市"),
        ("海淀区", None, "北京市"),
        ("吉林市", None, "吉林市"),
        ("延边", None, "延边朝鲜族自治州"),
        ("仙桃市", None, "仙桃市"),
        ("朝阳区", "北京", "北京市"),
        ("朝阳区", "吉林省", "长春市"),
        ("ｓｈｅｎｚｈｅｎ", None, None),
    ],
)
def test_normalise_city_cases(value, province, expected):
    assert regions.normalise_city(value, province) == expected


@pytest.mark.parametrize(
    ("value", "province"),
    [
        ("朝阳区", None),  # in Beijing and Changchun: ambiguous without a province
        ("深圳", "湖南"),  # a city of another province
        ("广东省", None),  # a province only
        ("深训市", None),  # misspelt
        (None, "广东"),
    ],
)
def test_normalise_city_unresolved_is_none(value, province):
    assert regions.normalise_city(value, province) is None


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("440305", ("广东省", "深圳市", "南山区")),
        ("440305000000", ("广东省", "深圳市", "南山区")),
        (440305, ("广东省", "深圳市", "南山区")),
        ("440300", ("广东省", "深圳市", None)),
        ("440000", ("广东省", None, None)),
        ("110108", ("北京市", "北京市", "海淀区")),
        ("500229", ("重庆市", "重庆市", "城口县")),
        ("429004", ("湖北省", "仙桃市", None)),
        ("469021", ("海南省", "定安县", None)),
        ("440399", ("广东省", "深圳市", None)),  # county code not in the reference
        ("449999", (None, None, None)),  # no prefecture 4499 in Guangdong
        ("123456", (None, None, None)),
        ("710000", ("台湾省", None, None)),
        ("990000", (None, None, None)),
        ("4403", (None, None, None)),
        ("abc", (None, None, None)),
        (None, (None, None, None)),
    ],
)
def test_regions_from_code_cases(code, expected):
    assert regions.regions_from_code(code) == expected


def test_series_forms_equal_scalar_forms():
    values = pd.Series(["广东", "广东省", "440000", "广栋省", None, np.nan, "朝阳区", "北京"] * 3)
    provinces = pd.Series(["广东", None, "北京", "广东", "广东", None, "北京", None] * 3)

    province_result = regions.normalise_province_series(values)
    city_result = regions.normalise_city_series(values, provinces)
    code_result = regions.regions_from_code_series(pd.Series(["440305", None, "x", "110108"]))

    assert province_result.tolist() == [regions.normalise_province(v) for v in values]
    assert city_result.tolist() == [
        regions.normalise_city(v, p) for v, p in zip(values, provinces)
    ]
    assert code_result.values.tolist() == [
        list(regions.regions_from_code(c)) for c in ["440305", None, "x", "110108"]
    ]


def test_series_forms_keep_index():
    values = pd.Series(["广东", "x"], index=[10, 20])
    assert regions.normalise_province_series(values).index.tolist() == [10, 20]
    assert regions.regions_from_code_series(values).index.tolist() == [10, 20]


def test_series_city_length_mismatch_raises():
    with pytest.raises(ValueError, match="same length"):
        regions.normalise_city_series(pd.Series(["深圳"]), pd.Series(["广东", "广东"]))


def test_series_million_rows_is_fast():
    rng = np.random.default_rng(7)
    names = regions.reference_table("province")["short_name"].tolist() + ["未知"]
    values = pd.Series(rng.choice(names, size=1_000_000))

    started = time.perf_counter()
    result = regions.normalise_province_series(values)
    elapsed = time.perf_counter() - started

    assert result.isna().sum() == (values == "未知").sum()
    # Distinct values only: about 0.1 s on a laptop; 5 s catches a per-row loop.
    assert elapsed < 5


def test_reference_table_shape():
    table = regions.reference_table()
    counts = table["level"].value_counts()
    assert counts["province"] == 34
    assert counts["city"] > 360
    assert counts["county"] > 2800
    assert table["code"].is_unique
    assert table["code"].str.fullmatch(r"\d{6}").all()
    assert not table["name"].isin(["市辖区", "县", "省直辖县级行政区划"]).any()
    cities = table[table["level"] == "city"]
    assert cities["province_code"].isin(table.loc[table["level"] == "province", "code"]).all()
    counties = table[table["level"] == "county"]
    assert counties["city_code"].isin(cities["code"]).all()


def test_reference_table_codes_match_source(realdata):
    """Every reference code (other than re-parented ones) has the same name in cpca."""
    with (realdata / "cn-admin-divisions" / "cpca_adcodes.csv").open(encoding="utf-8") as handle:
        source = {row["adcode"][:6]: row["name"] for row in csv.DictReader(handle)}
    table = regions.reference_table()
    municipal_cities = table["code"].isin(["110100", "120100", "310100", "500100"])
    for row in table[~municipal_cities].itertuples():
        assert source[row.code] == row.name, row.code


def test_reference_table_level_rejects_unknown():
    with pytest.raises(ValueError, match="level must be one of"):
        regions.reference_table("town")
