"""Collection-strategy effectiveness (催收策略): stage entries, per-arm and per-channel rates.

An episode is one spell of delinquency of one loan; it starts at the first month-end with
dpd >= 1 after a current one and ends at cure, PAID, WO or the end of the data (see
``collection_stage_entries`` in ``queries/collections.sql``, which reads the episodes
that the import stores in ``collection_stage_facts``). The unit of analysis is a
stage entry: an episode enters a stage at its first month-end with dpd in the stage's
range, early 1–30 (M1), middle 31–90 (M2–M3), late > 90. The stage of an episode's first
entry is the stage by dpd at episode start; an episode that rolls from M1 into M2 enters
the middle stage at its first M2 month-end, where middle-stage strategies are assigned.
The arm of a stage entry is the strategy of its first action in that stage that names one;
when a stage carries several strategies (``strategy_count`` > 1) it stays in the arm it
entered with, the assignment a champion/challenger test makes. Stage entries without any
action form the arm ``UNTREATED``.

Rates per stage and arm (or action channel):
- cure rate: stage entries current (or paid off) by the horizon month-end after entry ÷
  entries judged, i.e. whose horizon month-end is in the data or whose episode ended
  before it; Wilson 95% interval;
- roll-forward rate: entries in a worse bucket (or charged off) at the next month-end ÷
  entries with a next month-end; Wilson 95% interval;
- recovery rate: amount collected in the stage ÷ overdue balance at entry; cost per yuan
  collected: cost ÷ amount collected. Both are ratios of sums with a linearisation
  (delta-method) 95% interval over entries.
"Loans treated" counts stage entries, so a loan with two episodes in a stage counts twice.
Channel groups overlap: an entry is in every channel it had an action in, and a channel's
contacts, amount collected and cost are that channel's actions only.

The comparison of arms is in ``analysis.collections_compare``; the restructured and
extended loans panel is in ``analysis.collections_restructure``.
"""

from __future__ import annotations

import argparse
import logging
import math

import duckdb
import numpy as np
import pandas as pd

import queries
from analysis.cli import Command
from analysis.filters import Filters, resolve_as_of

logger = logging.getLogger(__name__)

STAGES = ("early", "middle", "late")
UNTREATED = "(none)"
DEFAULT_HORIZON_DAYS = 30
Z_95 = 1.959963984540054

EPISODE_COLUMNS = [
    "loan_id", "episode_no", "episode_start_date", "entry_date", "stage", "entry_dpd",
    "entry_bucket", "overdue_amount", "outstanding_principal", "product", "province",
    "end_date", "end_reason", "duration_months", "cure_event", "cured", "rolled_forward",
    "strategy", "strategy_count", "stage_contacts", "stage_collected_amount",
    "stage_cost_amount",
]

# The stage entry columns summarise_entries reads.
SUMMARY_INPUT_COLUMNS = [
    "stage", "strategy", "cured", "rolled_forward", "overdue_amount", "stage_contacts",
    "stage_collected_amount", "stage_cost_amount",
]

REPORT_COLUMNS = [
    "stage", "strategy", "loans", "contacts", "cured", "cure_rate", "ci_lower", "ci_upper",
    "rolled_forward", "collected_amount", "overdue_amount", "recovery_rate", "cost",
]


def horizon_months(horizon_days: int) -> int:
    """Return the number of month-ends a cure horizon in days spans (30 days -> 1)."""
    if horizon_days < 1:
        raise ValueError(f"cure horizon must be at least 1 day; got {horizon_days}")
    return max(1, math.ceil(horizon_days / 30))


AMOUNT_COLUMNS = (
    "overdue_amount", "outstanding_principal", "stage_collected_amount", "stage_cost_amount",
)
CHANNEL_COLUMNS = ["channel", "contacts", "collected_amount", "cost_amount"]


def _entry_params(con: duckdb.DuckDBPyConnection, filters: Filters, horizon_days: int) -> dict:
    filters = resolve_as_of(con, filters)
    return {**filters.params(), "horizon_months": horizon_months(horizon_days)}


