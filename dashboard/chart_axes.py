"""Plotly axis settings shared by the pages: month axes, amount axes and rate axes.

Months are stored as month-end dates. Plotly puts date ticks at the start of a period, so
a month-end date sits just before the next month's tick and reads one month late. The
helpers here move months to their first day before plotting and label the ticks
``%Y-%m``. Amount axes use tick labels in the units of ``messages.format``: 万元 / 亿元
with the unit in the axis title for Chinese, ¥ with k / m / bn for English.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

MONTH_TICK_FORMAT = "%Y-%m"
# Up to this many months every month gets a tick; longer axes get one per quarter.
MONTHLY_TICKS_MAX = 18
TARGET_TICKS = 5

_ZH_UNITS = ((1e8, "亿元"), (1e4, "万元"), (1.0, "元"))
_EN_UNITS = ((1e9, "bn"), (1e6, "m"), (1e3, "k"), (1.0, ""))


def month_start(months) -> pd.Series:
    """Convert month dates (month-end or any day of the month) to the month's first day."""
    series = pd.Series(pd.to_datetime(pd.Series(months).reset_index(drop=True)))
    return series.dt.to_period("M").dt.to_timestamp()


def apply_month_axis(figure: go.Figure, months, axis: str = "x") -> None:
    """Label a date axis with one tick per month (per quarter on long axes) as ``%Y-%m``.

    ``months`` are the plotted values, already converted with ``month_start``.
    """
    count = pd.Series(months).dropna().nunique()
    dtick = "M1" if count <= MONTHLY_TICKS_MAX else "M3"
    settings = {"type": "date", "dtick": dtick, "tickformat": MONTH_TICK_FORMAT,
                "hoverformat": MONTH_TICK_FORMAT}
    if axis == "x":
        figure.update_xaxes(**settings)
    else:
        figure.update_yaxes(**settings)


def apply_rate_axis(figure: go.Figure, title: str | None = None, axis: str = "y", digits: int = 1) -> None:
    """Show a rate axis (values are fractions) as percentages."""
    settings = {"tickformat": f".{digits}%"}
    if title is not None:
        settings["title"] = title
    if axis == "x":
        figure.update_xaxes(**settings)
    else:
        figure.update_yaxes(**settings)


def _nice_step(span: float) -> float:
    """Return a round step (1, 2, 2.5 or 5 times a power of ten) giving about TARGET_TICKS ticks."""
    raw = span / TARGET_TICKS
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _tick_values(low: float, high: float) -> list[float]:
    if high - low < 1e-9:
        spread = abs(high) * 0.1 or 1.0
        low, high = low - spread, high + spread
    step = _nice_step(high - low)
    first = math.floor(low / step) * step
    count = int(math.ceil((high - first) / step - 1e-9)) + 1
    return [first + index * step for index in range(count)]


def _trim(number: float) -> str:
    """Format a scaled tick value with at most two decimals and no trailing zeros."""
    text = f"{number:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _english_amount(tick: float, divisor: float, unit: str) -> str:
    scaled = _trim(abs(tick) / divisor)
    if scaled == "0":
        return "¥0"
    return ("-" if tick < 0 else "") + f"¥{scaled}{unit}"


def amount_unit(values, lang: str) -> tuple[float, str]:
    """Return the divisor and unit for amounts of this size: (1e8, '亿元') or (1e6, 'm')."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").abs().dropna()
    largest = float(numbers.max()) if not numbers.empty else 0.0
    units = _ZH_UNITS if lang == "zh" else _EN_UNITS
    for divisor, unit in units:
        if largest >= divisor:
            return divisor, unit
    return units[-1]


def amount_ticks(values, lang: str) -> tuple[list[float], list[str], str]:
    """Return tick values (yuan), their labels and the unit for an axis showing ``values``.

    Chinese labels are bare numbers in the unit returned (万元, 亿元 or 元), which goes into
    the axis title; English labels carry the unit, e.g. '¥270m'.
    """
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if numbers.empty:
        return [], [], ""
    divisor, unit = amount_unit(numbers, lang)
    ticks = _tick_values(float(numbers.min()), float(numbers.max()))
    if lang == "zh":
        labels = [_trim(tick / divisor) for tick in ticks]
    else:
        labels = [_english_amount(tick, divisor, unit) for tick in ticks]
    return ticks, labels, unit


def apply_amount_axis(figure: go.Figure, values, lang: str, title: str, axis: str = "y") -> None:
    """Label an amount axis in 万元/亿元 (unit in the title) or ¥ k/m/bn, from the plotted values."""
    ticks, labels, unit = amount_ticks(values, lang)
    if lang == "zh" and unit:
        title = f"{title}（{unit}）"
    settings = {"title": title, "tickmode": "array", "tickvals": ticks, "ticktext": labels}
    if axis == "x":
        figure.update_xaxes(**settings)
    else:
        figure.update_yaxes(**settings)
