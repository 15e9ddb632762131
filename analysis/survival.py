"""Survival analysis of time to default: Kaplan–Meier by segment, log-rank test, cumulative
incidence of default and prepayment (Aalen–Johansen), and the report commands.

The Cox model lives in :mod:`analysis.survival_cox`; the records come from
:mod:`analysis.survival_data`.

Kaplan–Meier is computed by the product-limit formula on counts aggregated per (segment,
entry MOB, duration MOB, event type), so every loan is used and a book of a million loans
costs a few thousand rows. The formulas are those of lifelines 0.30 ``KaplanMeierFitter``
(exponential Greenwood band, median and its interval). The module does not import
lifelines or scipy, because importing them took about 1 s (``python -X importtime`` on a
2-core machine), longer than the whole estimate at a million loans. The counts are made in SQL (:func:`~analysis.survival_data.load_survival_counts`,
used by the page and the report command) or from loan records
(:func:`~analysis.survival_data.load_survival_data`). Risk sets follow the counting-process
convention: a loan is at risk at MOB t when entry_mob < t ≤ duration_mob (the same as
lifelines' estimate and statsmodels ``SurvfuncRight``).
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field
from statistics import NormalDist

import duckdb
import numpy as np
import pandas as pd

from analysis.cli import Command
from analysis.filters import Filters
from analysis.survival_cox import COX_COMMAND, fit_cox  # noqa: F401  (re-exported)
from analysis.survival_data import (
    ALL_LABEL,
    ATTRIBUTE_PREFIX,
    DEFAULT,
    DEFAULT_EVENT_DPD,
    EVENT_DPD_CHOICES,
    PREPAYMENT,
    SEGMENT_COLUMNS,
    Note,
    SurvivalCounts,
    SurvivalData,
    load_survival_counts,
    load_survival_data,  # noqa: F401  (re-exported)
    merge_small_levels,
    segment_values,
)

logger = logging.getLogger(__name__)

ALPHA = 0.05
SURVIVAL_AT_MONTHS = (6, 12, 24)
MAX_SEGMENTS = 12
KM_COLUMNS = ["segment", "timeline", "at_risk", "events", "censored", "survival", "ci_lower", "ci_upper"]


@dataclass
class TestResult:
    """A hypothesis test: name, statistic, degrees of freedom and p-value."""

    test_name: str
    statistic: float
    df: int
    p_value: float

    def verdict(self, lang: str = "en") -> str:
        """Return the p-value stated in words at the 5% level."""
        from messages import t

        key = "survival.logrank_differ" if self.p_value < ALPHA else "survival.logrank_same"
        return t(key, lang, p=format_p(self.p_value), chi2=f"{self.statistic:.2f}", df=self.df)


@dataclass
class KaplanMeierResult:
    """Kaplan–Meier curves by segment.

    ``table``: one row per segment and MOB 0..max: segment, timeline (MOB), at_risk (loans
    with entry_mob < t ≤ duration_mob), events (defaults at t), censored (censored or prepaid
    at t), survival, ci_lower, ci_upper (95%, lifelines' exponential Greenwood interval).
    ``summary``: one row per segment: segment, loans, defaults, median_mob (NaN when not
    reached), median_ci_lower, median_ci_upper, median_reached (bool).
    ``survival_at``: segment, month, survival, ci_lower, ci_upper (NaN beyond follow-up).
    """

    segment: str | None
    event_dpd: int
    table: pd.DataFrame
    summary: pd.DataFrame
    survival_at: pd.DataFrame
    logrank: TestResult | None
    notes: list[Note] = field(default_factory=list)

    def number_at_risk(self, months) -> pd.DataFrame:
        """Return loans still observed and not yet defaulted at the end of each MOB in
        ``months``: one row per segment, one column per MOB (the risk set of MOB t + 1)."""
        shifted = self.table.assign(timeline=self.table["timeline"] - 1)
        wide = shifted.pivot(index="segment", columns="timeline", values="at_risk")
        wide = wide.reindex(columns=list(months)).fillna(0).astype(int)
        wide.columns = [int(month) for month in wide.columns]
        return wide.reset_index()


@dataclass
class IncidenceResult:
    """Cumulative incidence of default and of prepayment (Aalen–Johansen), with 1 − KM.

    ``table``: segment, timeline, at_risk, defaults, prepayments, censored,
    cif_default, cif_prepayment (Aalen–Johansen), one_minus_km (1 − Kaplan–Meier of default
    with prepayments treated as censored).
    """

    segment: str | None
    event_dpd: int
    table: pd.DataFrame
    notes: list[Note] = field(default_factory=list)


def format_p(p_value: float) -> str:
    """Return 'p < 0.0001' or 'p = 0.0123'."""
    if p_value < 0.0001:
        return "p < 0.0001"
    return f"p = {p_value:.4f}"


def aggregate_counts(data: SurvivalData | SurvivalCounts, segment: str | None) -> pd.DataFrame:
    """Count loans per (segment, entry_mob, duration_mob, event_type): the KM input rows.

    ``data`` may be loan records or counts already made in SQL. Counts split by one column
    also give the pooled counts (``segment`` None), but not those of another column.

    Raises
    ------
    ValueError
        If ``data`` is counts split by a column other than ``segment``.
    """
    if isinstance(data, SurvivalCounts):
        return _counts_for_segment(data, segment)
    records = data.records
    labels = segment_values(records, segment, MAX_SEGMENTS)
    frame = pd.DataFrame(
        {
            "segment": labels.to_numpy(),
            "entry_mob": records["entry_mob"].to_numpy(),
            "duration_mob": records["duration_mob"].to_numpy(),
            "event_type": records["event_type"].to_numpy(),
        }
    )
    counts = frame.groupby(list(frame.columns), sort=True).size().rename("loans")
    return counts.reset_index()


def _counts_for_segment(data: SurvivalCounts, segment: str | None) -> pd.DataFrame:
    if segment is not None and segment != data.segment:
        raise ValueError(
            f"the survival counts are split by {data.segment!r}, not {segment!r}; "
            f"load them with segment={segment!r}"
        )
    if segment is None:
        frame = data.level_counts.assign(segment=ALL_LABEL)
    else:
        frame = merge_small_levels(data.level_counts, MAX_SEGMENTS)
    keys = ["segment", "entry_mob", "duration_mob", "event_type"]
    counts = frame.groupby(keys, sort=True)["loans"].sum().astype(np.int64)
    return counts.reset_index()


def event_table(counts: pd.DataFrame, max_mob: int | None = None) -> pd.DataFrame:
    """Return at_risk, defaults, prepayments and censored per segment and MOB 0..max_mob.

    at_risk(t) = loans with entry_mob < t ≤ duration_mob, from the aggregated counts.
    """
    rows = []
    for segment, group in counts.groupby("segment", sort=True):
        last = int(group["duration_mob"].max()) if max_mob is None else max_mob
        timeline = np.arange(0, last + 1)
        size = last + 2
        entries = np.bincount(group["entry_mob"].clip(0, size - 1), group["loans"], minlength=size)
        exits = np.bincount(group["duration_mob"].clip(0, size - 1), group["loans"], minlength=size)
        # at_risk(t) = entered at MOB < t minus left at MOB < t.
        entered_before = np.concatenate([[0], np.cumsum(entries)[:-1]])
        left_before = np.concatenate([[0], np.cumsum(exits)[:-1]])
        at_risk = (entered_before - left_before)[: last + 1]

        def by_type(event_type):
            part = group[group["event_type"] == event_type]
            return np.bincount(part["duration_mob"], part["loans"], minlength=size)[: last + 1]

        rows.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "timeline": timeline,
                    "at_risk": at_risk.astype(np.int64),
                    "defaults": by_type(DEFAULT).astype(np.int64),
                    "prepayments": by_type(PREPAYMENT).astype(np.int64),
                    "censored": by_type(0).astype(np.int64),
                }
            )
        )
    if not rows:
        return pd.DataFrame(
            columns=["segment", "timeline", "at_risk", "defaults", "prepayments", "censored"]
        )
    return pd.concat(rows, ignore_index=True)


class _ProductLimit:
    """Kaplan–Meier by formula on an event table, with lifelines' attribute names.

    S(t) = Π_{s ≤ t} (1 − d(s)/n(s)); the 95% band is exp(−exp(log(−log S) ± z·σ)) with
    σ² = Σ d/(n(n − d)) / (log S)², as lifelines 0.30 computes it. Unlike lifelines, it
    also continues when S(t) reaches 0 and loans still enter later (left truncation in a
    small segment): S stays 0.
    """

    def __init__(self, events: pd.DataFrame):
        n = events["at_risk"].to_numpy(float)
        d = events["defaults"].to_numpy(float)
        safe = np.where(n > 0, n, 1.0)
        survival = np.cumprod(np.where(n > 0, 1.0 - d / safe, 1.0))
        greenwood = np.cumsum(np.where((n > d) & (n > 0), d / (safe * np.maximum(n - d, 1.0)), 0.0))
        z = NormalDist().inv_cdf(1 - ALPHA / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_minus_log = np.log(-np.log(survival))
            sigma = np.sqrt(greenwood) / np.abs(np.log(survival))
            lower = np.exp(-np.exp(log_minus_log + z * sigma))
            upper = np.exp(-np.exp(log_minus_log - z * sigma))
        inside = (survival > 0) & (survival < 1)
        lower = np.where(inside, lower, survival)
        upper = np.where(inside, upper, survival)
        index = pd.Index(events["timeline"].to_numpy(float), name="timeline")
        self.survival_function_ = pd.DataFrame({"KM_estimate": survival}, index=index)
        self.confidence_interval_ = pd.DataFrame({"lower": lower, "upper": upper}, index=index)
        self.median_survival_time_ = _first_time_at_or_below_half(index, survival)


def _first_time_at_or_below_half(index: pd.Index, values: np.ndarray) -> float:
    """Return the first time at which a survival curve is ≤ 0.5, or inf when it never is."""
    below = np.flatnonzero(values <= 0.5)
    return float(index[below[0]]) if len(below) else np.inf


def _median_interval(fitter: _ProductLimit) -> tuple[float, float]:
    """Return the 95% interval of the median: the first times the lower and the upper band
    reach 0.5 (inf when they never do), the rule of lifelines' ``median_survival_times``."""
    bands = fitter.confidence_interval_
    lower = _first_time_at_or_below_half(bands.index, bands["lower"].to_numpy())
    upper = _first_time_at_or_below_half(bands.index, bands["upper"].to_numpy())
    return lower, upper


def _step_values(fitter, times: np.ndarray) -> pd.DataFrame:
    """Survival and CI at integer MOBs, carried forward from the last change at or before t."""
    survival = fitter.survival_function_.iloc[:, 0]
    bands = fitter.confidence_interval_
    index = survival.index.to_numpy()
    positions = np.searchsorted(index, times, side="right") - 1
    values = np.where(positions >= 0, survival.to_numpy()[np.clip(positions, 0, None)], 1.0)
    lower = np.where(positions >= 0, bands.iloc[:, 0].to_numpy()[np.clip(positions, 0, None)], 1.0)
    upper = np.where(positions >= 0, bands.iloc[:, 1].to_numpy()[np.clip(positions, 0, None)], 1.0)
    return pd.DataFrame({"survival": values, "ci_lower": lower, "ci_upper": upper})


def kaplan_meier(data: SurvivalData | SurvivalCounts, segment: str | None = None) -> KaplanMeierResult:
    """Fit Kaplan–Meier curves of time to default by ``segment`` (None: one curve).

    Every usable loan is used. Prepayments and censoring both end follow-up, so 1 − S(t)
    here is the default probability had no loan prepaid; see :func:`cumulative_incidence`.
    """
    notes = list(data.notes)
    counts = aggregate_counts(data, segment)
    if counts.empty:
        notes.append(Note("no_loans"))
        empty = pd.DataFrame(columns=KM_COLUMNS)
        return KaplanMeierResult(segment, data.event_dpd, empty, _empty_summary(), _empty_at(), None, notes)
    if segment is not None and counts["segment"].nunique() >= MAX_SEGMENTS and (
        counts["segment"] == "(other)"
    ).any():
        notes.append(Note("segments_merged", {"segment": segment, "max": MAX_SEGMENTS}))

    events = event_table(counts)
    tables, summaries, at_rows = [], [], []
    for label, group in counts.groupby("segment", sort=True):
        seg_events = events[events["segment"] == label].reset_index(drop=True)
        fitter = _ProductLimit(seg_events)
        if _reaches_zero_before_entry(seg_events):
            logger.warning("Kaplan–Meier of segment %s reaches 0 before later loans enter", label)
            notes.append(Note("km_reached_zero", {"segment": label}))
        steps = _step_values(fitter, seg_events["timeline"].to_numpy())
        tables.append(
            pd.DataFrame(
                {
                    "segment": label,
                    "timeline": seg_events["timeline"],
                    "at_risk": seg_events["at_risk"],
                    "events": seg_events["defaults"],
                    "censored": seg_events["prepayments"] + seg_events["censored"],
                }
            ).join(steps)
        )
        summaries.append(_segment_summary(label, group, fitter))
        at_rows.append(_survival_at(label, group, fitter))
        if group.loc[group["event_type"] == DEFAULT, "loans"].sum() == 0:
            notes.append(Note("segment_no_events", {"segment": label}))

    logrank = None
    if counts["segment"].nunique() >= 2:
        logrank = logrank_test(counts)
    elif segment is not None:
        notes.append(Note("logrank_one_segment"))
    return KaplanMeierResult(
        segment,
        data.event_dpd,
        pd.concat(tables, ignore_index=True)[KM_COLUMNS],
        pd.DataFrame(summaries),
        pd.concat(at_rows, ignore_index=True),
        logrank,
        notes,
    )


def _reaches_zero_before_entry(events: pd.DataFrame) -> bool:
    """Return True when S(t) drops to 0 at some MOB (every loan at risk defaults there)
    while loans that entered later are still at risk (left truncation)."""
    n = events["at_risk"].to_numpy()
    d = events["defaults"].to_numpy()
    wiped = np.flatnonzero((n > 0) & (d >= n))
    return bool(len(wiped)) and bool((n[wiped[0] + 1:] > 0).any())


def _segment_summary(label, group: pd.DataFrame, fitter) -> dict:
    median = float(fitter.median_survival_time_)
    lower, upper = _median_interval(fitter)
    reached = math.isfinite(median)
    return {
        "segment": label,
        "loans": int(group["loans"].sum()),
        "defaults": int(group.loc[group["event_type"] == DEFAULT, "loans"].sum()),
        "median_mob": median if reached else np.nan,
        "median_ci_lower": lower if math.isfinite(lower) else np.nan,
        "median_ci_upper": upper if math.isfinite(upper) else np.nan,
        "median_reached": reached,
    }


def _survival_at(label, group: pd.DataFrame, fitter) -> pd.DataFrame:
    months = np.array(SURVIVAL_AT_MONTHS)
    values = _step_values(fitter, months)
    # No extrapolation: beyond the longest follow-up of the segment the value is unknown.
    beyond = months > int(group["duration_mob"].max())
    values.loc[beyond, :] = np.nan
    return pd.DataFrame({"segment": label, "month": months}).join(values)


def _empty_summary() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["segment", "loans", "defaults", "median_mob", "median_ci_lower", "median_ci_upper", "median_reached"]
    )


