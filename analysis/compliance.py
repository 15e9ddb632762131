"""Compliance monitoring (合规监测): collection-conduct breaches and loan pricing caps.

Conduct rules follow the 中国互联网金融协会《互联网金融贷后催收业务指引》 (2024) defaults,
all configurable through :class:`ComplianceRules`:
- contact hours: a contact at or after 22:00:00, or before 08:00:00, local time is a breach;
- call frequency: at most 3 connected voice calls (manual_call, ai_voice) to a borrower per
  calendar day, across all agents, agencies and the borrower's loans (per loan when the loan
  has no borrower_id); the 4th and later connected calls are each a breach, unanswered
  calls and SMS do not count;
- contacts with anyone but the borrower (emergency contacts, third parties) are flagged.
Rates are breaches per 1,000 contacts, where contacts are actions in the contact channels.

Pricing: loans whose annual_rate exceeds 4 × the 1-year LPR of the origination month, 24%
or 36% (strictly above). The LPR of a month is the latest announcement in or before that
month; loans originated before the first announcement in the table (2019-08 in the shipped
table) have no LPR and are left out of the 4 × LPR counts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

import queries
from analysis.cli import Command
from analysis.filters import Filters, resolve_as_of

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LPR_PATH = REPO_ROOT / "data" / "lpr_1y.csv"
LPR_ENV = "LOANLENS_LPR"

RULES = ("contact_hours", "call_frequency", "non_borrower_contact")
BREACH_COLUMNS = ["loan_id", "action_time", "agent_id", "channel", "rule"]
RATECAP_COLUMNS = [
    "product", "vintage", "loans", "principal", "above_4lpr_loans", "above_4lpr_principal",
    "above_24_loans", "above_36_loans",
]


@dataclass(frozen=True)
class ComplianceRules:
    """Configurable conduct rules; the defaults are the 2024 industry guideline's limits."""

    quiet_start: dt.time = dt.time(22, 0, 0)  # contacts at or after this time breach
    quiet_end: dt.time = dt.time(8, 0, 0)     # contacts before this time breach
    max_connected_calls: int = 3              # per borrower per calendar day
    voice_channels: tuple[str, ...] = ("manual_call", "ai_voice")
    contact_channels: tuple[str, ...] = field(
        default=("sms", "ai_voice", "manual_call", "field_visit", "outsourced")
    )

    def params(self) -> dict:
        """Return the rule values as query parameters."""
        if self.max_connected_calls < 0:
            raise ValueError(f"max_connected_calls must be 0 or more; got {self.max_connected_calls}")
        return {
            "quiet_start": self.quiet_start,
            "quiet_end": self.quiet_end,
            "max_connected_calls": self.max_connected_calls,
            "voice_channels": list(self.voice_channels),
            "contact_channels": list(self.contact_channels),
        }


def find_breaches(
    con: duckdb.DuckDBPyConnection, filters: Filters, rules: ComplianceRules = ComplianceRules()
) -> pd.DataFrame:
    """Return one row per (action, rule broken); columns of ``compliance_breaches``."""
    filters = resolve_as_of(con, filters)
    return queries.run(con, "compliance_breaches", {**filters.params(), **rules.params()})


def contact_counts(
    con: duckdb.DuckDBPyConnection, filters: Filters, rules: ComplianceRules = ComplianceRules()
) -> pd.DataFrame:
    """Return contact counts per (month, agent_id, team, strategy)."""
    filters = resolve_as_of(con, filters)
    params = {**filters.params(), "contact_channels": list(rules.contact_channels)}
    return queries.run(con, "compliance_contact_counts", params)