def _load_entries(
    con: duckdb.DuckDBPyConnection, params: dict, columns: list[str] | None = None
) -> pd.DataFrame:
    """Run ``collection_stage_entries``, all its columns or only ``columns``."""
    if columns is None:
        frame = queries.run(con, "collection_stage_entries", params)
    else:
        unknown = sorted(set(columns) - set(EPISODE_COLUMNS) - {"entry_key"})
        if unknown:
            raise ValueError(f"unknown stage entry columns {unknown}; choose from {EPISODE_COLUMNS}")
        # Selecting a few columns lets DuckDB skip the others (loan_id and the segment texts
        # are most of the transfer to pandas). The projection keeps the query's row order.
        selected = ", ".join(columns)
        sql = queries.get_query("collection_stage_entries").sql
        frame = queries.run_sql(con, f"select {selected} from ({sql})", params)
    for column in AMOUNT_COLUMNS:
        if column in frame.columns:
            frame[column] = frame[column].astype(float)
    if "strategy" in frame.columns:
        frame["strategy"] = frame["strategy"].fillna(UNTREATED)
    return frame


def load_stage_entries(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Run ``collection_stage_entries``: one row per stage entry.

    Returns the columns EPISODE_COLUMNS, or only ``columns`` (a subset of them and
    ``entry_key``, the key of ``load_stage_channels``'s rows) in that order. Rows are in (loan_id, episode_no, entry_date) order; the arm of an entry
    without actions is UNTREATED.

    Raises
    ------
    ValueError
        If ``columns`` names a column that is not in EPISODE_COLUMNS.
    """
    selected_columns = EPISODE_COLUMNS if columns is None else list(columns)
    params = _entry_params(con, filters, horizon_days)
    queried = ["entry_key", *[column for column in selected_columns if column != "entry_key"]]
    frame = _load_entries(con, params, queried)
    logger.info("loaded %d stage entries", len(frame))
    return frame[selected_columns]


def load_episode_channels(
    con: duckdb.DuckDBPyConnection, filters: Filters, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> pd.DataFrame:
    """Return one row per (stage entry, action channel).

    Columns: EPISODE_COLUMNS, then channel, contacts, collected_amount and cost_amount
    (yuan) of that channel's actions in the stage. An entry without actions has one row
    with a null channel and zero totals; the entry columns repeat on each channel row.
    Rows are in (loan_id, episode_no, entry_date, channel) order.
    """
    frame = episode_channels_from_params(con, _entry_params(con, filters, horizon_days))
    logger.info("loaded %d episode-channel rows", len(frame))
    return frame


def episode_channels_from_params(con: duckdb.DuckDBPyConnection, params: dict) -> pd.DataFrame:
    """Return ``load_episode_channels``'s table for query parameters as they are.

    ``params`` contains the shared filter parameters, ``as_of`` (None = the last month-end
    of the loans in the filters) and ``horizon_months``.
    """
    entries = _load_entries(con, params)
    channels = queries.run(con, "collection_stage_channel_totals", params)
    for column in ("collected_amount", "cost_amount"):
        channels[column] = channels[column].astype(float)
    # Both frames are sorted by entry_key, so a stable sort on it keeps the channel order.
    frame = entries.merge(channels, on="entry_key", how="left", sort=False)
    frame = frame.sort_values("entry_key", kind="stable", ignore_index=True)
    frame["contacts"] = frame["contacts"].fillna(0).astype("int32")
    frame[["collected_amount", "cost_amount"]] = frame[["collected_amount", "cost_amount"]].fillna(0.0)
    frame["channel"] = frame["channel"].astype(object).where(frame["channel"].notna(), None)
    return frame[EPISODE_COLUMNS + CHANNEL_COLUMNS]


def load_stage_channels(
    con: duckdb.DuckDBPyConnection, filters: Filters, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> pd.DataFrame:
    """Return one row per (stage entry, action channel) with the channel's totals only.

    Columns: entry_key (as in ``load_stage_entries(..., columns=["entry_key", ...])``),
    channel, contacts, collected_amount and cost_amount (yuan), in (entry_key, channel)
    order. Entries without actions have no row. Joined to the entries, this is the part
    of ``load_episode_channels`` with a channel, without moving every entry column once
    per channel.
    """
    channels = queries.run(con, "collection_stage_channel_totals", _entry_params(con, filters, horizon_days))
    for column in ("collected_amount", "cost_amount"):
        channels[column] = channels[column].astype(float)
    return channels[channels["channel"].notna()].reset_index(drop=True)


def summarise_channels(entries: pd.DataFrame, channels: pd.DataFrame) -> pd.DataFrame:
    """Return per-stage rates by action channel from ``load_stage_entries`` and ``load_stage_channels``.

    ``entries`` needs entry_key, stage, cured, rolled_forward and overdue_amount. Same
    table as ``summarise(load_episode_channels(...), by="channel")``.
    """
    entry_columns = ["entry_key", "stage", "cured", "rolled_forward", "overdue_amount"]
    rows = channels.merge(entries[entry_columns], on="entry_key", how="inner", sort=False)
    return _summarise_rows(rows, "channel", ("contacts", "collected_amount", "cost_amount"))


def episodes_from(episode_channels: pd.DataFrame) -> pd.DataFrame:
    """Return one row per stage entry (the entry columns of ``episode_channels``)."""
    return (
        episode_channels[EPISODE_COLUMNS]
        .drop_duplicates(["loan_id", "episode_no", "stage"])
        .reset_index(drop=True)
    )


def wilson_interval(count, nobs) -> tuple[np.ndarray, np.ndarray]:
    """Return Wilson 95% bounds for counts out of nobs; NaN where nobs is 0.

    The closed form of statsmodels' ``proportion_confint(method="wilson")``, bounds clipped
    to [0, 1]. It is written out here so that importing this module does not import
    statsmodels and scipy, which took over a second on a cold page load.
    """
    count = np.asarray(count, dtype=float)
    nobs = np.asarray(nobs, dtype=float)
    lower = np.full(count.shape, np.nan)
    upper = np.full(count.shape, np.nan)
    positive = nobs > 0
    if positive.any():
        n = nobs[positive]
        share = count[positive] / n
        z2 = Z_95**2
        denominator = 1 + z2 / n
        center = (share + z2 / (2 * n)) / denominator
        half = Z_95 * np.sqrt(share * (1.0 - share) / n + z2 / (4.0 * n**2)) / denominator
        lower[positive] = np.clip(center - half, 0, 1)
        upper[positive] = np.clip(center + half, 0, 1)
    return lower, upper


def ratio_interval(numerator: pd.Series, denominator: pd.Series) -> tuple[float, float, float]:
    """Return the ratio of sums and its linearisation 95% interval.

    Var(R) ≈ Σ (y_i − R x_i)² / (n (n − 1) x̄²), the usual ratio-estimator variance; the
    interval is NaN when fewer than two episodes or the denominator sums to zero.
    """
    y = numerator.to_numpy(dtype=float)
    x = denominator.to_numpy(dtype=float)
    total = x.sum()
    if len(x) == 0 or total == 0:
        return float("nan"), float("nan"), float("nan")
    ratio = y.sum() / total
    n = len(x)
    if n < 2:
        return ratio, float("nan"), float("nan")
    variance = ((y - ratio * x) ** 2).sum() / (n * (n - 1) * (total / n) ** 2)
    half = Z_95 * math.sqrt(variance)
    return ratio, ratio - half, ratio + half


def _summarise_group(rows: pd.DataFrame, contacts: str, collected: str, cost: str) -> dict:
    """Return the rates of one (stage, group) from its episode rows."""
    judged = rows["cured"].notna()
    cured = int(rows.loc[judged, "cured"].astype(bool).sum())
    rolled_known = rows["rolled_forward"].notna()
    rolled = int(rows.loc[rolled_known, "rolled_forward"].astype(bool).sum())
    recovery, recovery_low, recovery_high = ratio_interval(rows[collected], rows["overdue_amount"])
    per_yuan, per_yuan_low, per_yuan_high = ratio_interval(rows[cost], rows[collected])
    return {
        "loans": len(rows),
        "contacts": int(rows[contacts].sum()),
        "contacts_per_loan": rows[contacts].sum() / len(rows),
        "judged": int(judged.sum()),
        "cured": cured,
        "roll_judged": int(rolled_known.sum()),
        "rolled_forward": rolled,
        "collected_amount": rows[collected].sum(),
        "overdue_amount": rows["overdue_amount"].sum(),
        "recovery_rate": recovery,
        "recovery_ci_lower": recovery_low,
        "recovery_ci_upper": recovery_high,
        "cost": rows[cost].sum(),
        "cost_per_yuan": per_yuan,
        "cost_per_yuan_ci_lower": per_yuan_low,
        "cost_per_yuan_ci_upper": per_yuan_high,
    }


def summarise(episode_channels: pd.DataFrame, by: str = "strategy") -> pd.DataFrame:
    """Return per-stage rates by arm (``by="strategy"``) or by action channel (``"channel"``).

    Columns: stage, <by>, loans, contacts, contacts_per_loan, judged, cured, cure_rate,
    ci_lower, ci_upper, roll_judged, rolled_forward, roll_rate, roll_ci_lower,
    roll_ci_upper, collected_amount, overdue_amount (yuan), recovery_rate (+ CI), cost
    (yuan), cost_per_yuan (+ CI). Rates are fractions; NaN when nothing was judged.
    """
    if by not in ("strategy", "channel"):
        raise ValueError(f"by must be 'strategy' or 'channel'; got {by!r}")
    if by == "strategy":
        return summarise_entries(episodes_from(episode_channels))
    rows = episode_channels[episode_channels["channel"].notna()]
    return _summarise_rows(rows, "channel", ("contacts", "collected_amount", "cost_amount"))


def summarise_entries(entries: pd.DataFrame) -> pd.DataFrame:
    """Return per-stage rates by arm from one row per stage entry (``load_stage_entries``).

    Same columns as ``summarise(..., by="strategy")``.
    """
    return _summarise_rows(entries, "strategy", ("stage_contacts", "stage_collected_amount", "stage_cost_amount"))


def _summarise_rows(rows: pd.DataFrame, by: str, measures: tuple[str, str, str]) -> pd.DataFrame:
    if rows.empty:
        return pd.DataFrame(columns=_summary_columns(by))
    records = []
    for (stage, group), group_rows in rows.groupby(["stage", by], sort=True):
        records.append({"stage": stage, by: group, **_summarise_group(group_rows, *measures)})
    table = pd.DataFrame.from_records(records)
    table["cure_rate"] = table["cured"] / table["judged"].where(table["judged"] > 0)
    table["ci_lower"], table["ci_upper"] = wilson_interval(table["cured"], table["judged"])
    table["roll_rate"] = table["rolled_forward"] / table["roll_judged"].where(table["roll_judged"] > 0)
    table["roll_ci_lower"], table["roll_ci_upper"] = wilson_interval(table["rolled_forward"], table["roll_judged"])
    # Sums of float yuan pick up binary noise (515937.42000000004); amounts are to the fen.
    for column in ("collected_amount", "overdue_amount", "cost"):
        table[column] = table[column].round(2)
    table["stage"] = pd.Categorical(table["stage"], categories=STAGES, ordered=True)
    table = table.sort_values(["stage", by]).reset_index(drop=True)
    table["stage"] = table["stage"].astype(str)
    return table[_summary_columns(by)]


def _summary_columns(by: str) -> list[str]:
    return [
        "stage", by, "loans", "contacts", "contacts_per_loan", "judged", "cured", "cure_rate",
        "ci_lower", "ci_upper", "roll_judged", "rolled_forward", "roll_rate", "roll_ci_lower",
        "roll_ci_upper", "collected_amount", "overdue_amount", "recovery_rate",
        "recovery_ci_lower", "recovery_ci_upper", "cost", "cost_per_yuan",
        "cost_per_yuan_ci_lower", "cost_per_yuan_ci_upper",
    ]


def time_to_cure(episodes: pd.DataFrame, stage: str) -> pd.DataFrame:
    """Return Kaplan–Meier curves of time to cure per arm in one stage.

    Durations are month-ends from stage entry to cure (or paid off); episodes still open
    are censored at the loan's last month-end. NOTE: charged-off and restructured episodes
    are censored at their end month too, so the curves overstate cures that would still
    come. A cumulative-incidence estimate would treat those ends as competing events.

    Columns: strategy, months, cured_share (1 − S(t)), ci_lower, ci_upper, at_risk.
    """
    from lifelines import KaplanMeierFitter

    rows = episodes[episodes["stage"] == stage]
    curves = []
    for strategy, arm in rows.groupby("strategy", sort=True):
        fitter = KaplanMeierFitter()
        fitter.fit(arm["duration_months"], event_observed=arm["cure_event"].astype(bool))
        survival = fitter.survival_function_.iloc[:, 0]
        bounds = fitter.confidence_interval_survival_function_
        at_risk = fitter.event_table["at_risk"].reindex(survival.index)
        curves.append(
            pd.DataFrame(
                {
                    "strategy": strategy,
                    "months": survival.index.astype(int),
                    "cured_share": 1 - survival.to_numpy(),
                    "ci_lower": 1 - bounds.iloc[:, 1].to_numpy(),
                    "ci_upper": 1 - bounds.iloc[:, 0].to_numpy(),
                    "at_risk": at_risk.to_numpy(),
                }
            )
        )
    if not curves:
        return pd.DataFrame(columns=["strategy", "months", "cured_share", "ci_lower", "ci_upper", "at_risk"])
    return pd.concat(curves, ignore_index=True)


def stage_cure_rate(episodes: pd.DataFrame, stage: str) -> float | None:
    """Return the cure rate of all judged entries of ``stage``, or None when none is judged."""
    judged = episodes.loc[(episodes["stage"] == stage) & episodes["cured"].notna(), "cured"]
    return float(judged.astype(bool).mean()) if len(judged) else None


def weekly_inflow(episodes: pd.DataFrame, stage: str, months: int = 3) -> float:
    """Return episodes entering ``stage`` per week over the last ``months`` month-ends.

    Returns 0.0 when there are no episodes.
    """
    if episodes.empty:
        return 0.0
    starts = pd.to_datetime(episodes["entry_date"])
    last = starts.max()
    window_start = (last - pd.offsets.MonthEnd(months))
    recent = episodes[(episodes["stage"] == stage) & (starts > window_start)]
    weeks = (last - window_start).days / 7
    return len(recent) / weeks if weeks > 0 else 0.0


def collections_report(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    stage: str | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """Return the ``python -m analysis collections`` table (columns REPORT_COLUMNS).

    ``cost`` is the total collection cost in yuan; cost per yuan collected is
    cost ÷ collected_amount.
    """
    if stage is not None and stage not in STAGES:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}")
    entries = load_stage_entries(con, filters, horizon_days, columns=SUMMARY_INPUT_COLUMNS)
    table = summarise_entries(entries)
    if stage is not None:
        table = table[table["stage"] == stage]
    return table[REPORT_COLUMNS].reset_index(drop=True)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", choices=STAGES, help="only this stage (default: all stages)")
    parser.add_argument(
        "--horizon-days", type=int, default=DEFAULT_HORIZON_DAYS,
        help="cure horizon in days, rounded up to month-ends (default 30 = by the next month-end)",
    )


def _run(con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    return collections_report(con, filters, stage=args.stage, horizon_days=args.horizon_days)


COLLECTIONS_COMMAND = Command(
    name="collections",
    help="cure, roll-forward and recovery rates per collection stage and strategy; "
    "cost is the total collection cost in yuan",
    run=_run,
    add_arguments=_add_arguments,
)
