"""Chinese administrative divisions: normalising province, city and county names and codes.

Loan tapes write regions in many forms: 广东, 广东省, ``440000``, an ID-card prefix such as
``440305``, "广东省深圳市", full-width characters or stray spaces. LoanLens stores and joins
on the official full name (广东省, 深圳市, 南山区), so every value goes through the
functions here first. A value that matches no region becomes ``None``; callers count and
list those instead of guessing.

The reference table is ``data/regions_cn.csv`` (GB/T 2260 codes, c. 2020 divisions, derived
from the cpca package's adcode list by ``scripts/build_regions_reference.py``; sources and
licences in ``data/SOURCES.md``). Codes retired since then still resolve to their province
and, where the prefecture code survives, to their city.

The ``*_series`` forms normalise only the distinct values of a column. A million-row column
of 35 distinct values took about 0.1 s on the development machine (a laptop-class CPU).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "regions_cn.csv"

LEVELS = ("province", "city", "county")

# Province-level codes of the four municipalities: their only "city" is the municipality.
MUNICIPALITY_PREFIXES = ("11", "12", "31", "50")

# Other spellings of province names seen in English-language and older files (lowercase,
# spaces removed) and island groups that belong to a province. Two-letter abbreviations are left out because they collide with US
# state codes (CA, GA ...).
_PROVINCE_ALIASES = {
    "innermongol": "150000",
    "neimongol": "150000",
    "neimenggu": "150000",
    "innermongolia": "150000",
    "tibet": "540000",
    "xizang": "540000",
    "macau": "820000",
    "macao": "820000",
    "hongkong": "810000",
    "shensi": "610000",
    "canton": "440000",
    # Island groups administered by 三沙市 (Hainan); Natural Earth draws the Paracels apart.
    "西沙群岛": "460000",
    "中沙群岛": "460000",
    "南沙群岛": "460000",
    "paracelislands": "460000",
    "spratlyislands": "460000",
}

# Suffixes written after English province names: "Guangdong Province", "Xinjiang Uygur
# Autonomous Region", "Beijing Municipality", "Hong Kong SAR".
_ENGLISH_SUFFIXES = re.compile(
    r"(province|sheng|municipality|shi|(zhuang|hui|uygur|uyghur)?autonomousregion|"
    r"specialadministrativeregion|sar)$"
)

_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Region:
    """One row of the reference table: a province, city or county."""

    code: str           # GB/T 2260, 6 digits
    level: str          # province / city / county
    name: str           # official full name, e.g. 广西壮族自治区
    short_name: str     # customary short form, e.g. 广西
    name_en: str        # English name (provinces only, else "")
    province_code: str
    city_code: str      # "" for provinces


class _Reference:
    """Lookup maps built once from the reference CSV."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.by_code: dict[str, Region] = {}
        for row in frame.itertuples(index=False):
            region = Region(
                code=row.code,
                level=row.level,
                name=row.name,
                short_name=row.short_name,
                name_en=row.name_en,
                province_code=row.province_code,
                city_code=row.city_code,
            )
            self.by_code[region.code] = region
        self.provinces = [r for r in self.by_code.values() if r.level == "province"]
        self.cities = [r for r in self.by_code.values() if r.level == "city"]
        self.counties = [r for r in self.by_code.values() if r.level == "county"]

        self.province_by_text: dict[str, Region] = {}
        for province in self.provinces:
            for text in (province.name, province.short_name, _english_key(province.name_en)):
                self.province_by_text[text] = province
        for alias, code in _PROVINCE_ALIASES.items():
            self.province_by_text[alias] = self.by_code[code]
        # Longest first, so that 内蒙古自治区 is tried before 内蒙古.
        self.province_prefixes = sorted(
            {(p.name, p) for p in self.provinces} | {(p.short_name, p) for p in self.provinces},
            key=lambda item: len(item[0]),
            reverse=True,
        )
        self.city_prefixes = sorted(
            [(c.name, c) for c in self.cities] + [(c.short_name, c) for c in self.cities],
            key=lambda item: len(item[0]),
            reverse=True,
        )
        self.cities_by_text = _index_by_text(self.cities)
        self.counties_by_text = _index_by_text(self.counties)
        # City-level code prefixes (first four digits) per province, to tell a real
        # six-digit region code from an arbitrary number.
        self.city_prefixes_by_province: dict[str, set[str]] = {}
        for region in self.cities + self.counties:
            self.city_prefixes_by_province.setdefault(region.province_code, set()).add(region.code[:4])


