"""Regional overdue rates (区域分布): M1+, PAR30 and NPL rates by province, city or county.

Definitions (docs/en/regions.md): at the as-of month-end t, the denominator is the loans
active at t (a snapshot at t whose status is neither paid_off nor charged_off) in the
region. The numerator is those with dpd > 0 (M1+), dpd > 30 (PAR30, optionally also
restructured or extended loans) or dpd above the 次级 floor of the five-category preset
(NPL = 次级 + 可疑 + 损失). Rates are by loan count or by outstanding balance; count rates
carry Wilson score intervals. Regions with fewer active loans than a minimum size are
flagged and left out of the ranking.

Region fields are normalised (ingest.regions) before they are grouped, so 广东, 广东省 and
440000 are one region. A value that matches no Chinese region keeps its own text as the
region name (US states in a Lending Club tape still get a row) and is listed as unmatched.

The page and ``python -m analysis regions`` both call :func:`load_region_months` and then
:func:`region_rates`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import norm

import queries
from analysis.cli import Command
from analysis.filters import Filters, resolve_as_of
from analysis.kpis import CLASSIFICATION_PRESETS, DEFAULT_PRESET
from ingest import regions as reference

logger = logging.getLogger(__name__)

LEVELS = ("province", "city", "county")
METRICS = ("m1plus", "par30", "npl")
BASES = ("count", "balance")
DEFAULT_MIN_SIZE = 30
DEFAULT_TREND_MONTHS = 13
CONFIDENCE = 0.95

# Columns of the report command, in order.
REPORT_COLUMNS = [
    "region",
    "loans",
    "balance",
    "bad_loans",
    "bad_balance",
    "rate",
    "ci_lower",
    "ci_upper",
    "below_min_size",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_GEOJSON = REPO_ROOT / "data" / "china_provinces_ne.geojson"
GEOJSON_ENV = "LOANLENS_GEOJSON"

# Tile-grid positions (row from the top, column from the left) of the 34 province-level
# units: one equal tile each, placed roughly where the unit lies, so that small units
# (Beijing, Shanghai, Hong Kong) are as visible as large ones.
TILE_GRID: dict[str, tuple[int, int]] = {
    "230000": (0, 7),  # 黑龙江
    "150000": (1, 4),  # 内蒙古
    "110000": (1, 5),  # 北京
    "210000": (1, 6),  # 辽宁
    "220000": (1, 7),  # 吉林
    "650000": (2, 0),  # 新疆
    "630000": (2, 1),  # 青海
    "620000": (2, 2),  # 甘肃
    "640000": (2, 3),  # 宁夏
    "140000": (2, 4),  # 山西
    "130000": (2, 5),  # 河北
    "120000": (2, 6),  # 天津
    "540000": (3, 1),  # 西藏
    "510000": (3, 2),  # 四川
    "610000": (3, 3),  # 陕西
    "410000": (3, 4),  # 河南
    "370000": (3, 5),  # 山东
    "500000": (4, 2),  # 重庆
    "420000": (4, 3),  # 湖北
    "340000": (4, 4),  # 安徽
    "320000": (4, 5),  # 江苏
    "310000": (4, 6),  # 上海
    "530000": (5, 1),  # 云南
    "520000": (5, 2),  # 贵州
    "430000": (5, 3),  # 湖南
    "360000": (5, 4),  # 江西
    "330000": (5, 5),  # 浙江
    "450000": (6, 2),  # 广西
    "440000": (6, 3),  # 广东
    "350000": (6, 4),  # 福建
    "710000": (6, 6),  # 台湾
    "460000": (7, 2),  # 海南
    "820000": (7, 3),  # 澳门
    "810000": (7, 4),  # 香港
}


@dataclass(frozen=True)
class RegionMonths:
    """Active-loan totals per month and raw region fields, as loaded from the database.

    ``frame`` has the columns of the ``region_month_totals`` query with balances as floats,
    plus the normalised ``province``, ``city`` and ``county`` (see resolve_regions);
    ``as_of`` is the as-of month-end (None when the database has no snapshots).
    """

    frame: pd.DataFrame
    as_of: dt.date | None
    npl_preset: str
    npl_dpd: int
    par30_restructured: bool


@dataclass(frozen=True)
class RegionRates:
    """Rates of one metric per region at one month-end.

    ``table`` columns: region (name; None for loans without any region value), level,
    region_code (6 digits when matched), province, matched (bool), loans, balance (yuan),
    bad_loans, bad_balance (yuan), rate (fraction), ci_lower, ci_upper (Wilson, count
    rates only, else NaN), below_min_size (bool), rank (1 = highest rate among regions at
    or above the minimum size; NaN otherwise). Sorted by rank, then by loans.

    ``unmatched`` lists the region values that matched no Chinese region: value (as
    written, whitespace removed; None for missing), loans, balance.
    """

    table: pd.DataFrame
    unmatched: pd.DataFrame
    as_of: dt.date | None
    level: str
    metric: str
    by: str
    min_size: int
    npl_preset: str
    npl_dpd: int
    province: str | None = None
    city: str | None = None
    unmatched_loans: int = 0
    missing_loans: int = 0
    total_loans: int = 0

    @property
    def any_matched(self) -> bool:
        """Tell whether at least one region joined the Chinese reference (the map can be drawn)."""
        return bool(self.table["matched"].any()) if len(self.table) else False

    def report(self) -> pd.DataFrame:
        """Return the report-command table: REPORT_COLUMNS in order."""
        return self.table[REPORT_COLUMNS].reset_index(drop=True)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")


def npl_floor(preset: str) -> int:
    """Return the dpd above which a loan is 次级 or worse in a five-category preset."""
    _check_choice("npl preset", preset, tuple(CLASSIFICATION_PRESETS))
    return CLASSIFICATION_PRESETS[preset].substandard_dpd


def wilson_interval(
    successes, trials, confidence: float = CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """Return the Wilson score interval (lower, upper) of successes / trials, elementwise.

    lower, upper = (p + z²/2n ∓ z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n), with p = x/n and
    z the 1 − (1 − confidence)/2 normal quantile (Wilson 1927). Where trials is 0 both
    bounds are NaN.
    """
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = norm.ppf(1 - (1 - confidence) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denominator = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denominator
        half_width = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
        lower = np.clip(centre - half_width, 0, 1)
        upper = np.clip(centre + half_width, 0, 1)
    empty = n <= 0
    lower = np.where(empty, np.nan, lower)
    upper = np.where(empty, np.nan, upper)
    return lower, upper


def _months_before(month_end: dt.date, months: int) -> dt.date:
    """Return the month-end ``months`` months before ``month_end``."""
    return (pd.Timestamp(month_end) - pd.offsets.MonthEnd(months)).date()


def load_region_months(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    *,
    months: int = DEFAULT_TREND_MONTHS,
    npl_preset: str = DEFAULT_PRESET,
    par30_restructured: bool = False,
) -> RegionMonths:
    """Load active-loan totals by raw region fields for the ``months`` month-ends up to as-of.

    The as-of month is ``filters.as_of`` or the latest month in the data. ``months`` = 1
    loads the as-of month only.
    """
    if months < 1:
        raise ValueError(f"months must be at least 1; got {months}")
    dpd = npl_floor(npl_preset)
    filters = resolve_as_of(con, filters)
    columns = [
        "month", "province_text", "city_text", "county_text", "region_code", "loans",
        "balance", "m1plus_loans", "m1plus_balance", "par30_loans", "par30_balance",
        "npl_loans", "npl_balance",
    ]
    if filters.as_of is None:
        empty = resolve_regions(pd.DataFrame(columns=columns))
        return RegionMonths(empty, None, npl_preset, dpd, par30_restructured)
    params = {
        **filters.params(),
        "from_month": _months_before(filters.as_of, months - 1),
        "npl_dpd": dpd,
        "par30_restructured": par30_restructured,
    }
    frame = queries.run(con, "region_month_totals", params)
    for column in ("balance", "m1plus_balance", "par30_balance", "npl_balance"):
        frame[column] = frame[column].astype(float)
    frame["month"] = pd.to_datetime(frame["month"]).dt.date
    frame = resolve_regions(frame)
    logger.info(
        "loaded %d region-month rows for %s to %s", len(frame), params["from_month"], filters.as_of
    )
    return RegionMonths(frame, filters.as_of, npl_preset, dpd, par30_restructured)


def _resolve_combination(province_text, city_text, county_text, region_code) -> dict:
    """Return the normalised province, city and county of one combination of raw fields.

    The named fields win; the region code fills what they leave missing or unmatched. A
    province field holding a whole address (广东省深圳市) also gives the city.
    """
    code_province, code_city, code_county = reference.regions_from_code(region_code)
    province = reference.normalise_province(province_text)
    if province is None and reference.clean_text(province_text) is None:
        province = code_province or reference.normalise_province(city_text)
    elif province is None:
        province = code_province

    city = reference.normalise_city(city_text, province) if province else None
    if city is None and code_city and code_province == province:
        city = code_city
    if city is None and province and reference.clean_text(city_text) is None:
        city = reference.normalise_city(province_text, province)

    county = reference.normalise_county(county_text, province, city) if city else None
    if county is None and code_county and code_city == city:
        county = code_county
    return {"province": province, "city": city, "county": county}


def resolve_regions(frame: pd.DataFrame) -> pd.DataFrame:
    """Add normalised ``province``, ``city`` and ``county`` columns to a region_month_totals frame.

    Each distinct combination of raw fields is resolved once.
    """
    keys = ["province_text", "city_text", "county_text", "region_code"]
    if frame.empty:
        return frame.assign(province=pd.Series(dtype=object), city=pd.Series(dtype=object),
                            county=pd.Series(dtype=object))
    combinations = frame[keys].drop_duplicates().reset_index(drop=True)
    resolved = pd.DataFrame(
        [_resolve_combination(*row) for row in combinations.itertuples(index=False, name=None)]
    )
    combinations = pd.concat([combinations, resolved], axis=1)
    # Merge on raw text with nulls: fill them with a marker no region value can hold.
    marker = "\x00"
    merged = frame.fillna({key: marker for key in keys}).merge(
        combinations.fillna({key: marker for key in keys}), on=keys, how="left"
    )
    for key in keys:
        merged[key] = merged[key].replace(marker, None)
    return merged


def _resolved(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with normalised region columns, resolving them if not done yet."""
    if {"province", "city", "county"} <= set(frame.columns):
        return frame
    return resolve_regions(frame)


