"""Vintage curves (账龄分析) and the Markov forecast of young cohorts' ever-bad rates.

Definitions (the product's metric definitions, "Vintage curves"): for cohort v and MOB k,
among filtered loans originated in v,

- ever x+ by count: loans with dpd > x at some month-end up to MOB k, or charged off by
  then, / loans in the cohort;
- ever x+ by balance: the disbursed principal of those loans / cohort principal;
- current x+ by balance: outstanding principal at MOB k of active loans with dpd > x /
  cohort principal (by count: the number of such loans / cohort loans).

MOB 0 is the origination month. A cohort reaches MOB k when its last origination month
plus k is not after the as-of month. Cells it has not reached are absent (blank), never
zero. Cohorts with fewer than ``min_loans`` loans are flagged small and left out of every
average. A cohort is flagged worse at MOB k when its rate exceeds the mean rate of the
previous ``reference_cohorts`` (default 6) cohorts that are not small at the same MOB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

import queries
from analysis.buckets import DEFAULT_BUCKETS, Buckets
from analysis.cli import Command
from analysis.filters import Filters, month_end, resolve_as_of
from analysis.rollrate import MigrationMatrix, migration_matrix

logger = logging.getLogger(__name__)

BY_VALUES = ("count", "balance")
BASIS_VALUES = ("ever", "current")
COHORT_VALUES = ("month", "quarter")
DEFAULT_THRESHOLD = 30
DEFAULT_MIN_LOANS = 30
REFERENCE_COHORTS = 6
# Fewer non-small earlier cohorts than this give no reference, so no "worse" flag.
MIN_REFERENCE_COHORTS = 3
REPORT_COLUMNS = ["vintage", "mob", "loans", "principal", "bad_loans", "bad_principal", "rate"]


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 0:
        raise ValueError(f"threshold must be whole days >= 0, e.g. 30; got {threshold!r}")


def vintage_label(vintage: dt.date, cohort: str) -> str:
    """Return a cohort's label: '2026-01' for a month, '2026Q1' for a quarter."""
    if cohort == "quarter":
        return f"{vintage.year}Q{(vintage.month - 1) // 3 + 1}"
    return f"{vintage:%Y-%m}"


def load_vintage_cells(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    threshold: int = DEFAULT_THRESHOLD,
    cohort: str = "month",
) -> pd.DataFrame:
    """Return query ``vintage_cells`` (one row per reached cohort x MOB) with float amounts."""
    _check_threshold(threshold)
    _check_choice("cohort", cohort, COHORT_VALUES)
    filters = resolve_as_of(con, filters)
    params = {**filters.params(), "threshold": int(threshold), "quarterly": cohort == "quarter"}
    frame = queries.run(con, "vintage_cells", params)
    frame["vintage"] = pd.to_datetime(frame["vintage"]).dt.date
    for column in ("principal", "ever_bad_principal", "current_bad_balance"):
        frame[column] = frame[column].astype(float)
    return frame


@dataclass(frozen=True)
class VintageCurves:
    """Vintage rates by cohort and MOB, with small-cohort and worse-than-recent flags.

    ``table`` has one row per reached (vintage, mob): vintage (date), vintage_label, mob,
    loans, principal, bad_loans, bad_principal, rate, is_small, reference_rate (mean of the
    previous non-small cohorts at that MOB, NaN without enough of them) and is_worse. For
    basis "current" bad_principal is outstanding principal, not disbursed principal.
    """

    threshold: int
    by: str
    basis: str
    cohort: str
    min_loans: int
    table: pd.DataFrame

    @property
    def is_empty(self) -> bool:
        """True when no cohort has reached MOB 0."""
        return self.table.empty

    def report(self) -> pd.DataFrame:
        """Return the report command's columns, the vintage as its label."""
        report = self.table.assign(vintage=self.table["vintage_label"])
        return report[REPORT_COLUMNS].reset_index(drop=True)

    def heatmap(self) -> pd.DataFrame:
        """Return rates as a cohort x MOB table; cells not reached are NaN (shown blank)."""
        if self.table.empty:
            return pd.DataFrame()
        wide = self.table.pivot(index="vintage_label", columns="mob", values="rate")
        order = self.table.drop_duplicates("vintage_label").sort_values("vintage")["vintage_label"]
        return wide.reindex(index=list(order))

    def cohorts(self) -> pd.DataFrame:
        """Return one row per cohort: vintage_label, loans, principal, reached_mob, latest
        rate, is_small and is_worse (worse at its latest MOB)."""
        if self.table.empty:
            return pd.DataFrame(
                columns=["vintage", "vintage_label", "loans", "principal", "reached_mob",
                         "rate", "is_small", "is_worse"]
            )
        latest = self.table.sort_values(["vintage", "mob"]).groupby("vintage", sort=True).tail(1)
        latest = latest.rename(columns={"mob": "reached_mob"})
        return latest[
            ["vintage", "vintage_label", "loans", "principal", "reached_mob", "rate", "is_small", "is_worse"]
        ].reset_index(drop=True)

    def average(self) -> pd.DataFrame:
        """Return the mean rate of the non-small cohorts at each MOB (columns mob, rate, cohorts)."""
        eligible = self.table[~self.table["is_small"]]
        if eligible.empty:
            return pd.DataFrame(columns=["mob", "rate", "cohorts"])
        grouped = eligible.groupby("mob")["rate"]
        return pd.DataFrame({"rate": grouped.mean(), "cohorts": grouped.count()}).reset_index()