def _empty_at() -> pd.DataFrame:
    return pd.DataFrame(columns=["segment", "month", "survival", "ci_lower", "ci_upper"])


def logrank_test(counts: pd.DataFrame) -> TestResult:
    """Log-rank test that the default hazard is the same in every segment.

    Computed on the aggregated risk sets, so left truncation and counts are respected. At
    each MOB t with d(t) defaults among n(t) loans at risk, segment j expects
    d(t)·n_j(t)/n(t) defaults. The statistic is (O − E)ᵀ V⁻¹ (O − E) over k − 1 segments,
    with the hypergeometric variance V, and is chi-square with k − 1 degrees of freedom.
    """
    last = int(counts["duration_mob"].max())
    events = event_table(counts, max_mob=last)
    at_risk = events.pivot(index="timeline", columns="segment", values="at_risk").to_numpy(float)
    defaults = events.pivot(index="timeline", columns="segment", values="defaults").to_numpy(float)
    n_total = at_risk.sum(axis=1)
    d_total = defaults.sum(axis=1)
    use = (n_total > 0) & (d_total > 0)
    at_risk, defaults, n_total, d_total = at_risk[use], defaults[use], n_total[use], d_total[use]

    share = at_risk / n_total[:, None]
    observed_minus_expected = (defaults - d_total[:, None] * share).sum(axis=0)
    tie_factor = np.where(n_total > 1, d_total * (n_total - d_total) / np.maximum(n_total - 1, 1), 0.0)
    k = at_risk.shape[1]
    variance = np.zeros((k, k))
    for factor, row in zip(tie_factor, share):
        variance += factor * (np.diag(row) - np.outer(row, row))
    # Drop the last segment: the k deviations sum to zero.
    reduced = observed_minus_expected[:-1]
    statistic = float(reduced @ np.linalg.pinv(variance[:-1, :-1]) @ reduced)
    df = k - 1
    return TestResult("log-rank", statistic, df, chi2_sf(statistic, df))