def _raw_label(frame: pd.DataFrame, level: str) -> pd.Series:
    """Return the cleaned raw text naming each row's region at ``level`` (None when missing)."""
    text_column = {"province": "province_text", "city": "city_text", "county": "county_text"}[level]
    labels = frame[text_column].map(reference.clean_text)
    if level == "province":
        labels = labels.fillna(frame["region_code"].map(reference.clean_text))
    return labels.astype(object).where(labels.notna(), None)


def _region_codes(names: pd.Series, level: str, provinces: pd.Series,
                  cities: pd.Series) -> pd.Series:
    """Return the 6-digit codes of normalised region names at ``level``.

    City names are unique within a province and county names within a city, so the parent
    names pick the code.
    """
    table = reference.reference_table(level)
    if level == "province":
        return names.map(dict(zip(table["name"], table["code"])))
    if level == "city":
        parents = reference.reference_table("province")
        parent_codes = dict(zip(parents["name"], parents["code"]))
        lookup = {(row.province_code, row.name): row.code for row in table.itertuples()}
        keys = zip(provinces.map(parent_codes), names)
    else:
        parents = reference.reference_table("city")
        parent_codes = {(row.province_code, row.name): row.code for row in parents.itertuples()}
        province_codes = provinces.map(reference.province_code)
        city_codes = [parent_codes.get((p, c)) for p, c in zip(province_codes, cities)]
        lookup = {(row.city_code, row.name): row.code for row in table.itertuples()}
        keys = zip(city_codes, names)
    return pd.Series([lookup.get(key) for key in keys], index=names.index, dtype=object)


