"""Cox proportional hazards model of time to default (lifelines ``CoxPHFitter``).

Steps, each leaving a note for the reader instead of an exception:

1. Build the design matrix. Categorical covariates become indicator columns against a named
   baseline, the most frequent level among levels with defaults. Text columns with more
   than ``max_levels`` levels keep the largest levels and merge the rest into ``(other)``.
   Principal is in 万元 (10,000 yuan), annual_rate in percentage points.
2. Drop constant columns and columns that are a linear combination of earlier ones
   (collinear), naming them. Levels with no default (the hazard ratio would be 0) are
   dropped with their loans.
3. Above ``sample_threshold`` loans, fit on a stratified random sample of
   ``sample_size`` loans: the same fraction from every stratum of (default or not) ×
   segment, so the sample keeps the book's mix and needs no weights. (Weighted
   case-cohort sampling would keep more defaults, but lifelines 0.30's robust variance,
   which weights require, took about a minute on 50,000 rows on a busy 2-core machine.)
4. Fit with left truncation (``entry_col``). On convergence trouble, refit with a small
   ridge penalty and add a note.
5. Test proportional hazards per covariate (lifelines ``proportional_hazard_test``, rank
   time transform) and state a verdict in words.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from analysis.cli import Command, UsageError
from analysis.filters import Filters
from analysis.survival_data import (
    ATTRIBUTE_PREFIX,
    DEFAULT,
    DEFAULT_EVENT_DPD,
    EVENT_DPD_CHOICES,
    MISSING_LABEL,
    NUMERIC_COLUMNS,
    OTHER_LABEL,
    SEGMENT_COLUMNS,
    Note,
    SurvivalData,
    check_attributes,
    check_column,
    load_survival_data,
)

if TYPE_CHECKING:
    from lifelines import CoxPHFitter

# lifelines (with scipy) is imported inside the functions that fit or test, because its
# import took about 1 s (python -X importtime, 2-core machine) and the survival page
# imports this module on every load, also when no Cox model is fitted.

logger = logging.getLogger(__name__)

ALPHA = 0.05
SAMPLE_THRESHOLD = 200_000
SAMPLE_SEED = 20_240_601
MAX_LEVELS = 20
MIN_EVENTS = 10
EVENTS_PER_PARAMETER = 10
PH_ALPHA = 0.05
RETRY_PENALIZER = 0.01
MAX_STANDARDISED_COEF = 5.0
# Unit of one step of each numeric covariate: divide the stored value by this.
NUMERIC_SCALE = {"principal": 10_000.0, "annual_rate": 0.01}
NUMERIC_TERM_NAME = {"principal": "principal_10k_yuan", "annual_rate": "annual_rate_pp"}
COX_COLUMNS = ["covariate", "hazard_ratio", "ci_lower", "ci_upper", "p_value"]


@dataclass
class SampleInfo:
    """Sizes and sampling fraction of the Cox sample drawn from a large book."""

    loans_total: int
    loans_sampled: int
    defaults_total: int
    defaults_sampled: int
    fraction: float
    strata: str


@dataclass
class CoxResult:
    """A fitted Cox model, or as much of it as could be estimated.

    ``table``: covariate (term name), variable, level, baseline, hazard_ratio, ci_lower,
    ci_upper (95%), p_value (Wald), coef, se. ``ph_test``: covariate, test_statistic,
    p_value, ph_holds (bool). ``fitted`` is False when no model could be fitted, and the
    notes give the reason.
    """

    covariates: list[str]
    event_dpd: int
    table: pd.DataFrame
    ph_test: pd.DataFrame
    concordance: float | None
    n_loans: int
    n_events: int
    baselines: dict[str, str]
    dropped: dict[str, str]
    sample: SampleInfo | None
    penalizer: float
    fitted: bool
    test_name: str = "Cox proportional hazards, Wald 95% CI (lifelines CoxPHFitter)"
    notes: list[Note] = field(default_factory=list)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["covariate", "variable", "level", "baseline", "hazard_ratio", "ci_lower", "ci_upper", "p_value", "coef", "se"]
    )


def _covariate_kind(records: pd.DataFrame, name: str) -> str:
    """Return 'numeric' or 'categorical'. Extra attributes are numeric when every value parses."""
    if name in NUMERIC_COLUMNS:
        return "numeric"
    if name in SEGMENT_COLUMNS:
        return "categorical"
    values = records[name].dropna()
    if len(values) and pd.to_numeric(values, errors="coerce").notna().all():
        return "numeric"
    return "categorical"


def build_design(records: pd.DataFrame, covariates: list[str], max_levels: int = MAX_LEVELS):
    """Return (design frame, term info, baselines, dropped, notes) for the Cox fit.

    The design frame contains entry_mob, duration_mob, event and one column per term.
    """
    notes: list[Note] = []
    dropped: dict[str, str] = {}
    baselines: dict[str, str] = {}
    terms: dict[str, tuple[str, str | None]] = {}  # term -> (variable, level)
    frame = records[["entry_mob", "duration_mob", "event"]].copy()
    frame["event"] = frame["event"].astype(int)
    keep = pd.Series(True, index=records.index)

    for name in covariates:
        check_column(name, records.columns)
        kind = _covariate_kind(records, name)
        if kind == "numeric":
            values = pd.to_numeric(records[name], errors="coerce").astype(float)
            values = values / NUMERIC_SCALE.get(name, 1.0)
            missing = int(values.isna().sum())
            if missing == len(values):
                dropped[name] = "all_missing"
                notes.append(Note("dropped_all_missing", {"column": name}))
                continue
            if missing:
                notes.append(Note("rows_missing", {"column": name, "count": missing}))
                keep &= values.notna()
            term = NUMERIC_TERM_NAME.get(name, name)
            frame[term] = values
            terms[term] = (name, None)
            continue

        if records[name].isna().all():
            dropped[name] = "all_missing"
            notes.append(Note("dropped_all_missing", {"column": name}))
            continue
        labels = records[name].astype("string").fillna(MISSING_LABEL).astype(str)
        counts = labels.value_counts()
        if len(counts) > max_levels:
            kept_levels = set(counts.index[: max_levels - 1])
            labels = labels.where(labels.isin(kept_levels), OTHER_LABEL)
            notes.append(
                Note("levels_merged", {"column": name, "levels": len(counts), "max": max_levels})
            )
        # A level with no default would get a hazard ratio of 0 (separation): leave it out.
        events_by_level = frame["event"].groupby(labels).sum()
        silent = sorted(level for level, events in events_by_level.items() if events == 0)
        if silent and len(silent) < len(events_by_level):
            notes.append(
                Note("level_no_events", {"column": name, "levels": ", ".join(map(str, silent))})
            )
            keep &= ~labels.isin(silent)
        frame[name] = labels
        terms[name] = (name, "categorical")

    # The design keeps the records' index, so a row can be traced back to its loan.
    frame = frame.loc[keep]
    design = frame[["entry_mob", "duration_mob", "event"]].copy()
    term_info: dict[str, tuple[str, str | None, str | None]] = {}
    for term, (variable, kind) in terms.items():
        if kind != "categorical":
            if frame[term].nunique() <= 1:
                dropped[variable] = "constant"
                notes.append(Note("dropped_constant", {"column": variable}))
                continue
            design[term] = frame[term]
            term_info[term] = (variable, None, None)
            continue
        labels = frame[term]
        counts = labels.value_counts()
        if len(counts) <= 1:
            dropped[variable] = "constant"
            notes.append(Note("dropped_constant", {"column": variable}))
            continue
        # Baseline: the most frequent level; ties go to the first in sort order.
        ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        baseline = str(ordered[0][0])
        baselines[variable] = baseline
        for level, _ in sorted(ordered[1:], key=lambda item: str(item[0])):
            column = f"{variable}={level}"
            design[column] = (labels == level).astype(float)
            term_info[column] = (variable, str(level), baseline)

    design, term_info = _drop_collinear(design, term_info, dropped, notes)
    return design, term_info, baselines, dropped, notes


def _drop_collinear(design, term_info, dropped, notes):
    """Drop each term that is (near) a linear combination of a constant and earlier terms."""
    names = list(term_info)
    if not names:
        return design, term_info
    matrix = design[names].to_numpy(float)
    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    centred = (matrix - matrix.mean(axis=0)) / scale
    kept: list[int] = []

    for index, name in enumerate(names):
        column = centred[:, index]
        if kept:
            basis = centred[:, kept]
            coefficients, *_ = np.linalg.lstsq(basis, column, rcond=None)
            residual = column - basis @ coefficients
        else:
            coefficients, residual = np.array([]), column

        if np.linalg.norm(residual) <= 1e-6 * max(np.linalg.norm(column), 1e-12):
            if np.linalg.norm(column) == 0:
                partners = "—"
            else:
                partners = ", ".join(
                    names[kept[i]] for i in np.flatnonzero(np.abs(coefficients) > 1e-6)
                )
            variable = term_info[name][0]
            dropped[name] = "collinear"
            notes.append(Note("dropped_collinear", {"column": name, "with": partners}))
            logger.info("dropped collinear term %s (combination of %s) from %s", name, partners, variable)
            continue
        kept.append(index)

    kept_names = [names[i] for i in kept]
    design = design[["entry_mob", "duration_mob", "event", *kept_names]]
    return design, {name: term_info[name] for name in kept_names}


def stratified_sample(
    records: pd.DataFrame, strata: pd.Series, size: int, seed: int = SAMPLE_SEED
) -> tuple[pd.DataFrame, SampleInfo]:
    """Draw about ``size`` records, the same fraction from every (default or not) × stratum.

    With one sampling fraction for all strata, the sample keeps the book's mix of defaults
    and segments, so hazard ratios need no weights. The intervals are those of a model
    fitted on ``size`` loans: wider than on the whole book, never falsely narrow.
    """
    fraction = min(1.0, size / len(records))
    keys = pd.DataFrame(
        {"event": records["event"].to_numpy(), "stratum": strata.to_numpy()}, index=records.index
    )
    chosen = keys.groupby(["event", "stratum"], sort=True, dropna=False).sample(
        frac=fraction, random_state=seed
    )
    sample = records.loc[np.sort(chosen.index.to_numpy())]
    info = SampleInfo(
        loans_total=len(records),
        loans_sampled=len(sample),
        defaults_total=int(records["event"].sum()),
        defaults_sampled=int(sample["event"].sum()),
        fraction=fraction,
        strata=str(strata.name),
    )
    return sample, info


def fit_cox(
    data: SurvivalData,
    covariates: list[str],
    *,
    segment: str | None = None,
    max_levels: int = MAX_LEVELS,
    sample_threshold: int = SAMPLE_THRESHOLD,
    sample_size: int = SAMPLE_THRESHOLD,
    seed: int = SAMPLE_SEED,
) -> CoxResult:
    """Fit a Cox model of time to default on ``covariates``.

    Problems in the data (constant, collinear or event-free columns, too few events,
    convergence trouble) become notes, not exceptions. An unknown column name raises
    ValueError. ``segment`` names the column used with event status to stratify the sample of a
    large book (default: the first categorical covariate).
    """
    covariates = [name for name in dict.fromkeys(covariates) if name]
    records = data.records
    notes: list[Note] = []
    result = CoxResult(
        covariates, data.event_dpd, _empty_table(), pd.DataFrame(), None,
        len(records), int(records["event"].sum()) if len(records) else 0,
        {}, {}, None, 0.0, False, notes=notes,
    )
    if not covariates:
        notes.append(Note("cox_no_covariates"))
        return result
    if records.empty:
        notes.append(Note("no_loans"))
        return result

    if len(records) > sample_threshold:
        stratum_column = segment or next(
            (name for name in covariates if name in SEGMENT_COLUMNS or name.startswith(ATTRIBUTE_PREFIX)),
            None,
        )
        if stratum_column and stratum_column in records.columns:
            strata = records[stratum_column].astype("string").fillna(MISSING_LABEL)
        else:
            strata = pd.Series("all", index=records.index)
        records, result.sample = stratified_sample(
            records, strata.rename(stratum_column or "all"), sample_size, seed
        )
        notes.append(
            Note(
                "cox_sampled",
                {
                    "total": result.sample.loans_total,
                    "sampled": result.sample.loans_sampled,
                    "threshold": sample_threshold,
                    "defaults": result.sample.defaults_sampled,
                    "strata": result.sample.strata,
                },
            )
        )

    design, term_info, result.baselines, result.dropped, design_notes = build_design(
        records, covariates, max_levels
    )
    notes.extend(design_notes)
    result.n_loans = len(design)
    result.n_events = int(design["event"].sum())
    if not term_info:
        notes.append(Note("cox_no_terms"))
        return result
    if result.n_events == 0:
        notes.append(Note("cox_no_events"))
        return result
    if result.n_events < MIN_EVENTS:
        notes.append(Note("cox_few_events", {"events": result.n_events, "min": MIN_EVENTS}))
    elif result.n_events < EVENTS_PER_PARAMETER * len(term_info):
        notes.append(
            Note("cox_low_epv", {"events": result.n_events, "terms": len(term_info), "epv": EVENTS_PER_PARAMETER})
        )

    fitter, penalizer, fit_notes = _fit(design)
    notes.extend(fit_notes)
    if fitter is None:
        return result
    result.penalizer = penalizer
    result.fitted = True
    result.table = _hazard_table(fitter, term_info)
    result.concordance = float(fitter.concordance_index_)
    result.ph_test, ph_notes = _ph_test(fitter, design)
    notes.extend(ph_notes)
    return result


def _fit(design: pd.DataFrame):
    """Fit the Cox model, retrying with a ridge penalty on convergence trouble."""
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError, ConvergenceWarning

    notes: list[Note] = []
    for penalizer in (0.0, RETRY_PENALIZER, 0.1):
        fitter = CoxPHFitter(alpha=ALPHA, penalizer=penalizer)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fitter.fit(
                    design,
                    duration_col="duration_mob",
                    event_col="event",
                    entry_col="entry_mob",
                )
            except (ConvergenceError, np.linalg.LinAlgError, ValueError, ZeroDivisionError) as error:
                logger.warning("Cox fit failed with penalizer %s: %s", penalizer, error)
                continue
        trouble = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
        # A log hazard ratio beyond MAX_STANDARDISED_COEF per standard deviation of its
        # column means separation (a near-perfect predictor), not a credit effect.
        spread = design[fitter.params_.index].std().to_numpy()
        standardised = np.abs(fitter.params_.to_numpy() * spread)
        unstable = not np.all(np.isfinite(fitter.summary["se(coef)"])) or (
            standardised > MAX_STANDARDISED_COEF
        ).any()
        if (trouble or unstable) and penalizer < 0.1:
            for warning in trouble:
                logger.warning("Cox fit with penalizer %s: %s", penalizer, warning.message)
            continue
        if penalizer > 0:
            notes.append(Note("cox_penalized", {"penalizer": penalizer}))
        return fitter, penalizer, notes
    notes.append(Note("cox_failed"))
    return None, 0.0, notes


def _hazard_table(fitter: CoxPHFitter, term_info) -> pd.DataFrame:
    summary = fitter.summary
    rows = []
    for term, (variable, level, baseline) in term_info.items():
        row = summary.loc[term]
        rows.append(
            {
                "covariate": term if level is None else f"{variable}={level} (baseline {baseline})",
                "variable": variable,
                "level": level,
                "baseline": baseline,
                "hazard_ratio": float(row["exp(coef)"]),
                "ci_lower": float(row["exp(coef) lower 95%"]),
                "ci_upper": float(row["exp(coef) upper 95%"]),
                "p_value": float(row["p"]),
                "coef": float(row["coef"]),
                "se": float(row["se(coef)"]),
            }
        )
    return pd.DataFrame(rows)


def schoenfeld_residuals(fitter: CoxPHFitter, design: pd.DataFrame) -> pd.DataFrame:
    """Return Schoenfeld residuals of the default rows, with left-truncated risk sets.

    lifelines 0.30 computes residuals only without ``entry_col``. Here the risk set at MOB t
    is every row with entry_mob < t ≤ duration_mob; ties use Efron's weighted mean, as in
    lifelines. Rows are indexed like ``design`` and ordered like ``fitter.durations``.
    """
    terms = list(fitter.params_.index)
    x = design[terms].to_numpy(float)
    duration = design["duration_mob"].to_numpy(float)
    entry = design["entry_mob"].to_numpy(float)
    event = design["event"].to_numpy() == 1
    score = np.exp((x - fitter._norm_mean.to_numpy()) @ fitter.params_.to_numpy())
    score_x = score[:, None] * x

    # Sums over rows with duration ≥ t minus rows with entry ≥ t, via reverse cumulative sums.
    def sums_at(times, keys, values):
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        tail = np.cumsum(values[order][::-1], axis=0)[::-1]
        tail = np.concatenate([tail, np.zeros((1,) + tail.shape[1:])])
        return tail[np.searchsorted(sorted_keys, times, side="left")]

    event_times = np.unique(duration[event])
    s0 = sums_at(event_times, duration, score) - sums_at(event_times, entry, score)
    s1 = sums_at(event_times, duration, score_x) - sums_at(event_times, entry, score_x)

    residuals = np.zeros((len(design), len(terms)))
    for position, time in enumerate(event_times):
        tied = np.flatnonzero(event & (duration == time))
        count = len(tied)
        tie_s0 = score[tied].sum()
        tie_s1 = score_x[tied].sum(axis=0)
        fractions = np.arange(count) / count
        numerators = s1[position][None, :] - fractions[:, None] * tie_s1[None, :]
        denominators = s0[position] - fractions * tie_s0
        weighted_mean = (numerators / denominators[:, None]).sum(axis=0) / count
        residuals[tied] = x[tied] - weighted_mean
    frame = pd.DataFrame(residuals[event], index=design.index[event], columns=terms)
    order = fitter.durations.index[fitter.event_observed.to_numpy().astype(bool)]
    return frame.loc[order]


def _ph_test(fitter: CoxPHFitter, design: pd.DataFrame):
    """Schoenfeld-residual test of proportional hazards per term, with a verdict."""
    from lifelines.statistics import proportional_hazard_test

    notes: list[Note] = []
    empty = pd.DataFrame(columns=["covariate", "test_statistic", "p_value", "ph_holds"])
    try:
        residuals = schoenfeld_residuals(fitter, design)
        n_events = fitter.event_observed.sum()
        scaled = n_events * residuals.dot(fitter.variance_matrix_)
        scaled.columns = fitter.params_.index
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = proportional_hazard_test(
                fitter, design, time_transform="rank", precomputed_residuals=scaled
            )
    except (ValueError, KeyError, np.linalg.LinAlgError, FloatingPointError) as error:
        logger.warning("proportional-hazards test failed: %s", error)
        notes.append(Note("ph_test_failed"))
        return empty, notes
    summary = test.summary.reset_index()
    summary = summary.rename(columns={summary.columns[0]: "covariate", "p": "p_value"})
    table = summary[["covariate", "test_statistic", "p_value"]].copy()
    table["ph_holds"] = table["p_value"] >= PH_ALPHA
    violated = table.loc[~table["ph_holds"], "covariate"].tolist()
    if violated:
        notes.append(Note("ph_violated", {"terms": ", ".join(violated)}))
    return table, notes


# ---------------------------------------------------------------------------------------
# Report command: python -m analysis cox


def _add_cox_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--covariates",
        required=True,
        help=f"comma-separated covariates: {', '.join([*SEGMENT_COLUMNS, *NUMERIC_COLUMNS])} "
        f"or {ATTRIBUTE_PREFIX}<extra attribute>",
    )
    parser.add_argument(
        "--event-dpd",
        type=int,
        choices=EVENT_DPD_CHOICES,
        default=DEFAULT_EVENT_DPD,
        help="default = first month-end with dpd above this many days, or charge-off (default 90)",
    )


def _run_cox(con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    covariates = [part.strip() for part in args.covariates.split(",") if part.strip()]
    known = {*SEGMENT_COLUMNS, *NUMERIC_COLUMNS}
    unknown = [name for name in covariates if name not in known and not name.startswith(ATTRIBUTE_PREFIX)]
    if not covariates or unknown:
        raise UsageError(
            f"--covariates must list columns from {', '.join(sorted(known))} or "
            f"{ATTRIBUTE_PREFIX}<extra attribute>; got unknown {unknown or covariates!r}"
        )
    attributes = [name[len(ATTRIBUTE_PREFIX):] for name in covariates if name.startswith(ATTRIBUTE_PREFIX)]
    check_attributes(con, attributes)
    data = load_survival_data(con, filters, args.event_dpd, attributes)
    result = fit_cox(data, covariates)
    for note in result.notes:
        logger.warning("%s", note.text("en"))
    if not result.fitted:
        raise ValueError("the Cox model could not be fitted; see the warnings above")
    logger.info(
        "Cox model: %d loans, %d defaults, concordance %.3f", result.n_loans, result.n_events, result.concordance
    )
    return result.table[COX_COLUMNS]


COX_COMMAND = Command(
    name="cox",
    help="Cox proportional-hazards hazard ratios of time to default, with 95% confidence intervals",
    run=_run_cox,
    add_arguments=_add_cox_arguments,
)