def breach_rates(breaches: pd.DataFrame, contacts: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return breaches per 1,000 contacts by ``by`` (agent_id, team, strategy or month).

    Columns: <by>, contacts, breaches (all rules), one count column per rule, per_1000
    (breaches × 1000 ÷ contacts; NaN when a group has no contacts) and <rule>_per_1000
    for each rule. A missing agent, team or strategy is its own group, labelled "(none)".
    """
    if by not in ("agent_id", "team", "strategy", "month"):
        raise ValueError(f"by must be agent_id, team, strategy or month; got {by!r}")
    contacts = contacts.copy()
    keyed = breaches.copy()
    if by == "month":
        contacts["month"] = pd.to_datetime(contacts["month"])
        keyed["month"] = pd.to_datetime(keyed["action_time"]) + pd.offsets.MonthEnd(0)
        keyed["month"] = keyed["month"].dt.normalize()
    else:
        contacts[by] = contacts[by].fillna("(none)")
        keyed[by] = keyed[by].fillna("(none)")
    contact_totals = contacts.groupby(by)["contact_count"].sum().rename("contacts")
    per_rule = keyed.pivot_table(index=by, columns="rule", values="loan_id", aggfunc="size", fill_value=0)
    per_rule = per_rule.reindex(columns=list(RULES), fill_value=0)
    table = pd.concat([contact_totals, per_rule], axis=1).fillna(0)
    table["breaches"] = table[list(RULES)].sum(axis=1)
    contacts_or_nan = table["contacts"].where(table["contacts"] > 0)
    table["per_1000"] = table["breaches"] * 1000 / contacts_or_nan
    for rule in RULES:
        table[f"{rule}_per_1000"] = table[rule] * 1000 / contacts_or_nan
    table = table.reset_index().rename(columns={"index": by})
    integer_columns = ["contacts", "breaches", *RULES]
    table[integer_columns] = table[integer_columns].astype(int)
    columns = [by, "contacts", "breaches", *RULES, "per_1000", *(f"{rule}_per_1000" for rule in RULES)]
    return table[columns].sort_values(by).reset_index(drop=True)


@dataclass(frozen=True)
class BreachTotals:
    """Portfolio totals of the conduct check."""

    contacts: int
    breaches: int
    per_1000: float | None  # None when there are no contacts


def breach_totals(breaches: pd.DataFrame, contacts: pd.DataFrame) -> BreachTotals:
    """Return total contacts, breaches and breaches per 1,000 contacts."""
    total_contacts = int(contacts["contact_count"].sum()) if len(contacts) else 0
    per_1000 = len(breaches) * 1000 / total_contacts if total_contacts else None
    return BreachTotals(total_contacts, len(breaches), per_1000)


def compliance_report(
    con: duckdb.DuckDBPyConnection, filters: Filters, rules: ComplianceRules = ComplianceRules()
) -> pd.DataFrame:
    """Return the ``python -m analysis compliance`` table: one row per breach."""
    return find_breaches(con, filters, rules)[BREACH_COLUMNS]


def lpr_path() -> Path:
    """Return the LPR table path: ``$LOANLENS_LPR`` if set, else data/lpr_1y.csv."""
    override = os.environ.get(LPR_ENV)
    return Path(override).expanduser() if override else DEFAULT_LPR_PATH


def load_lpr(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read and check the 1-year LPR table (announcement_date, lpr_1y_pct in %).

    Raises
    ------
    ValueError
        If the file lacks a column, a date or rate does not parse, a rate is outside
        (0, 20] percent, or a date repeats; the message names the row and the fix. Also
        when the file does not exist.
    """
    path = Path(path) if path else lpr_path()
    if not path.is_file():
        raise ValueError(
            f"LPR table {path} not found; restore data/lpr_1y.csv or point ${LPR_ENV} at a CSV "
            f"with columns announcement_date,lpr_1y_pct"
        )
    frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    missing = {"announcement_date", "lpr_1y_pct"} - set(frame.columns)
    if missing:
        raise ValueError(
            f"LPR table {path} must have columns announcement_date,lpr_1y_pct; missing {sorted(missing)}"
        )
    dates = pd.to_datetime(frame["announcement_date"].str.strip(), format="%Y-%m-%d", errors="coerce")
    rates = pd.to_numeric(frame["lpr_1y_pct"].str.strip(), errors="coerce")
    bad = dates.isna() | rates.isna() | (rates <= 0) | (rates > 20)
    if bad.any():
        line = int(bad.idxmax()) + 2  # header is line 1
        raise ValueError(
            f"LPR table {path} line {line}: expected a date YYYY-MM-DD and a rate in percent "
            f"(e.g. 3.45); got {frame.loc[bad.idxmax()].tolist()}"
        )
    if dates.duplicated().any():
        repeated = dates[dates.duplicated()].dt.date.iloc[0]
        raise ValueError(f"LPR table {path}: announcement date {repeated} appears twice; keep one row")
    return pd.DataFrame({"announcement_date": dates.dt.date, "lpr_1y_pct": rates}).sort_values(
        "announcement_date", ignore_index=True
    )


def rate_cap_table(
    con: duckdb.DuckDBPyConnection, filters: Filters, lpr: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return loans above 4 × LPR, 24% and 36% by product and origination month.

    Columns of ``rate_cap_by_vintage``; the 4 × LPR columns are null for vintages before
    the first LPR announcement.
    """
    lpr = load_lpr() if lpr is None else lpr
    filters = resolve_as_of(con, filters)
    params = {
        **filters.params(),
        "lpr_dates": list(lpr["announcement_date"]),
        "lpr_pcts": [float(value) for value in lpr["lpr_1y_pct"]],
    }
    table = queries.run(con, "rate_cap_by_vintage", params)
    for column in ("principal", "above_4lpr_principal", "above_24_principal", "above_36_principal"):
        table[column] = table[column].astype(float)
    return table


def rate_cap_shares(table: pd.DataFrame, by: str = "product") -> pd.DataFrame:
    """Return shares of loans and principal above each cap, summed over ``by``.

    Columns: <by>, loans, principal, judged_loans (vintages with an LPR), share_4lpr_loans,
    share_4lpr_principal (of judged loans / principal), share_24_loans, share_36_loans,
    share_24_principal, share_36_principal. NaN when a group has nothing to judge.
    """
    judged = table[table["lpr_1y_pct"].notna()]
    grouped = table.groupby(by, dropna=False).agg(
        loans=("loans", "sum"),
        principal=("principal", "sum"),
        rated_loans=("rated_loans", "sum"),
        above_24_loans=("above_24_loans", "sum"),
        above_36_loans=("above_36_loans", "sum"),
        above_24_principal=("above_24_principal", "sum"),
        above_36_principal=("above_36_principal", "sum"),
    )
    judged_totals = judged.groupby(by, dropna=False).agg(
        judged_loans=("loans", "sum"),
        judged_principal=("principal", "sum"),
        above_4lpr_loans=("above_4lpr_loans", "sum"),
        above_4lpr_principal=("above_4lpr_principal", "sum"),
    )
    merged = grouped.join(judged_totals, how="left").fillna(
        {"judged_loans": 0, "judged_principal": 0, "above_4lpr_loans": 0, "above_4lpr_principal": 0}
    )
    merged["share_4lpr_loans"] = merged["above_4lpr_loans"] / merged["judged_loans"].where(merged["judged_loans"] > 0)
    merged["share_4lpr_principal"] = merged["above_4lpr_principal"] / merged["judged_principal"].where(
        merged["judged_principal"] > 0
    )
    for cap in ("24", "36"):
        merged[f"share_{cap}_loans"] = merged[f"above_{cap}_loans"] / merged["loans"].where(merged["loans"] > 0)
        merged[f"share_{cap}_principal"] = merged[f"above_{cap}_principal"] / merged["principal"].where(
            merged["principal"] > 0
        )
    return merged.reset_index()


def rate_cap_exclusions(table: pd.DataFrame) -> tuple[int, int]:
    """Return (loans originated before the first LPR, loans without an annual rate)."""
    before_lpr = int(table.loc[table["lpr_1y_pct"].isna(), "loans"].sum())
    unrated = int((table["loans"] - table["rated_loans"]).sum())
    return before_lpr, unrated


def rate_cap_by_vintage_shares(table: pd.DataFrame) -> pd.DataFrame:
    """Return the vintages that have an LPR with share_4lpr_principal, per product.

    share_4lpr_principal = principal above 4 × LPR ÷ the vintage's principal; NaN when the
    vintage has no principal.
    """
    judged = table[table["lpr_1y_pct"].notna()].copy()
    principal = judged["principal"].astype(float)
    judged["share_4lpr_principal"] = judged["above_4lpr_principal"].astype(float) / principal.where(principal > 0)
    return judged.reset_index(drop=True)


def _add_compliance_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-calls", type=int, default=3,
        help="connected voice calls allowed per borrower per day (default 3)",
    )


def _run_compliance(con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    return compliance_report(con, filters, ComplianceRules(max_connected_calls=args.max_calls))


def _add_ratecap_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lpr", help=f"1-year LPR table CSV (default: ${LPR_ENV} or data/lpr_1y.csv)",
    )


def _run_ratecap(con: duckdb.DuckDBPyConnection, args: argparse.Namespace, filters: Filters) -> pd.DataFrame:
    lpr = load_lpr(args.lpr) if args.lpr else load_lpr()
    return rate_cap_table(con, filters, lpr)[RATECAP_COLUMNS]


COMPLIANCE_COMMAND = Command(
    name="compliance",
    help="one row per collection-conduct breach: contact hours, connected calls per "
    "borrower per day, contacts with anyone but the borrower",
    run=_run_compliance,
    add_arguments=_add_compliance_arguments,
)

RATECAP_COMMAND = Command(
    name="ratecap",
    help="loans priced above 4 x the 1-year LPR of the origination month, 24% and 36%, "
    "by product and origination month",
    run=_run_ratecap,
    add_arguments=_add_ratecap_arguments,
)