def region_rates(
    data: RegionMonths,
    *,
    level: str = "province",
    metric: str = "m1plus",
    by: str = "count",
    min_size: int = DEFAULT_MIN_SIZE,
    province: str | None = None,
    city: str | None = None,
    month: dt.date | None = None,
    confidence: float = CONFIDENCE,
) -> RegionRates:
    """Compute one metric per region at ``month`` (default: the as-of month).

    ``province`` (any form normalise_province accepts) keeps only that province's loans,
    for a drill-down to its cities or counties; ``city`` narrows further. At county level
    without ``city``, county names carry their city (南京市鼓楼区), since county names repeat.

    Raises
    ------
    ValueError
        For an unknown level, metric, basis, a negative minimum size, or a province or city
        that matches no region.
    """
    _check_choice("level", level, LEVELS)
    _check_choice("metric", metric, METRICS)
    _check_choice("by", by, BASES)
    if min_size < 0:
        raise ValueError(f"minimum size must be 0 or more active loans; got {min_size}")
    province_name = _resolve_scope_province(province)
    city_name = _resolve_scope_city(city, province_name)

    month = month or data.as_of
    frame = data.frame
    if month is not None:
        frame = frame[frame["month"] == month]
    frame = _scoped(_resolved(frame), province_name, city_name)
    table = _aggregate(frame, level, metric, confidence, qualify_counties=city_name is None)
    table = _rank(table, by, min_size)

    unmatched = (
        table.loc[~table["matched"], ["region", "loans", "balance"]]
        .rename(columns={"region": "value"})
        .sort_values("loans", ascending=False)
        .reset_index(drop=True)
    )
    missing_loans = int(table.loc[table["region"].isna(), "loans"].sum())
    unmatched_loans = int(table.loc[~table["matched"], "loans"].sum())
    if unmatched["value"].notna().any():
        logger.warning(
            "%d active loans in %d %s values matched no Chinese region (%d with no value): %s",
            unmatched_loans,
            len(unmatched),
            level,
            missing_loans,
            ", ".join(str(value) for value in unmatched["value"].head(20)),
        )
    return RegionRates(
        table=table,
        unmatched=unmatched,
        as_of=month,
        level=level,
        metric=metric,
        by=by,
        min_size=min_size,
        npl_preset=data.npl_preset,
        npl_dpd=data.npl_dpd,
        province=province_name,
        city=city_name,
        unmatched_loans=unmatched_loans,
        missing_loans=missing_loans,
        total_loans=int(table["loans"].sum()),
    )