def _index_by_text(regions: list[Region]) -> dict[str, list[Region]]:
    index: dict[str, list[Region]] = {}
    for region in regions:
        for text in {region.name, region.short_name}:
            index.setdefault(text, []).append(region)
    return index


def _english_key(text: str) -> str:
    return _WHITESPACE.sub("", text).lower()


@lru_cache(maxsize=1)
def _reference() -> _Reference:
    frame = pd.read_csv(REFERENCE_FILE, dtype=str, keep_default_na=False)
    return _Reference(frame)


def reference_table(level: str | None = None) -> pd.DataFrame:
    """Return the reference table (code, level, name, short_name, name_en, province_code,
    city_code), optionally only one level: 'province', 'city' or 'county'."""
    frame = _reference().frame
    if level is None:
        return frame.copy()
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
    return frame[frame["level"] == level].reset_index(drop=True)


def lookup_code(code: str) -> Region | None:
    """Return the region with this 6-digit code, or None."""
    return _reference().by_code.get(code)


def clean_text(value) -> str | None:
    """Return ``value`` as compact text: NFKC-normalised (full-width to half-width), all
    whitespace removed, integral floats without '.0'; None for missing or empty values."""
    if value is None:
        return None
    if isinstance(value, float):
        if np.isnan(value):
            return None
        if value.is_integer():
            value = int(value)
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return str(int(value))
    if not isinstance(value, str):
        value = str(value)
    text = _WHITESPACE.sub("", unicodedata.normalize("NFKC", value))
    if text.lower() in ("", "nan", "none", "null", "<na>"):
        return None
    return text


def _province_from_code(digits: str) -> Region | None:
    """Resolve a numeric code (2, 4, 6 or 12 digits) to its province, or None."""
    reference = _reference()
    if len(digits) == 12:
        digits = digits[:6]
    if len(digits) not in (2, 4, 6):
        return None
    province = reference.by_code.get(digits[:2] + "0000")
    if province is None:
        return None
    if len(digits) >= 4 and digits[2:4] != "00":
        if digits[:4] not in reference.city_prefixes_by_province.get(province.code, set()):
            return None
    return province


def _province_region(text: str) -> Region | None:
    reference = _reference()
    if text.isdigit():
        return _province_from_code(text)

    found = reference.province_by_text.get(text)
    if found is not None:
        return found
    english = _english_key(text)
    if english.isascii():
        found = reference.province_by_text.get(english)
        if found is None:
            found = reference.province_by_text.get(_ENGLISH_SUFFIXES.sub("", english))
        return found

    # "广东省深圳市": a full province name followed by more.
    for prefix, province in reference.province_prefixes:
        if len(prefix) > 2 and text.startswith(prefix) and prefix == province.name:
            return province
    # A city or county alone ("深圳市", "海南藏族自治州"), when the name is unique.
    for index in (reference.cities_by_text, reference.counties_by_text):
        matches = index.get(text, [])
        provinces = {region.province_code for region in matches}
        if len(provinces) == 1:
            return reference.by_code[provinces.pop()]
        if matches:
            return None
    # "广东深圳": a short province name followed by more.
    for prefix, province in reference.province_prefixes:
        if text.startswith(prefix):
            return province
    return None


def normalise_province(value) -> str | None:
    """Return the official full province name for a name, short name, code or address.

    Accepts 广东, 广东省, 440000, 440305 (or any GB/T 2260 code of a unit in the province,
    also the 12-digit form), "广东省深圳市", 深圳市 (a unique city or county name),
    full-width characters and spaces, and English names (Guangdong, Inner Mongolia).

    Returns
    -------
    str or None
        E.g. '广东省'; None when the value is missing or matches no province.
    """
    text = clean_text(value)
    if text is None:
        return None
    region = _province_region(text)
    return region.name if region else None