def _add_reference_rates(table: pd.DataFrame, reference_cohorts: int, margin: float) -> pd.DataFrame:
    """Add reference_rate and is_worse: each cell against the previous non-small cohorts."""
    wide = table.pivot(index="vintage", columns="mob", values="rate").sort_index()
    small = table.drop_duplicates("vintage").set_index("vintage")["is_small"].reindex(wide.index)
    rates = wide.to_numpy(dtype=float)
    reference = np.full(rates.shape, np.nan)
    eligible_rows: list[int] = []
    for row, is_small in enumerate(small.to_numpy(dtype=bool)):
        previous = eligible_rows[-reference_cohorts:]
        if len(previous) >= MIN_REFERENCE_COHORTS:
            window = rates[previous]
            counts = np.count_nonzero(~np.isnan(window), axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.nansum(window, axis=0) / counts
            reference[row] = np.where(counts >= MIN_REFERENCE_COHORTS, means, np.nan)
        if not is_small:
            eligible_rows.append(row)
    reference_frame = pd.DataFrame(reference, index=wide.index, columns=wide.columns)
    long = reference_frame.stack().rename("reference_rate").reset_index()
    table = table.merge(long, on=["vintage", "mob"], how="left")
    table["is_worse"] = (
        ~table["is_small"]
        & table["reference_rate"].notna()
        & (table["rate"] > table["reference_rate"] + margin)
    )
    return table


def vintage_curves(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    threshold: int = DEFAULT_THRESHOLD,
    by: str = "count",
    basis: str = "ever",
    cohort: str = "month",
    min_loans: int = DEFAULT_MIN_LOANS,
    reference_cohorts: int = REFERENCE_COHORTS,
    margin: float = 0.0,
) -> VintageCurves:
    """Compute vintage rates (ever or current x+, by count or balance) by cohort and MOB.

    ``margin`` is how far (as a fraction, e.g. 0.005 = 0.5 pp) a rate must exceed the
    reference to be flagged worse; 0 flags any excess.

    Raises
    ------
    ValueError
        If a choice is not one of the allowed values or the threshold is negative.
    """
    _check_choice("by", by, BY_VALUES)
    _check_choice("basis", basis, BASIS_VALUES)
    if min_loans < 0:
        raise ValueError(f"min_loans must be >= 0; got {min_loans}")
    cells = load_vintage_cells(con, filters, threshold, cohort)
    if basis == "ever":
        bad_loans, bad_principal = cells["ever_bad_count"], cells["ever_bad_principal"]
    else:
        bad_loans, bad_principal = cells["current_bad_count"], cells["current_bad_balance"]
    table = pd.DataFrame(
        {
            "vintage": cells["vintage"],
            "vintage_label": [vintage_label(v, cohort) for v in cells["vintage"]],
            "mob": cells["mob"].astype(int),
            "loans": cells["loan_count"].astype("int64"),
            "principal": cells["principal"],
            "bad_loans": bad_loans.astype("int64"),
            "bad_principal": bad_principal.round(2),
        }
    )
    if by == "count":
        table["rate"] = table["bad_loans"] / table["loans"]
    else:
        table["rate"] = table["bad_principal"] / table["principal"].where(table["principal"] > 0)
    table["is_small"] = table["loans"] < min_loans
    if table.empty:
        table["reference_rate"] = pd.Series(dtype=float)
        table["is_worse"] = pd.Series(dtype=bool)
    else:
        table = _add_reference_rates(table, reference_cohorts, margin)
    return VintageCurves(
        threshold=int(threshold),
        by=by,
        basis=basis,
        cohort=cohort,
        min_loans=min_loans,
        table=table.sort_values(["vintage", "mob"]).reset_index(drop=True),
    )


# Forecast --------------------------------------------------------------------------------

@dataclass(frozen=True)
class VintageForecast:
    """Projected ever-bad rates of young cohorts from a migration matrix (Markov chain).

    ``table`` has one row per (vintage, mob) from the cohort's latest reached MOB (the
    actual rate, is_projected False) to ``target_mob``: vintage, vintage_label, mob, rate,
    is_projected. ``transition`` is the absorbing chain used (rows and columns: the buckets
    below the threshold, PAID and EVER). ``missing_loans`` counts loans per cohort with no
    snapshot at the latest MOB; they are projected as never turning bad.
    """

    threshold: int
    target_mob: int
    by: str
    cohort: str
    month_from: dt.date | None
    month_to: dt.date | None
    table: pd.DataFrame
    transition: pd.DataFrame
    missing_loans: pd.DataFrame
    empty_source_buckets: tuple[str, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        """True when no cohort is younger than the target MOB or no matrix was available."""
        return self.table.empty


def absorbing_chain(matrix: MigrationMatrix, threshold: int, by: str = "count") -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Build the monthly transition matrix with absorbing states PAID and EVER (has been bad).

    States are the buckets whose dpd is all <= ``threshold``, PAID and EVER. Moving into a
    bucket above the threshold or to WO moves to EVER, so the EVER share after s steps is
    the ever-bad rate. A bucket with no loans at t-1 in the matrix keeps its loans in place
    (identity row); such buckets are returned as the second value.

    Raises
    ------
    ValueError
        If ``threshold`` is not a bucket boundary of the matrix's buckets.
    """
    buckets = matrix.buckets
    first_bad = buckets.first_code_above(threshold)
    good = list(buckets.delinquency_labels[:first_bad])
    states = [*good, "PAID", "EVER"]
    shares = matrix.count_shares if by == "count" else matrix.balance_shares
    chain = pd.DataFrame(0.0, index=states, columns=states)
    empty_rows = []
    for label in good:
        row = shares.loc[label]
        if row.isna().all():
            chain.loc[label, label] = 1.0
            empty_rows.append(label)
            continue
        for target, share in row.items():
            if target in good or target == "PAID":
                chain.loc[label, target] += share
            else:
                chain.loc[label, "EVER"] += share
    chain.loc["PAID", "PAID"] = 1.0
    chain.loc["EVER", "EVER"] = 1.0
    return chain, tuple(empty_rows)


def load_state_mix(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    buckets: Buckets,
    threshold: int,
    cohort: str = "month",
) -> pd.DataFrame:
    """Return query ``vintage_state_mix`` with a ``state`` label column.

    States: the bucket labels, PAID, EVER, or None when the loan has no snapshot at the
    cohort's latest MOB and is not closed.
    """
    _check_threshold(threshold)
    filters = resolve_as_of(con, filters)
    params = {
        **filters.params(),
        **buckets.params(),
        "threshold": int(threshold),
        "quarterly": cohort == "quarter",
    }
    frame = queries.run(con, "vintage_state_mix", params)
    frame["vintage"] = pd.to_datetime(frame["vintage"]).dt.date
    frame["principal"] = frame["principal"].astype(float)
    ever_code = buckets.wo_code + 1

    def state_label(code) -> str | None:
        if pd.isna(code):
            return None
        code = int(code)
        if code == ever_code:
            return "EVER"
        return buckets.label(code)

    frame["state"] = [state_label(code) for code in frame["state_code"]]
    return frame


def forecast_ever_rates(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    buckets: Buckets = DEFAULT_BUCKETS,
    threshold: int = 90,
    target_mob: int = 12,
    by: str = "count",
    cohort: str = "month",
    matrix: MigrationMatrix | None = None,
    window_months: int = 6,
) -> VintageForecast:
    """Project each young cohort's ever x+ rate to ``target_mob`` with a Markov chain.

    Each cohort's loans at its latest reached MOB k are split into the buckets below the
    threshold, PAID and EVER (already bad, including charged off). The mix is multiplied by
    the absorbing chain (``absorbing_chain``) once per month up to ``target_mob``. The
    matrix defaults to the pooled migration matrix of the ``window_months`` months ending
    at the as-of month. By count the mix counts loans and uses count shares; by balance it
    weights loans by disbursed principal and uses balance shares.

    Raises
    ------
    ValueError
        If the threshold is not a bucket boundary or target_mob is negative.
    """
    _check_choice("by", by, BY_VALUES)
    _check_choice("cohort", cohort, COHORT_VALUES)
    if target_mob < 0:
        raise ValueError(f"target MOB must be >= 0; got {target_mob}")
    buckets.first_code_above(threshold)
    filters = resolve_as_of(con, filters)
    empty = pd.DataFrame(columns=["vintage", "vintage_label", "mob", "rate", "is_projected"])
    if filters.as_of is None:
        return VintageForecast(threshold, target_mob, by, cohort, None, None, empty,
                               pd.DataFrame(), pd.DataFrame(columns=["vintage_label", "loans"]))
    if matrix is None:
        as_of = month_end(filters.as_of)
        start = as_of.replace(day=1)
        for _ in range(window_months - 1):
            start = (start - dt.timedelta(days=1)).replace(day=1)
        matrix = migration_matrix(con, filters, buckets, month_from=month_end(start), month_to=as_of)
    chain, empty_rows = absorbing_chain(matrix, threshold, by)
    states = list(chain.index)
    step = chain.to_numpy()

    mix = load_state_mix(con, filters, buckets, threshold, cohort)
    weight = "loan_count" if by == "count" else "principal"
    rows, missing_rows = [], []
    for vintage, group in mix.groupby("vintage", sort=True):
        reached = int(group["mob"].iloc[0])
        label = vintage_label(vintage, cohort)
        missing = group[group["state"].isna()]
        missing_rows.append({"vintage_label": label, "loans": int(missing["loan_count"].sum())})
        if reached >= target_mob:
            continue
        total = float(group[weight].sum())
        if total <= 0:
            continue
        known = group[group["state"].notna()].groupby("state")[weight].sum()
        vector = np.array([float(known.get(state, 0.0)) for state in states]) / total
        ever_index = states.index("EVER")
        for mob in range(reached, target_mob + 1):
            rows.append(
                {
                    "vintage": vintage,
                    "vintage_label": label,
                    "mob": mob,
                    "rate": float(vector[ever_index]),
                    "is_projected": mob > reached,
                }
            )
            vector = vector @ step
    table = pd.DataFrame(rows, columns=empty.columns) if rows else empty
    if empty_rows:
        logger.info("forecast: buckets %s had no loans at t-1 in the matrix; held in place", empty_rows)
    return VintageForecast(
        threshold=int(threshold),
        target_mob=int(target_mob),
        by=by,
        cohort=cohort,
        month_from=matrix.month_from,
        month_to=matrix.month_to,
        table=table,
        transition=chain,
        missing_loans=pd.DataFrame(missing_rows, columns=["vintage_label", "loans"]),
        empty_source_buckets=empty_rows,
    )


# Report command --------------------------------------------------------------------------

def _threshold_type(text: str) -> int:
    try:
        threshold = int(text)
    except ValueError:
        threshold = -1
    if threshold < 0:
        raise argparse.ArgumentTypeError(f"threshold must be whole days >= 0, e.g. 30; got {text!r}")
    return threshold


def _add_vintage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold", type=_threshold_type, default=DEFAULT_THRESHOLD,
        help="a loan is bad when dpd exceeds this many days (default: 30, i.e. 30+)",
    )
    parser.add_argument("--by", choices=BY_VALUES, default="count", help="rate by loan count or by principal (default: count)")
    parser.add_argument(
        "--basis", choices=BASIS_VALUES, default="ever",
        help="ever x+ (bad at any month-end so far, or charged off) or current x+ at each MOB (default: ever)",
    )
    parser.add_argument("--cohort", choices=COHORT_VALUES, default="month", help="cohort by origination month or quarter (default: month)")


def _run_vintage(con, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    curves = vintage_curves(
        con, filters, threshold=args.threshold, by=args.by, basis=args.basis, cohort=args.cohort
    )
    if curves.is_empty:
        raise ValueError("no cohort has reached MOB 0 for the chosen filters and as-of month")
    return curves.report()


VINTAGE_COMMAND = Command(
    name="vintage",
    help="vintage table: ever or current x+ rate by cohort and MOB (one row per reached cell)",
    run=_run_vintage,
    add_arguments=_add_vintage_arguments,
)
