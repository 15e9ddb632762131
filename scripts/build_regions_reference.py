"""Build ``data/regions_cn.csv`` from the cpca adcode table and the province lookup.

Usage::

    python scripts/build_regions_reference.py CPCA_ADCODES_CSV PROVINCE_LOOKUP_CSV

The inputs are ``cpca/resources/adcodes.csv`` from the PyPI package cpca 0.5.5 (MIT,
(c) 2018 QinYuan Du) and a 34-row province lookup (adcode, name_zh, name_zh_short). The
output has one row per province, city and county::

    code,level,name,short_name,name_en,province_code,city_code

Changes made to the cpca hierarchy, so that every row has a real name:

- The placeholder city rows of the four municipalities (110100 市辖区, 120100, 310100,
  500100 市辖区 and 500200 县) become one city row per municipality named like the
  municipality (110100 北京市); counties under 500200 get city_code 500100.
- The placeholder rows 省直辖县级行政区划 (xx9000) are dropped, and the county-level units
  directly under a province (429004 仙桃市, 469021 定安县 ...) become city rows, because
  they report to the province, not to a prefecture.
- County rows named 市辖区 (xxxx01, "the urban districts" of a prefecture) are dropped.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "data" / "regions_cn.csv"

MUNICIPALITIES = ("11", "12", "31", "50")

# English names: pinyin as used by the State Council, plus the customary forms of the
# special administrative regions.
PROVINCE_NAMES_EN = {
    "110000": "Beijing", "120000": "Tianjin", "130000": "Hebei", "140000": "Shanxi",
    "150000": "Inner Mongolia", "210000": "Liaoning", "220000": "Jilin",
    "230000": "Heilongjiang", "310000": "Shanghai", "320000": "Jiangsu",
    "330000": "Zhejiang", "340000": "Anhui", "350000": "Fujian", "360000": "Jiangxi",
    "370000": "Shandong", "410000": "Henan", "420000": "Hubei", "430000": "Hunan",
    "440000": "Guangdong", "450000": "Guangxi", "460000": "Hainan", "500000": "Chongqing",
    "510000": "Sichuan", "520000": "Guizhou", "530000": "Yunnan", "540000": "Xizang",
    "610000": "Shaanxi", "620000": "Gansu", "630000": "Qinghai", "640000": "Ningxia",
    "650000": "Xinjiang", "710000": "Taiwan", "810000": "Hong Kong", "820000": "Macao",
}

# Ethnic-group names that appear inside the names of autonomous prefectures and counties
# (延边朝鲜族自治州, 海西蒙古族藏族自治州, 博尔塔拉蒙古自治州). Longest first.
ETHNIC_NAMES = sorted(
    [
        "土家族", "苗族", "布依族", "侗族", "彝族", "藏族", "羌族", "回族", "蒙古族", "蒙古",
        "哈萨克", "哈萨克族", "柯尔克孜", "柯尔克孜族", "傣族", "景颇族", "白族", "傈僳族",
        "哈尼族", "壮族", "朝鲜族", "黎族", "瑶族", "畲族", "满族", "土族", "撒拉族", "东乡族",
        "保安族", "裕固族", "纳西族", "拉祜族", "佤族", "普米族", "怒族", "独龙族", "基诺族",
        "阿昌族", "德昂族", "布朗族", "水族", "仡佬族", "毛南族", "仫佬族", "京族", "达斡尔族",
        "鄂温克族", "鄂伦春族", "锡伯族", "塔吉克", "塔吉克族", "维吾尔", "维吾尔族", "各族",
    ],
    key=len,
    reverse=True,
)

AUTONOMY_SUFFIXES = ("自治州", "自治县", "自治旗")
PLAIN_SUFFIXES = ("特别行政区", "地区", "林区", "特区", "新区", "市", "盟", "县", "区", "旗")


def short_name(name: str) -> str:
    """Return the customary short form (深圳市 -> 深圳, 延边朝鲜族自治州 -> 延边).

    A short form of fewer than two characters is not customary, so the full name is
    returned instead (城区, 沙市区).
    """
    stem = name
    for suffix in AUTONOMY_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            stripped = True
            while stripped:
                stripped = False
                for ethnic in ETHNIC_NAMES:
                    if stem.endswith(ethnic) and len(stem) - len(ethnic) >= 2:
                        stem = stem[: -len(ethnic)]
                        stripped = True
                        break
            return stem if len(stem) >= 2 else name
    for suffix in PLAIN_SUFFIXES:
        if stem.endswith(suffix) and len(stem) - len(suffix) >= 2:
            return stem[: -len(suffix)]
    return name


def build_rows(adcodes_path: Path, lookup_path: Path) -> list[dict[str, str]]:
    """Read both inputs and return the output rows, provinces first, then by code."""
    with lookup_path.open(encoding="utf-8") as handle:
        lookup = {row["adcode"]: row for row in csv.DictReader(handle) if row["adcode"]}
    with adcodes_path.open(encoding="utf-8") as handle:
        source = {row["adcode"][:6]: row["name"] for row in csv.DictReader(handle)}

    rows: list[dict[str, str]] = []
    for code, name in source.items():
        province_code = code[:2] + "0000"
        if code.endswith("0000"):
            entry = lookup[code]
            rows.append(_row(code, "province", name, entry["name_zh_short"],
                             PROVINCE_NAMES_EN[code], province_code, ""))
            continue
        province_name = source[province_code]
        if code[:2] in MUNICIPALITIES:
            if code.endswith("00"):
                if code[2:4] == "01":
                    rows.append(_row(code, "city", province_name, short_name(province_name),
                                     "", province_code, code))
                continue
            city_code = code[:2] + "0100"
            rows.append(_row(code, "county", name, short_name(name), "", province_code, city_code))
            continue
        if code[2:4] == "90":
            if code.endswith("00"):
                continue
            rows.append(_row(code, "city", name, short_name(name), "", province_code, code))
            continue
        if code.endswith("00"):
            rows.append(_row(code, "city", name, short_name(name), "", province_code, code))
            continue
        if name == "市辖区":
            continue
        rows.append(_row(code, "county", name, short_name(name), "", province_code,
                         code[:4] + "00"))

    level_order = {"province": 0, "city": 1, "county": 2}
    rows.sort(key=lambda row: (level_order[row["level"]], row["code"]))
    return rows


def _row(code, level, name, short, name_en, province_code, city_code) -> dict[str, str]:
    return {
        "code": code,
        "level": level,
        "name": name,
        "short_name": short,
        "name_en": name_en,
        "province_code": province_code,
        "city_code": city_code,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    rows = build_rows(Path(argv[0]), Path(argv[1]))
    with OUTPUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    counts = {level: sum(row["level"] == level for row in rows) for level in ("province", "city", "county")}
    print(f"wrote {len(rows)} rows to {OUTPUT}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