def _resolve_scope_province(province: str | None) -> str | None:
    if province is None:
        return None
    name = reference.normalise_province(province)
    if name is None:
        raise ValueError(f"province {province!r} matches no Chinese province-level unit")
    return name


def _resolve_scope_city(city: str | None, province: str | None) -> str | None:
    if city is None:
        return None
    name = reference.normalise_city(city, province)
    if name is None:
        raise ValueError(f"city {city!r} matches no city" + (f" in {province}" if province else ""))
    return name


def _scoped(frame: pd.DataFrame, province: str | None, city: str | None) -> pd.DataFrame:
    if province is not None:
        frame = frame[frame["province"] == province]
    if city is not None:
        frame = frame[frame["city"] == city]
    return frame


def _aggregate(
    frame: pd.DataFrame, level: str, metric: str, confidence: float, by_month: bool = False,
    qualify_counties: bool = False,
) -> pd.DataFrame:
    """Sum the totals per region (and month) and compute both count and balance rates.

    With ``qualify_counties`` county names are prefixed by their city (南京市鼓楼区).
    """
    frame = frame.copy()
    frame["region"] = frame[level]
    frame["matched"] = frame["region"].notna()
    raw = _raw_label(frame, level)
    frame["region"] = frame["region"].where(frame["matched"], raw)
    # Parents of unmatched regions are not meaningful for the name: group them apart.
    # Counties keep their city, because one county name can exist in several cities.
    frame["province_group"] = frame["province"].where(frame["matched"], None)
    frame["city_group"] = frame["city"].where(frame["matched"] & (level == "county"), None)
    frame["bad_loans"] = frame[f"{metric}_loans"]
    frame["bad_balance"] = frame[f"{metric}_balance"]

    keys = (["month"] if by_month else []) + ["region", "matched", "province_group", "city_group"]
    grouped = (
        frame.groupby(keys, dropna=False, sort=False)[["loans", "balance", "bad_loans", "bad_balance"]]
        .sum()
        .reset_index()
        .rename(columns={"province_group": "province"})
    )
    for column in ("province", "city_group", "region"):
        grouped[column] = grouped[column].astype(object).where(grouped[column].notna(), None)
    grouped["matched"] = grouped["matched"].astype(bool)
    grouped["level"] = level
    grouped["region_code"] = _region_codes(
        grouped["region"], level, grouped["province"], grouped["city_group"]
    ).where(grouped["matched"], None)
    if level == "county" and qualify_counties:
        # 南京市鼓楼区 and 徐州市鼓楼区 are different counties: name them with their city.
        qualified = grouped["city_group"].fillna("") + grouped["region"].fillna("")
        grouped["region"] = qualified.where(grouped["matched"], grouped["region"])
    # Sums of float yuan amounts carry binary noise (7501089.869999999): round to the fen.
    grouped["balance"] = grouped["balance"].astype(float).round(2)
    grouped["bad_balance"] = grouped["bad_balance"].astype(float).round(2)
    grouped["loans"] = grouped["loans"].astype("int64")
    grouped["bad_loans"] = grouped["bad_loans"].astype("int64")
    grouped["count_rate"] = grouped["bad_loans"] / grouped["loans"].where(grouped["loans"] > 0)
    grouped["balance_rate"] = grouped["bad_balance"] / grouped["balance"].where(grouped["balance"] > 0)
    lower, upper = wilson_interval(grouped["bad_loans"], grouped["loans"], confidence)
    grouped["count_ci_lower"] = lower
    grouped["count_ci_upper"] = upper
    return grouped