def province_code(value) -> str | None:
    """Return the 6-digit code of the province ``value`` names (see normalise_province)."""
    text = clean_text(value)
    if text is None:
        return None
    region = _province_region(text)
    return region.code if region else None


def _in_scope(regions: list[Region], province: Region | None) -> list[Region]:
    if province is None:
        return regions
    return [region for region in regions if region.province_code == province.code]


def _unique_city(regions: list[Region]) -> Region | None:
    """Return the one city these regions (cities or counties) belong to, if only one."""
    city_codes = {region.city_code for region in regions}
    if len(city_codes) == 1:
        return _reference().by_code.get(city_codes.pop())
    return None


def _city_region(text: str, province: Region | None) -> Region | None:
    reference = _reference()
    if text.isdigit():
        _, city, _ = _regions_from_digits(text)
        if city is not None and (province is None or city.province_code == province.code):
            return city
        return None

    exact = _in_scope(reference.cities_by_text.get(text, []), province)
    if len(exact) == 1:
        return exact[0]

    # "广东省深圳市南山区": drop the province part, then match the rest within it.
    for prefix, found_province in reference.province_prefixes:
        if text.startswith(prefix) and len(text) > len(prefix):
            if province is not None and found_province.code != province.code:
                continue
            city = _city_region(text[len(prefix):], found_province)
            if city is not None:
                return city

    for prefix, city in reference.city_prefixes:
        if len(prefix) > 2 and city.name == prefix and text.startswith(prefix):
            if province is None or city.province_code == province.code:
                return city

    counties = _in_scope(reference.counties_by_text.get(text, []), province)
    if counties:
        # A county name in several cities (朝阳区, 鼓楼区) stays unresolved.
        return _unique_city(counties)

    for prefix, city in reference.city_prefixes:
        if text.startswith(prefix) and (province is None or city.province_code == province.code):
            return city
    return None


def normalise_city(value, province=None) -> str | None:
    """Return the official full city name (prefecture level) for a name, code or address.

    ``province`` (any form normalise_province accepts) narrows the search, which resolves
    names that exist in several provinces (朝阳区) and rejects a city in another province.
    Municipalities are their own city (北京 -> 北京市). County-level units directly under
    a province (仙桃市, 定安县) count as cities. A county name resolves to its city when it
    is unique in scope.

    Returns
    -------
    str or None
        E.g. '深圳市'; None when the value is missing, names only a province, or matches
        no city (in ``province`` when given).
    """
    text = clean_text(value)
    if text is None:
        return None
    province_region = None
    if province is not None:
        province_text = clean_text(province)
        if province_text is not None:
            province_region = _province_region(province_text)
    region = _city_region(text, province_region)
    return region.name if region else None


def normalise_county(value, province=None, city=None) -> str | None:
    """Return the official full county-level name (区, 县, 县级市, 旗) for a name or code.

    ``province`` and ``city`` (any form the other functions accept) narrow the search; a
    county name that exists in several places (鼓楼区) resolves only when they make it
    unique. Codes resolve through regions_from_code.

    Returns
    -------
    str or None
        E.g. '南山区'; None when the value is missing, ambiguous or matches no county.
    """
    text = clean_text(value)
    if text is None:
        return None
    reference = _reference()
    province_region = None
    if province is not None and clean_text(province) is not None:
        province_region = _province_region(clean_text(province))
    city_region = None
    if city is not None and clean_text(city) is not None:
        city_region = _city_region(clean_text(city), province_region)
    if text.isdigit():
        _, found_city, county = _regions_from_digits(text)
        if county is None:
            return None
        if city_region is not None and found_city is not None and found_city.code != city_region.code:
            return None
        if province_region is not None and county.province_code != province_region.code:
            return None
        return county.name
    matches = _in_scope(reference.counties_by_text.get(text, []), province_region)
    if city_region is not None:
        matches = [region for region in matches if region.city_code == city_region.code]
    if len(matches) == 1:
        return matches[0].name
    return None


