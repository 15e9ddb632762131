"""Number, amount and month formatting as Chinese and English readers expect.

Amounts are in yuan. Chinese text scales to 元 / 万元 / 亿元; English text uses ¥ with
k / m / bn. Rates are fractions shown as percentages; changes of a rate are shown in
percentage points (个百分点 / pp). None and NaN show as an em dash.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

MISSING = "—"
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _is_missing(value) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def format_amount(yuan, lang: str = "zh", digits: int = 2) -> str:
    """Format an amount in yuan, e.g. 123456789 -> '1.23亿元' or '¥123.46m'."""
    if _is_missing(yuan):
        return MISSING
    value = float(yuan)
    magnitude = abs(value)
    if lang == "zh":
        if magnitude >= 1e8:
            return f"{value / 1e8:,.{digits}f}亿元"
        if magnitude >= 1e4:
            return f"{value / 1e4:,.{digits}f}万元"
        return f"{value:,.2f}元"
    sign = "-" if value < 0 else ""
    if magnitude >= 1e9:
        return f"{sign}¥{magnitude / 1e9:,.{digits}f}bn"
    if magnitude >= 1e6:
        return f"{sign}¥{magnitude / 1e6:,.{digits}f}m"
    if magnitude >= 1e4:
        return f"{sign}¥{magnitude / 1e3:,.{digits}f}k"
    return f"{sign}¥{magnitude:,.2f}"


def format_count(count, lang: str = "zh") -> str:
    """Format a count with thousands separators, e.g. 1234567 -> '1,234,567'."""
    if _is_missing(count):
        return MISSING
    return f"{int(count):,}"


def format_rate(rate, digits: int = 2) -> str:
    """Format a fraction as a percentage, e.g. 0.0345 -> '3.45%'."""
    if _is_missing(rate):
        return MISSING
    return f"{float(rate) * 100:.{digits}f}%"


def format_pp(change, lang: str = "zh", digits: int = 2, signed: bool = True) -> str:
    """Format a change of a rate (a difference of fractions) in percentage points.

    0.0123 -> '+1.23个百分点' (zh) or '+1.23 pp' (en); with ``signed=False`` the size
    only, '1.23个百分点', for sentences that state the direction in words.
    """
    if _is_missing(change):
        return MISSING
    points = float(change) * 100
    unit = "个百分点" if lang == "zh" else " pp"
    if not signed:
        return f"{abs(points):.{digits}f}{unit}"
    return f"{points:+.{digits}f}{unit}"


def format_change_ratio(ratio, digits: int = 1, signed: bool = True) -> str:
    """Format a relative change of an amount or count, e.g. 0.052 -> '+5.2%'.

    With ``signed=False`` the size only ('5.2%'), for sentences that state the direction.
    """
    if _is_missing(ratio):
        return MISSING
    if not signed:
        return f"{abs(float(ratio)) * 100:.{digits}f}%"
    return f"{float(ratio) * 100:+.{digits}f}%"


def format_month(month: dt.date | str, lang: str = "zh") -> str:
    """Format a month, e.g. 2026-11-30 -> '2026年11月' or 'Nov 2026'."""
    if month is None:
        return MISSING
    if isinstance(month, str):
        month = dt.date.fromisoformat(month[:7] + "-01")
    if lang == "zh":
        return f"{month.year}年{month.month}月"
    return f"{_EN_MONTHS[month.month - 1]} {month.year}"


def to_decimal_yuan(value) -> Decimal:
    """Convert a number to a Decimal rounded to the fen, for exact totals."""
    return Decimal(str(value)).quantize(Decimal("0.01"))