def chi2_sf(statistic: float, df: int) -> float:
    """Return P(X > statistic) for X chi-square with a whole number ``df`` ≥ 1 of degrees
    of freedom, by the closed-form sums for whole df, so the page needs no scipy import.

    Even df = 2m: e^{-x/2} Σ_{i<m} (x/2)^i / i!. Odd df = 2m + 1: erfc(√(x/2)) +
    Σ_{1≤i≤m} e^{-x/2} (x/2)^{i−1/2} / Γ(i + 1/2). Terms are summed in logs so large
    statistics underflow to 0 instead of overflowing.
    """
    if df < 1 or int(df) != df:
        raise ValueError(f"degrees of freedom must be a whole number ≥ 1; got {df!r}")
    if not statistic > 0:
        return 1.0
    half = statistic / 2.0
    log_half = math.log(half)
    if df % 2 == 0:
        terms = [-half + i * log_half - math.lgamma(i + 1) for i in range(df // 2)]
        return min(1.0, sum(math.exp(term) for term in terms))
    tail = math.erfc(math.sqrt(half))
    terms = [-half + (i - 0.5) * log_half - math.lgamma(i + 0.5) for i in range(1, (df - 1) // 2 + 1)]
    return min(1.0, tail + sum(math.exp(term) for term in terms))


def cumulative_incidence(data: SurvivalData | SurvivalCounts, segment: str | None = None) -> IncidenceResult:
    """Cumulative incidence of default and of prepayment by segment (Aalen–Johansen).

    CIF_k(t) = Σ_{s ≤ t} S(s−) · d_k(s) / n(s), where S is the Kaplan–Meier probability of
    neither event and n(s) the loans at risk. Computed directly on the event table because
    monthly data has tied times everywhere, and lifelines' AalenJohansenFitter breaks ties by
    random jitter, which moves defaults behind same-month censorings. 1 − KM (prepayments
    censored) is given beside it: it overstates default when loans prepay, because it treats
    prepaid loans as if they could still default.
    """
    counts = aggregate_counts(data, segment)
    notes = []
    if counts.empty:
        notes.append(Note("no_loans"))
        return IncidenceResult(segment, data.event_dpd, pd.DataFrame(), notes)
    events = event_table(counts)
    parts = []
    for _, group in events.groupby("segment", sort=True):
        group = group.reset_index(drop=True)
        n = group["at_risk"].to_numpy(float)
        d_default = group["defaults"].to_numpy(float)
        d_prepay = group["prepayments"].to_numpy(float)
        safe_n = np.where(n > 0, n, 1.0)
        hazard_any = np.where(n > 0, (d_default + d_prepay) / safe_n, 0.0)
        survival_any = np.cumprod(1.0 - hazard_any)
        survival_before = np.concatenate([[1.0], survival_any[:-1]])
        hazard_default = np.where(n > 0, d_default / safe_n, 0.0)
        hazard_prepay = np.where(n > 0, d_prepay / safe_n, 0.0)
        group["cif_default"] = np.cumsum(survival_before * hazard_default)
        group["cif_prepayment"] = np.cumsum(survival_before * hazard_prepay)
        group["one_minus_km"] = 1.0 - np.cumprod(1.0 - hazard_default)
        parts.append(group)
    return IncidenceResult(segment, data.event_dpd, pd.concat(parts, ignore_index=True), notes)


# ---------------------------------------------------------------------------------------
# Report command: python -m analysis survival


def _add_survival_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event-dpd",
        type=int,
        choices=EVENT_DPD_CHOICES,
        default=DEFAULT_EVENT_DPD,
        help="default = first month-end with dpd above this many days, or charge-off (default 90)",
    )
    parser.add_argument(
        "--segment",
        help=f"one curve per value of this column: {', '.join(SEGMENT_COLUMNS)} "
        f"or {ATTRIBUTE_PREFIX}<extra attribute>; default: one curve for all loans",
    )


def _run_survival(con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    segment = args.segment or None
    if segment and not segment.startswith(ATTRIBUTE_PREFIX) and segment not in SEGMENT_COLUMNS:
        raise ValueError(
            f"--segment must be one of {', '.join(SEGMENT_COLUMNS)} or "
            f"{ATTRIBUTE_PREFIX}<extra attribute>; got {segment!r}"
        )
    data = load_survival_counts(con, filters, args.event_dpd, segment)
    if data.n_loans == 0:
        raise ValueError("no loans with follow-up match the filters; nothing to estimate")
    result = kaplan_meier(data, segment)
    for note in result.notes:
        logger.warning("%s", note.text("en"))
    if result.logrank is not None:
        logger.info("%s", result.logrank.verdict("en"))
    return result.table


SURVIVAL_COMMAND = Command(
    name="survival",
    help="Kaplan–Meier table of time to default (MOB) by segment, with 95% confidence bands",
    run=_run_survival,
    add_arguments=_add_survival_arguments,
)
