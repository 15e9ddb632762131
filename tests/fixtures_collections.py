"""Small hand-built portfolios for the collections and compliance tests.

Rows are inserted straight into the storage tables of a test database, so every expected
number in the tests can be worked out by hand from the rows below. Each helper rebuilds the
fact tables afterwards, as an import does; a test that changes rows with its own SQL calls
``facts.rebuild(con)`` itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import duckdb
import numpy as np
import pandas as pd

from analysis.filters import month_end
from ingest import facts


def add_loans(con: duckdb.DuckDBPyConnection, rows: Iterable[dict]) -> None:
    """Insert loans; missing columns get neutral defaults."""
    defaults = {
        "borrower_id": None,
        "origination_date": dt.date(2025, 1, 10),
        "principal": 10_000,
        "annual_rate": 0.18,
        "product": "消费贷",
        "province": "广东省",
        "load_id": 1,
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    con.register("new_loans", frame)
    con.execute(
        "insert into loans (loan_id, borrower_id, origination_date, principal, annual_rate, "
        "product, province, load_id) select loan_id, borrower_id, origination_date, principal, "
        "annual_rate, product, province, load_id from new_loans"
    )
    con.unregister("new_loans")
    facts.rebuild(con)


def month_rows(loan_id: str, start: dt.date, dpds: list, balance: float = 5_000,
               overdue: float | None = 500) -> list[dict]:
    """Return consecutive month-end rows from ``start``; a dpd of 'P' is paid_off, 'W' charged_off."""
    rows = []
    month = month_end(start)
    for value in dpds:
        status = {"P": "paid_off", "W": "charged_off"}.get(value, "active")
        if value == "P":
            dpd = 0
        elif value == "W":
            dpd = 120
        else:
            dpd = int(value)
        if overdue is None:
            overdue_principal = None
        else:
            overdue_principal = overdue if dpd > 0 else 0
        rows.append(
            {
                "loan_id": loan_id,
                "snapshot_date": month,
                "dpd": dpd,
                "outstanding_principal": 0 if value == "P" else balance,
                "overdue_principal": overdue_principal,
                "status": status,
            }
        )
        month = month_end(month + dt.timedelta(days=1))
    return rows


def insert_months(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    """Insert month-end rows built by ``month_rows``."""
    frame = pd.DataFrame(rows)
    con.register("new_months", frame)
    con.execute(
        "insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, "
        "overdue_principal, status, load_id) select loan_id, snapshot_date, dpd, "
        "outstanding_principal, overdue_principal, status, 1 from new_months"
    )
    con.unregister("new_months")
    facts.rebuild(con)


def add_months(con: duckdb.DuckDBPyConnection, loan_id: str, start: dt.date, dpds: list,
               balance: float = 5_000, overdue: float | None = 500) -> None:
    """Insert consecutive month-ends from ``start``; a dpd of 'P' is paid_off, 'W' charged_off."""
    insert_months(con, month_rows(loan_id, start, dpds, balance, overdue))


def add_actions(con: duckdb.DuckDBPyConnection, rows: Iterable[dict]) -> None:
    """Insert collection actions; action_id counts up from the current maximum."""
    defaults = {
        "channel": "manual_call",
        "strategy": None,
        "contact_target": "borrower",
        "connected": True,
        "amount_collected": 0,
        "cost": 0,
        "agent_id": "A1",
        "team": "T1",
        "load_id": 1,
    }
    start = con.execute("select coalesce(max(action_id), 0) from collection_actions").fetchall()[0][0]
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    frame["action_id"] = np.arange(start + 1, start + 1 + len(frame))
    frame["action_time"] = pd.to_datetime(frame["action_time"], format="ISO8601")
    con.register("new_actions", frame)
    con.execute(
        "insert into collection_actions (action_id, loan_id, action_time, channel, strategy, "
        "contact_target, connected, amount_collected, cost, agent_id, team, load_id) "
        "select action_id, loan_id, action_time, channel, strategy, contact_target, connected, "
        "amount_collected, cost, agent_id, team, load_id from new_actions"
    )
    con.unregister("new_actions")
    facts.rebuild(con)


def build_arm_trial(
    con: duckdb.DuckDBPyConnection,
    arms: dict[str, tuple[int, int]],
    entry_dpd: int = 15,
    start: dt.date = dt.date(2026, 1, 31),
    product_of=None,
) -> None:
    """Insert one early-stage episode per loan: ``arms`` maps strategy -> (loans, cured).

    Each loan is current at ``start``, enters M1 (``entry_dpd``) the next month-end and is
    either current (cured) or at M2 the month-end after, with one call in the strategy.
    """
    loans, months, actions, index = [], [], [], 0
    for strategy, (count, cured) in arms.items():
        for number in range(count):
            index += 1
            loan_id = f"{strategy}-{number:04d}"
            if product_of is not None:
                product = product_of(index)
            else:
                product = "消费贷" if index % 2 else "经营贷"
            loans.append({"loan_id": loan_id, "product": product, "principal": 8_000 + 10 * (index % 50)})
            path = [0, entry_dpd, 0 if number < cured else entry_dpd + 30, 0]
            months.extend(month_rows(loan_id, start, path, balance=4_000 + 10 * (index % 50)))
            first_day_overdue = month_end(start + dt.timedelta(days=1)) - dt.timedelta(days=entry_dpd - 1)
            actions.append(
                {"loan_id": loan_id, "action_time": dt.datetime.combine(first_day_overdue, dt.time(10)),
                 "strategy": strategy, "amount_collected": 100 if number < cured else 0, "cost": 5}
            )
    add_loans(con, loans)
    insert_months(con, months)
    add_actions(con, actions)