def _rank(table: pd.DataFrame, by: str, min_size: int) -> pd.DataFrame:
    table = table.copy()
    table["rate"] = table[f"{by}_rate"]
    if by == "count":
        table["ci_lower"] = table["count_ci_lower"]
        table["ci_upper"] = table["count_ci_upper"]
    else:
        # NOTE: no interval for balance-weighted rates; Wilson assumes equal-weight trials.
        table["ci_lower"] = np.nan
        table["ci_upper"] = np.nan
    table["below_min_size"] = table["loans"] < min_size
    eligible = ~table["below_min_size"] & table["region"].notna() & table["rate"].notna()
    table["rank"] = table["rate"].where(eligible).rank(method="min", ascending=False)
    table = table.sort_values(["rank", "loans"], ascending=[True, False], na_position="last")
    columns = [
        "region", "level", "region_code", "province", "matched", "loans", "balance",
        "bad_loans", "bad_balance", "rate", "ci_lower", "ci_upper", "below_min_size", "rank",
        "count_rate", "balance_rate",
    ]
    return table[columns].reset_index(drop=True)


def region_trend(
    data: RegionMonths,
    regions: list[str],
    *,
    level: str = "province",
    metric: str = "m1plus",
    by: str = "count",
    province: str | None = None,
    city: str | None = None,
    confidence: float = CONFIDENCE,
) -> pd.DataFrame:
    """Return the metric by month for the named regions (names as in RegionRates.table).

    Columns: month (month-end date), region, loans, balance, bad_loans, bad_balance, rate,
    ci_lower, ci_upper (Wilson, count rates only). Months where a region has no active
    loans are absent.
    """
    _check_choice("level", level, LEVELS)
    _check_choice("metric", metric, METRICS)
    _check_choice("by", by, BASES)
    columns = ["month", "region", "loans", "balance", "bad_loans", "bad_balance", "rate",
               "ci_lower", "ci_upper"]
    if data.frame.empty or not regions:
        return pd.DataFrame(columns=columns)
    province_name = _resolve_scope_province(province)
    city_name = _resolve_scope_city(city, province_name)
    frame = _scoped(_resolved(data.frame), province_name, city_name)
    table = _aggregate(frame, level, metric, confidence, by_month=True,
                       qualify_counties=city_name is None)
    table = table[table["region"].isin(regions)].copy()
    table["rate"] = table[f"{by}_rate"]
    table["ci_lower"] = table["count_ci_lower"] if by == "count" else np.nan
    table["ci_upper"] = table["count_ci_upper"] if by == "count" else np.nan
    return table[columns].sort_values(["region", "month"]).reset_index(drop=True)


def default_trend_regions(rates: RegionRates, count: int = 3) -> list[str]:
    """Return the ``count`` highest- and ``count`` lowest-ranked regions (ranked ones only)."""
    ranked = rates.table.dropna(subset=["rank"]).sort_values("rank")
    names = ranked["region"].tolist()
    if len(names) <= 2 * count:
        return names
    return names[:count] + names[-count:]


def province_names_en() -> dict[str, str]:
    """Return official province name -> English name (广东省 -> Guangdong) for all 34 units."""
    provinces = reference.reference_table("province")
    return dict(zip(provinces["name"], provinces["name_en"]))


def tile_map_frame(rates: RegionRates) -> pd.DataFrame:
    """Return one row per province-level unit with its tile position and rates.

    Columns: code, name, short_name, name_en, row, col, has_data (bool), loans, balance,
    bad_loans, bad_balance, rate, ci_lower, ci_upper, below_min_size (bool), rank. Units
    without active loans have has_data False and NaN rates.
    """
    provinces = reference.reference_table("province")[["code", "name", "short_name", "name_en"]]
    provinces = provinces.assign(
        row=provinces["code"].map(lambda code: TILE_GRID[code][0]),
        col=provinces["code"].map(lambda code: TILE_GRID[code][1]),
    )
    matched = rates.table[rates.table["matched"]] if rates.level == "province" else rates.table.iloc[0:0]
    columns = ["region_code", "loans", "balance", "bad_loans", "bad_balance", "rate", "ci_lower",
               "ci_upper", "below_min_size", "rank"]
    merged = provinces.merge(
        matched[columns].rename(columns={"region_code": "code"}), on="code", how="left"
    )
    merged["has_data"] = merged["loans"].notna() & (merged["loans"] > 0)
    merged["below_min_size"] = merged["below_min_size"].eq(True)
    merged["loans"] = merged["loans"].fillna(0).astype("int64")
    return merged


