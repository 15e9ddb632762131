"""Executive monthly KPIs (经营概览): portfolio size, delinquency rates, FPD30, losses.

Definitions (see docs/en/kpis.md): at month-end t the active loans are those with a snapshot
at t whose status is neither paid_off nor charged_off. Rates are fractions of the active
balance (or of the active loan count for ``*_count_rate``):

- M1+ rate: dpd > 0; PAR30: dpd > 30; NPL ratio: 次级 + 可疑 + 损失, i.e. dpd above the 次级
  floor of the five-category preset (90 days in both presets);
- FPD30: the latest origination cohort all of whose loans can be judged by t;
- charge-offs and recoveries: amounts booked in month t.

The dashboard page and ``python -m analysis kpis`` both call :func:`monthly_kpis`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

import queries
from analysis.cli import Command
from analysis.filters import Filters, resolve_as_of

logger = logging.getLogger(__name__)

# Columns of the report command, in order. Rates are fractions.
REPORT_COLUMNS = [
    "month",
    "active_balance",
    "active_loans",
    "new_loans",
    "new_amount",
    "m1plus_balance_rate",
    "m1plus_count_rate",
    "par30_rate",
    "npl_rate",
    "fpd30_count_rate",
    "chargeoff_amount",
    "recovery_amount",
]

TREND_MONTHS = 13


@dataclass(frozen=True)
class ClassificationPreset:
    """DPD floors of a five-category classification (五级分类) preset.

    正常 is dpd 0, 关注 1..substandard_dpd, 次级 up to doubtful_dpd, 可疑 up to loss_dpd,
    损失 above loss_dpd.
    """

    key: str
    substandard_dpd: int
    doubtful_dpd: int
    loss_dpd: int


CLASSIFICATION_PRESETS: dict[str, ClassificationPreset] = {
    # 《商业银行金融资产风险分类办法》 (2023, in force 2023-07-01): 次级 91-270, 可疑 271-360.
    "bank_2023": ClassificationPreset("bank_2023", 90, 270, 360),
    "simple_90_180_360": ClassificationPreset("simple_90_180_360", 90, 180, 360),
}
DEFAULT_PRESET = "bank_2023"


@dataclass(frozen=True)
class Metric:
    """One KPI: its column, its kind (amount, count or rate) and which direction is worse.

    ``worse_when`` is "up" (a rise is worse), "down" (a fall is worse) or None when a change
    is neither good nor bad in itself (portfolio size).
    """

    column: str
    kind: str
    worse_when: str | None


METRICS: tuple[Metric, ...] = (
    Metric("active_balance", "amount", None),
    Metric("active_loans", "count", None),
    Metric("new_amount", "amount", None),
    Metric("new_loans", "count", None),
    Metric("m1plus_balance_rate", "rate", "up"),
    Metric("par30_rate", "rate", "up"),
    Metric("npl_rate", "rate", "up"),
    Metric("fpd30_count_rate", "rate", "up"),
    Metric("chargeoff_amount", "amount", "up"),
    Metric("recovery_amount", "amount", "down"),
)
METRICS_BY_COLUMN = {metric.column: metric for metric in METRICS}


def _preset(key: str) -> ClassificationPreset:
    if key not in CLASSIFICATION_PRESETS:
        raise ValueError(
            f"five-category preset must be one of {sorted(CLASSIFICATION_PRESETS)}; got {key!r}"
        )
    return CLASSIFICATION_PRESETS[key]


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """Divide element-wise, NaN where the denominator is zero."""
    numerator = numerator.astype(float)
    denominator = denominator.astype(float)
    return numerator / denominator.where(denominator != 0)


def fpd30_cohorts(con: duckdb.DuckDBPyConnection, filters: Filters) -> pd.DataFrame:
    """Return FPD30 by origination cohort, only for cohorts whose loans can all be judged.

    Columns: vintage (month start), loans, principal, judged_month (month-end),
    fpd30_loans, fpd30_principal, from_installments, fpd30_count_rate, fpd30_amount_rate.
    """
    filters = resolve_as_of(con, filters)
    if filters.as_of is None:
        return pd.DataFrame(
            columns=["vintage", "loans", "principal", "judged_month", "fpd30_loans",
                     "fpd30_principal", "from_installments", "fpd30_count_rate",
                     "fpd30_amount_rate"]
        )
    frame = queries.run(con, "kpi_fpd30_cohorts", filters.params())
    frame["fpd30_count_rate"] = _ratio(frame["fpd30_loans"], frame["loans"])
    frame["fpd30_amount_rate"] = _ratio(frame["fpd30_principal"], frame["principal"])
    return frame


def _latest_judged_cohort(months: pd.Series, cohorts: pd.DataFrame) -> pd.DataFrame:
    """For each month-end, pick the latest cohort whose judged_month is on or before it."""
    month_values = np.array(list(months), dtype="datetime64[D]")
    judged = np.array(list(cohorts["judged_month"]), dtype="datetime64[D]")
    vintages = np.array(list(cohorts["vintage"]), dtype="datetime64[D]")
    # eligible[i, j]: cohort j is judged by month i. The latest eligible cohort is the one
    # with the largest vintage; vintages are unique, one row per origination month.
    eligible = judged[np.newaxis, :] <= month_values[:, np.newaxis]
    ranked = np.where(eligible, vintages.astype("int64")[np.newaxis, :], np.iinfo("int64").min)
    positions = ranked.argmax(axis=1) if len(cohorts) else np.zeros(len(month_values), dtype=int)
    rows = []
    for month, has_cohort, position in zip(months, eligible.any(axis=1), positions):
        if not has_cohort:
            rows.append({"month": month, "fpd30_cohort": pd.NaT, "fpd30_loans": np.nan,
                         "fpd30_count_rate": np.nan, "fpd30_amount_rate": np.nan})
            continue
        latest = cohorts.iloc[position]
        rows.append({
            "month": month,
            "fpd30_cohort": latest["vintage"],
            "fpd30_loans": latest["loans"],
            "fpd30_count_rate": latest["fpd30_count_rate"],
            "fpd30_amount_rate": latest["fpd30_amount_rate"],
        })
    return pd.DataFrame(rows)


def monthly_kpis(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    *,
    preset: str = DEFAULT_PRESET,
    par30_restructured: bool = False,
) -> pd.DataFrame:
    """Compute the KPIs for every month-end up to the as-of month.

    Parameters
    ----------
    filters
        Shared filters; ``as_of`` None means the latest month in the data.
    preset
        Five-category preset key (``bank_2023`` or ``simple_90_180_360``); its 次级 floor is
        the NPL threshold.
    par30_restructured
        Count restructured and extended loans in PAR30 whatever their dpd.

    Returns
    -------
    DataFrame with :data:`REPORT_COLUMNS` plus the numerators (m1plus_balance,
    m1plus_loans, par30_balance, npl_balance), fpd30_amount_rate, fpd30_loans and
    fpd30_cohort (month start of the cohort behind fpd30_*). Empty when there is no
    snapshot on or before the as-of month.
    """
    classification = _preset(preset)
    filters = resolve_as_of(con, filters)
    if filters.as_of is None:
        return pd.DataFrame(columns=REPORT_COLUMNS)
    params = {
        **filters.params(),
        "npl_dpd": classification.substandard_dpd,
        "par30_restructured": par30_restructured,
    }
    frame = queries.run(con, "kpi_monthly", params)
    if frame.empty:
        return pd.DataFrame(columns=REPORT_COLUMNS)

    amount_columns = ["active_balance", "m1plus_balance", "par30_balance", "npl_balance",
                      "new_amount", "chargeoff_amount", "recovery_amount"]
    for column in amount_columns:
        frame[column] = frame[column].astype(float)
    frame["month"] = pd.to_datetime(frame["month"]).dt.date

    frame["m1plus_balance_rate"] = _ratio(frame["m1plus_balance"], frame["active_balance"])
    frame["m1plus_count_rate"] = _ratio(frame["m1plus_loans"], frame["active_loans"])
    frame["par30_rate"] = _ratio(frame["par30_balance"], frame["active_balance"])
    frame["npl_rate"] = _ratio(frame["npl_balance"], frame["active_balance"])

    cohorts = fpd30_cohorts(con, filters)
    cohorts["judged_month"] = pd.to_datetime(cohorts["judged_month"]).dt.date
    cohorts["vintage"] = pd.to_datetime(cohorts["vintage"]).dt.date
    fpd = _latest_judged_cohort(frame["month"], cohorts)
    frame = frame.merge(fpd, on="month", how="left")

    extra = [column for column in frame.columns if column not in REPORT_COLUMNS]
    return frame[REPORT_COLUMNS + extra]


@dataclass(frozen=True)
class KpiChange:
    """One KPI at the as-of month with its month-on-month and year-on-year changes.

    For rates the changes are differences of fractions (percentage points when multiplied
    by 100); for amounts and counts they are relative changes (0.05 = +5%). ``mom_verdict``
    and ``yoy_verdict`` are "worse", "better", "flat" or None (no judgement, or no
    comparison value).
    """

    column: str
    kind: str
    value: float
    previous: float
    year_ago: float
    mom_change: float
    yoy_change: float
    mom_verdict: str | None
    yoy_verdict: str | None


def _change(metric: Metric, current: float, base: float) -> float:
    if pd.isna(current) or pd.isna(base):
        return np.nan
    if metric.kind == "rate":
        return current - base
    if base == 0:
        return np.nan
    return current / base - 1


def _verdict(metric: Metric, change: float) -> str | None:
    """Judge a change: a rise in a metric that is worse when up is "worse", and so on."""
    if pd.isna(change):
        return None
    # Below half a basis point (rates) or 0.05% (amounts) the change shows as zero.
    tolerance = 0.00005 if metric.kind == "rate" else 0.0005
    if abs(change) < tolerance:
        return "flat"
    if metric.worse_when is None:
        return None
    rising = change > 0
    return "worse" if rising == (metric.worse_when == "up") else "better"


def _month_shift(month: dt.date, months: int) -> dt.date:
    """Return the month-end ``months`` months before ``month``."""
    year, month_index = divmod(month.year * 12 + month.month - 1 - months, 12)
    return (pd.Timestamp(year=year, month=month_index + 1, day=1) + pd.offsets.MonthEnd(0)).date()


def kpi_changes(monthly: pd.DataFrame, as_of: dt.date) -> list[KpiChange]:
    """Return each KPI of :data:`METRICS` at ``as_of`` with its MoM and YoY changes.

    Comparison months missing from ``monthly`` give NaN changes and a None verdict.
    """
    by_month = monthly.set_index("month")
    previous_month = _month_shift(as_of, 1)
    year_ago_month = _month_shift(as_of, 12)
    changes = []
    for metric in METRICS:
        value = by_month[metric.column].get(as_of, np.nan)
        previous = by_month[metric.column].get(previous_month, np.nan)
        year_ago = by_month[metric.column].get(year_ago_month, np.nan)
        mom = _change(metric, value, previous)
        yoy = _change(metric, value, year_ago)
        changes.append(
            KpiChange(
                column=metric.column,
                kind=metric.kind,
                value=float(value),
                previous=float(previous),
                year_ago=float(year_ago),
                mom_change=mom,
                yoy_change=yoy,
                mom_verdict=_verdict(metric, mom),
                yoy_verdict=_verdict(metric, yoy),
            )
        )
    return changes


def trend(monthly: pd.DataFrame, as_of: dt.date, months: int = TREND_MONTHS) -> pd.DataFrame:
    """Return the last ``months`` rows of ``monthly`` ending at ``as_of``."""
    window = monthly[monthly["month"] <= as_of]
    return window.tail(months).reset_index(drop=True)


@dataclass(frozen=True)
class Highlight:
    """One 本月要点 sentence: a catalog template key and the KpiChange it describes."""

    template: str
    change: KpiChange


def highlights(changes: list[KpiChange], count: int = 3) -> list[Highlight]:
    """Choose the sentences for 本月要点 from the MoM changes.

    1. Portfolio size: active balance and its change.
    2. The risk rate (M1+, PAR30, NPL, FPD30) with the largest absolute MoM move.
    3. Net loss: charge-offs against recoveries this month.
    """
    by_column = {change.column: change for change in changes}
    chosen = [Highlight("kpis.highlight.balance", by_column["active_balance"])]

    risk = [by_column[column] for column in
            ("m1plus_balance_rate", "par30_rate", "npl_rate", "fpd30_count_rate")
            if not pd.isna(by_column[column].mom_change)]
    if risk:
        biggest = max(risk, key=lambda change: abs(change.mom_change))
        template = {
            "worse": "kpis.highlight.risk_up",
            "better": "kpis.highlight.risk_down",
        }.get(biggest.mom_verdict, "kpis.highlight.risk_flat")
        chosen.append(Highlight(template, biggest))
    else:
        chosen.append(Highlight("kpis.highlight.risk_none", by_column["par30_rate"]))

    chosen.append(Highlight("kpis.highlight.losses", by_column["chargeoff_amount"]))
    return chosen[:count]


def five_class(
    con: duckdb.DuckDBPyConnection, filters: Filters, preset: str = DEFAULT_PRESET
) -> pd.DataFrame:
    """Return the five-category split of active loans at the as-of month.

    Columns: class_rank (1..5), class_code, loans, balance (yuan), balance_share; every
    class appears, with zeros when no loan is in it.
    """
    classification = _preset(preset)
    filters = resolve_as_of(con, filters)
    codes = ["normal", "special_mention", "substandard", "doubtful", "loss"]
    skeleton = pd.DataFrame({"class_rank": range(1, 6), "class_code": codes})
    if filters.as_of is None:
        frame = skeleton.assign(loans=0, balance=0.0)
    else:
        params = {
            **filters.params(),
            "substandard_dpd": classification.substandard_dpd,
            "doubtful_dpd": classification.doubtful_dpd,
            "loss_dpd": classification.loss_dpd,
        }
        found = queries.run(con, "kpi_five_class", params).drop(columns="class_code")
        frame = skeleton.merge(found, on="class_rank", how="left")
        frame["loans"] = frame["loans"].fillna(0).astype(int)
        frame["balance"] = frame["balance"].astype(float).fillna(0.0)
    total = frame["balance"].sum()
    frame["balance_share"] = frame["balance"] / total if total else np.nan
    return frame


def report_table(monthly: pd.DataFrame) -> pd.DataFrame:
    """Return the report command's columns, month as an ISO date string."""
    table = monthly[REPORT_COLUMNS].copy()
    table["month"] = [month.isoformat() for month in table["month"]]
    return table


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=sorted(CLASSIFICATION_PRESETS),
        default=DEFAULT_PRESET,
        help="five-category preset whose 次级 floor sets the NPL threshold (default: bank_2023)",
    )
    parser.add_argument(
        "--par30-restructured",
        action="store_true",
        help="count restructured and extended loans in PAR30 whatever their dpd",
    )


def _run(con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    monthly = monthly_kpis(
        con,
        filters,
        preset=getattr(args, "preset", DEFAULT_PRESET),
        par30_restructured=getattr(args, "par30_restructured", False),
    )
    if monthly.empty:
        raise ValueError("no month-end snapshots on or before the as-of month; load data first")
    logger.info("computed KPIs for %d months", len(monthly))
    return report_table(monthly)


KPIS_COMMAND = Command(
    name="kpis",
    help="monthly KPIs, one row per month: balance, loans, originations, M1+, PAR30, NPL, "
    "FPD30, charge-offs, recoveries (rates as fractions)",
    run=_run,
    add_arguments=_add_arguments,
)