def _regions_from_digits(digits: str) -> tuple[Region | None, Region | None, Region | None]:
    reference = _reference()
    if len(digits) == 12:
        digits = digits[:6]
    if len(digits) != 6:
        return None, None, None
    province = reference.by_code.get(digits[:2] + "0000")
    if province is None:
        return None, None, None
    if digits[2:] == "0000":
        return province, None, None
    if digits[:4] not in reference.city_prefixes_by_province.get(province.code, set()):
        # Not a code of this province's prefectures: an arbitrary number, not a region.
        return None, None, None
    if digits[:2] in MUNICIPALITY_PREFIXES:
        city = reference.by_code.get(digits[:2] + "0100")
    elif digits[2:4] == "90":
        # County-level unit directly under the province: it is the city level.
        return province, reference.by_code.get(digits), None
    else:
        city = reference.by_code.get(digits[:4] + "00")
    county = reference.by_code.get(digits)
    if county is not None and county.level != "county":
        county = None
    return province, city, county


def regions_from_code(code) -> tuple[str | None, str | None, str | None]:
    """Return (province, city, county) full names for a GB/T 2260 region code.

    Accepts 6 digits (440305) or the 12-digit statistical form (440305000000). Parts that
    the code does not identify are None: 440000 -> ('广东省', None, None); a county code
    missing from the reference (retired or newer) keeps its province and city when its
    first four digits are a known prefecture. Anything else, including a number whose
    first four digits are no prefecture of the province (449999), returns (None, None, None).
    """
    text = clean_text(code)
    if text is None or not text.isdigit():
        return None, None, None
    regions = _regions_from_digits(text)
    return tuple(region.name if region else None for region in regions)  # type: ignore[return-value]


def _map_distinct(values: pd.Series, function) -> pd.Series:
    """Apply ``function`` to each distinct value of ``values`` and broadcast the results."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([function(value) for value in uniques] + [function(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object, name=values.name)


def normalise_province_series(values: pd.Series) -> pd.Series:
    """Vectorised normalise_province: the same result for every element, computed once per
    distinct value. Unmatched and missing values are None."""
    return _map_distinct(values, normalise_province)


def normalise_city_series(values: pd.Series, provinces: pd.Series | None = None) -> pd.Series:
    """Vectorised normalise_city, with an optional aligned Series of provinces."""
    if provinces is None:
        return _map_distinct(values, normalise_city)
    if len(provinces) != len(values):
        raise ValueError(
            f"values and provinces must have the same length; got {len(values)} and {len(provinces)}"
        )
    value_codes, value_uniques = pd.factorize(values, use_na_sentinel=True)
    province_codes, province_uniques = pd.factorize(provinces, use_na_sentinel=True)
    # -1 (missing) becomes the last index of each uniques list (padded with None below).
    value_codes = np.where(value_codes < 0, len(value_uniques), value_codes)
    province_codes = np.where(province_codes < 0, len(province_uniques), province_codes)
    pair_codes, pairs = pd.factorize(
        value_codes.astype(np.int64) * (len(province_uniques) + 1) + province_codes
    )
    value_list = list(value_uniques) + [None]
    province_list = list(province_uniques) + [None]
    width = len(province_uniques) + 1
    mapped = np.array(
        [normalise_city(value_list[pair // width], province_list[pair % width]) for pair in pairs],
        dtype=object,
    )
    return pd.Series(mapped[pair_codes], index=values.index, dtype=object, name=values.name)


def regions_from_code_series(codes: pd.Series) -> pd.DataFrame:
    """Vectorised regions_from_code: a DataFrame with columns province, city, county."""
    factor_codes, uniques = pd.factorize(codes, use_na_sentinel=True)
    rows = [regions_from_code(value) for value in uniques] + [(None, None, None)]
    table = np.array(rows, dtype=object).reshape(len(rows), 3)
    picked = table[factor_codes]
    return pd.DataFrame(
        {"province": picked[:, 0], "city": picked[:, 1], "county": picked[:, 2]},
        index=codes.index,
    )