def geojson_path(configured: str | os.PathLike | None = None) -> tuple[Path, bool]:
    """Return the GeoJSON file to draw and whether it is the shipped Natural Earth file.

    Order: ``configured`` (the page option), then ``$LOANLENS_GEOJSON``, then the shipped file.
    """
    for candidate in (configured, os.environ.get(GEOJSON_ENV)):
        if candidate and str(candidate).strip():
            path = Path(str(candidate).strip()).expanduser()
            return path, path.resolve() == SHIPPED_GEOJSON.resolve()
    return SHIPPED_GEOJSON, True


def load_geojson(path: str | os.PathLike) -> dict:
    """Read a GeoJSON FeatureCollection.

    Raises
    ------
    ValueError
        When the file is missing, not JSON, or not a FeatureCollection with features.
    """
    path = Path(path)
    try:
        geojson = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"GeoJSON file {path} not found; check the path or {GEOJSON_ENV}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"GeoJSON file {path} is not valid UTF-8 JSON: {error}") from None
    if not isinstance(geojson, dict) or geojson.get("type") != "FeatureCollection" or not isinstance(
        geojson.get("features"), list
    ):
        raise ValueError(f"GeoJSON file {path} must hold a FeatureCollection with a features list")
    return geojson


# Feature properties tried, in order, to find a feature's province.
GEOJSON_KEYS = ("adcode", "code", "name_zh", "name", "NAME", "name_zh_short", "fullname",
                "NAME_1", "ne_name", "name_en")


def join_geojson(geojson: dict) -> pd.DataFrame:
    """Return one row per feature: feature (index), province (full name or None), key (the
    property that matched, or None).

    A feature joins on the first property in GEOJSON_KEYS that normalise_province
    resolves; HASC and ISO 3166-2 letter codes are never used.
    """
    rows = []
    for index, feature in enumerate(geojson["features"]):
        properties = feature.get("properties") or {}
        province, key = None, None
        for name in GEOJSON_KEYS:
            value = properties.get(name)
            if value is None:
                continue
            province = reference.normalise_province(value)
            if province is not None:
                key = name
                break
        rows.append({"feature": index, "province": province, "key": key,
                     "label": _feature_label(properties)})
    return pd.DataFrame(rows, columns=["feature", "province", "key", "label"])


def _feature_label(properties: dict) -> str | None:
    for name in ("name_zh", "name", "NAME", "ne_name", "adcode"):
        if properties.get(name):
            return str(properties[name])
    return None


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--level", choices=LEVELS, default="province",
                        help="region level (default province); use --province to drill down")
    parser.add_argument("--metric", choices=METRICS, default="m1plus",
                        help="m1plus: dpd > 0; par30: dpd > 30; npl: 次级+可疑+损失 (default m1plus)")
    parser.add_argument("--by", choices=BASES, default="count",
                        help="rate by loan count (with Wilson 95%% interval) or by balance (default count)")
    parser.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE,
                        help="regions with fewer active loans are flagged and not ranked (default 30)")
    parser.add_argument("--npl-preset", choices=tuple(CLASSIFICATION_PRESETS), default=DEFAULT_PRESET,
                        help="five-category classification preset for npl (default bank_2023)")
    parser.add_argument("--par30-restructured", action="store_true",
                        help="count restructured and extended loans as PAR30 whatever their dpd")


def _run_report(con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    data = load_region_months(
        con, filters, months=1, npl_preset=args.npl_preset,
        par30_restructured=args.par30_restructured,
    )
    if data.as_of is None:
        raise ValueError("the database has no month-end snapshots; load a loan tape first")
    rates = region_rates(data, level=args.level, metric=args.metric, by=args.by,
                         min_size=args.min_size)
    logger.info("%s rates for %d %s regions at %s", args.metric, len(rates.table), args.level, data.as_of)
    return rates.report()


REGIONS_COMMAND = Command(
    name="regions",
    help="M1+, PAR30 or NPL rate per province, city or county at the as-of month",
    run=_run_report,
    add_arguments=_add_arguments,
)
