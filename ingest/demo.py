"""Demo portfolio: a simulated Chinese microloan book with known true parameters.

``generate_demo`` draws about 36 monthly vintages of 经营贷 / 消费贷 / 农户贷 loans, runs
each loan through a monthly delinquency Markov chain (C, M1 .. M7+, paid off, charged off),
adds collection actions with a randomised early-stage champion/challenger test and a
known number of compliance breaches, and loads everything into DuckDB in one transaction.
The true parameters and the exact breach counts go to ``demo_truth.json`` beside the
database file, so analyses can be checked against what was simulated.

Command line (dispatched by ``python -m ingest demo``)::

    python -m ingest demo [--db PATH] [--loans N] [--seed S] [--as-of YYYY-MM-DD]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import time

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingest import demo_breaches as B
from ingest import facts
from ingest import demo_params as P
from ingest import demo_sim as S
from queries import db

logger = logging.getLogger(__name__)

DEFAULT_LOANS = 20_000
DEFAULT_SEED = 20261204
TRUTH_FILE_NAME = "demo_truth.json"
FIRST_AS_OF = dt.date(2022, 7, 31)  # the oldest vintage must have a 1-year LPR (2019-08)
DATA_TABLES = ("loans", "loan_attributes", "loan_months", "installments", "collection_actions")


class DemoError(Exception):
    """The demo cannot be generated with the given arguments or database."""


def default_as_of(today: dt.date | None = None) -> dt.date:
    """Return the last month-end strictly before ``today`` (default: the current date)."""
    today = today or dt.date.today()
    return today.replace(day=1) - dt.timedelta(days=1)


def resolve_as_of(as_of: str | dt.date | None) -> dt.date:
    """Turn the as-of argument into a month-end: the last month-end on or before the date.

    Raises
    ------
    DemoError
        If the text is not an ISO date or the month-end is before 2022-07-31.
    """
    if as_of is None:
        day = default_as_of()
    elif isinstance(as_of, dt.date):
        day = as_of
    else:
        try:
            day = dt.date.fromisoformat(str(as_of))
        except ValueError:
            raise DemoError(f"as-of date must look like 2026-11-30 (YYYY-MM-DD); "
                            f"got {as_of!r}") from None
    next_day = day + dt.timedelta(days=1)
    month_end = day if next_day.month != day.month else default_as_of(day)
    if month_end < FIRST_AS_OF:
        raise DemoError(f"as-of month-end must be {FIRST_AS_OF} or later, because the oldest "
                        f"vintage needs a 1-year LPR (published since 2019-08); got {month_end}")
    return month_end


def generate_demo(db_path: str | os.PathLike | None, n_loans: int = DEFAULT_LOANS,
                  seed: int = DEFAULT_SEED, as_of: str | dt.date | None = None) -> dict:
    """Generate the demo portfolio into ``db_path`` and return its truth dictionary.

    Any earlier demo in the database is replaced. The truth is also written as JSON to
    ``demo_truth.json`` in the database file's folder. The same ``n_loans``, ``seed`` and
    ``as_of`` give the same tables and truth.

    Raises
    ------
    DemoError
        If ``n_loans`` is not positive, ``as_of`` is invalid, or the database already
        contains imported (non-demo) loans, which the demo must not mix with.
    """
    if int(n_loans) <= 0:
        raise DemoError(f"number of loans must be a positive integer; got {n_loans}")
    n_loans = int(n_loans)
    as_of_date = resolve_as_of(as_of)
    started = time.perf_counter()
    path = db.resolve_db_path(db_path)
    truth_path = path.with_name(TRUTH_FILE_NAME)

    rng = np.random.default_rng(seed)
    grid = S.MonthGrid.ending_at(as_of_date)
    portfolio = S.build_portfolio(n_loans, grid, rng)
    single_loan = np.bincount(portfolio.borrower_no, minlength=portfolio.borrower_no.max() + 1) == 1
    logger.info("demo: %d loans drawn over %s .. %s", n_loans, grid.month_labels[0],
                grid.month_labels[-1])

    con = db.connect(path)
    try:
        con.execute("set enable_progress_bar = false")
        _check_no_user_data(con)
        con.execute("begin transaction")
        _remove_previous_demo(con)
        load_ids = {table: con.execute("select nextval('load_id_seq')").fetchall()[0][0]
                    for table in ("loans", "loan_months", "collection_actions")}
        load_started = dt.datetime.now()
        _insert_loans(con, portfolio, seed, load_ids["loans"])

        tally = S.Tally()
        chunk_bounds = list(range(0, n_loans, S.CHUNK_LOANS)) + [n_loans]
        chunk_sizes = list(np.diff(chunk_bounds))
        breach_shares = B.split_totals(B.breach_totals(n_loans), chunk_sizes)
        action_parts = []
        month_rows = 0
        for chunk, (lo, hi) in enumerate(zip(chunk_bounds[:-1], chunk_bounds[1:])):
            chunk_rng = np.random.default_rng([seed, 1, chunk])
            rows, actions, chunk_tally = S.simulate_chunk(portfolio, lo, hi, grid, chunk_rng)
            tally.add(chunk_tally)
            month_rows += _insert_loan_months(con, portfolio, rows, load_ids["loan_months"])
            actions = B.inject(actions, breach_shares[chunk], single_loan, chunk_rng)
            action_parts.append(actions)
            logger.info("demo: loans %d..%d simulated (%.1f s)", lo, hi,
                        time.perf_counter() - started)
        actions = {name: np.concatenate([part[name] for part in action_parts])
                   for name in action_parts[0]}
        del action_parts
        downgraded = B.cap_voice_calls(actions)
        breaches = B.count_breaches(actions)
        expected = B.injected_breaches(actions)
        for rule, count in expected.items():
            if breaches[rule] != count:
                raise RuntimeError(f"demo breach count for {rule} is {breaches[rule]}, "
                                   f"expected {count} injected; the generator has a bug")
        action_rows = _insert_actions(con, portfolio, actions, load_ids["collection_actions"])

        truth = build_truth(portfolio, grid, tally, breaches, actions, seed, n_loans,
                            as_of_date, downgraded)
        truth["rows"] = {"loans": n_loans, "loan_months": month_rows,
                         "collection_actions": action_rows}
        truth_text = json.dumps(truth, ensure_ascii=False, indent=2, sort_keys=False)
        digest = hashlib.sha256(truth_text.encode("utf-8")).hexdigest()
        finished = dt.datetime.now()
        for table, rows_count in truth["rows"].items():
            _log_load(con, load_ids[table], table, digest, rows_count, load_started, finished,
                      grid)
        db.set_meta(con, "dataset", "demo")
        facts.rebuild(con)
        con.execute("commit")
    except BaseException:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass
        raise
    finally:
        con.close()

    truth_path.write_text(truth_text, encoding="utf-8")
    logger.info("demo: %d loans, %d month-end rows, %d collection actions loaded into %s "
                "in %.1f s", n_loans, month_rows, action_rows, path,
                time.perf_counter() - started)
    return truth


# ----------------------------------------------------------------------------------------
# Database writes

def _check_no_user_data(con: duckdb.DuckDBPyConnection) -> None:
    user_rows = con.execute(
        """
        select count(*)
        from loans
        where load_id not in (select load_id from load_log where mode = 'demo')
        """
    ).fetchall()[0][0]
    if user_rows:
        raise DemoError(
            f"the database already contains {user_rows} imported loans, and the demo must not "
            f"mix with them. Generate the demo into another file (--db PATH) or remove the "
            f"imports first"
        )


def _remove_previous_demo(con: duckdb.DuckDBPyConnection) -> None:
    old = [row[0] for row in con.execute(
        "select load_id from load_log where mode = 'demo' and result = 'loaded'").fetchall()]
    if not old:
        return
    for table in DATA_TABLES:
        con.execute(f"delete from {table} where list_contains($ids, load_id)", {"ids": old})
    con.execute(
        """
        update load_log
        set result = 'removed', removed_at = now()::timestamp
        where list_contains($ids, load_id)
        """,
        {"ids": old},
    )
    logger.info("demo: removed the previous demo (loads %s)", old)


def _dictionary(codes: np.ndarray, names, valid: np.ndarray | None = None) -> pa.Array:
    indices = pa.array(np.asarray(codes, dtype=np.int32),
                       mask=None if valid is None else ~np.asarray(valid, dtype=bool))
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(names), pa.string()))


def _decimal(fen: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Exact DECIMAL(18,2) arrow array from integer fen (no float rounding)."""
    fen = np.ascontiguousarray(fen, dtype=np.int64)
    wide = np.empty((len(fen), 2), dtype=np.int64)
    wide[:, 0] = fen
    wide[:, 1] = fen >> 63  # two's-complement sign extension to 128 bits
    array = pa.Array.from_buffers(pa.decimal128(18, 2), len(fen),
                                  [None, pa.py_buffer(wide.tobytes())])
    if valid is not None:
        array = pc.if_else(pa.array(np.asarray(valid, dtype=bool)), array,
                           pa.scalar(None, pa.decimal128(18, 2)))
    return array


def _insert_loans(con, pf: S.Portfolio, seed: int, load_id: int) -> None:
    city_names = [entry[1] for entry in S.CITY_TABLE]
    city_codes = [entry[2] for entry in S.CITY_TABLE]
    branches = [entry[3] for entry in S.CITY_TABLE]
    offline = pf.channel == P.CHANNELS.index("线下")
    branch_names = branches + [P.ONLINE_BRANCH["线上"], P.ONLINE_BRANCH["助贷"]]
    branch_code = np.where(offline, pf.city,
                           np.where(pf.channel == P.CHANNELS.index("线上"), len(branches),
                                    len(branches) + 1))
    origination = (np.datetime64("1970-01-01") + _month_start_days(pf)
                   + (pf.day - 1).astype("timedelta64[D]"))
    table = pa.table({
        "loan_no": pa.array(pf.loan_no),
        "borrower_no": pa.array(pf.borrower_no),
        "origination_date": pa.array(origination.astype("datetime64[D]")),
        "principal": _decimal(pf.principal_fen),
        "term_months": pa.array(pf.term.astype(np.int32)),
        "annual_rate": pa.array(pf.rate),
        "repayment_method": _dictionary(pf.method, P.METHODS),
        "product": _dictionary(pf.product, P.PRODUCTS),
        "channel": _dictionary(pf.channel, P.CHANNELS),
        "branch": _dictionary(branch_code, branch_names),
        "province": _dictionary(pf.province, [p["name"] for p in P.PROVINCES]),
        "city": _dictionary(pf.city, city_names),
        "region_code": _dictionary(pf.city, city_codes),
        "grade": _dictionary(pf.grade, P.GRADES),
        "score": pa.array(pf.score),
        "guarantee_type": _dictionary(pf.guarantee, P.GUARANTEES),
        "group_id": pa.array(pf.group_id.tolist(), pa.string()),
        "is_first_loan": pa.array(pf.is_first),
        "borrower_age": pa.array(pf.age.astype(np.int32)),
        "borrower_gender": _dictionary(pf.gender, ("M", "F")),
    })
    con.register("demo_loans_arrow", table)
    con.execute(
        """
        insert into loans (loan_id, borrower_id, origination_date, principal, term_months,
            annual_rate, repayment_method, product, channel, branch, province, city, county,
            region_code, grade, score, guarantee_type, group_id, is_first_loan, borrower_age,
            borrower_gender, load_id)
        select
            '00' || loan_no::varchar,
            sha256('loanlens-demo:' || $seed || ':' || borrower_no::varchar),
            origination_date,
            principal,
            term_months,
            annual_rate,
            repayment_method::varchar,
            product::varchar,
            channel::varchar,
            branch::varchar,
            province::varchar,
            city::varchar,
            null,
            region_code::varchar,
            grade::varchar,
            score,
            guarantee_type::varchar,
            group_id,
            is_first_loan,
            borrower_age,
            borrower_gender::varchar,
            $load_id
        from demo_loans_arrow
        order by loan_no
        """,
        {"seed": str(seed), "load_id": load_id},
    )
    con.unregister("demo_loans_arrow")


def _month_start_days(pf: S.Portfolio) -> np.ndarray:
    # Vintage index -> first day of that month, as timedelta64[D] since the epoch.
    return pf.vintage_start_days.astype("timedelta64[D]")


def _insert_loan_months(con, pf: S.Portfolio, rows: dict, load_id: int) -> int:
    size = len(rows["loan_index"])
    if size == 0:
        return 0
    snapshot = (np.datetime64("1970-01-01") + rows["snapshot_day"].astype("timedelta64[D]"))
    table = pa.table({
        "loan_no": pa.array(pf.loan_no[rows["loan_index"]]),
        "snapshot_date": pa.array(snapshot.astype("datetime64[D]")),
        "dpd": pa.array(rows["dpd"]),
        "outstanding_principal": _decimal(rows["outstanding_fen"]),
        "overdue_principal": _decimal(rows["overdue_principal_fen"]),
        "overdue_interest": _decimal(rows["overdue_interest_fen"]),
        "status": _dictionary(rows["status"], S.STATUSES),
        "principal_paid": _decimal(rows["principal_paid_fen"]),
        "interest_paid": _decimal(rows["interest_paid_fen"]),
        "charged_off_amount": _decimal(np.maximum(rows["charged_off_fen"], 0),
                                       rows["charged_off_fen"] >= 0),
        "recovered_amount": _decimal(np.maximum(rows["recovered_fen"], 0),
                                     rows["recovered_fen"] >= 0),
    })
    con.register("demo_months_arrow", table)
    con.execute(
        """
        insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal,
            overdue_principal, overdue_interest, status, principal_paid, interest_paid,
            charged_off_amount, recovered_amount, is_derived, load_id)
        select
            '00' || loan_no::varchar,
            snapshot_date,
            dpd,
            outstanding_principal,
            overdue_principal,
            overdue_interest,
            status::varchar,
            principal_paid,
            interest_paid,
            charged_off_amount,
            recovered_amount,
            false,
            $load_id
        from demo_months_arrow
        """,
        {"load_id": load_id},
    )
    con.unregister("demo_months_arrow")
    return size


def _insert_actions(con, pf: S.Portfolio, actions: dict, load_id: int) -> int:
    size = len(actions["loan_index"])
    if size == 0:
        return 0
    order = np.lexsort((pf.loan_no[actions["loan_index"]], actions["time_us"]))
    a = {name: values[order] for name, values in actions.items()}
    agent_names = list(S.AGENTS)
    table = pa.table({
        "action_id": pa.array(np.arange(1, size + 1, dtype=np.int64)),
        "loan_no": pa.array(pf.loan_no[a["loan_index"]]),
        "action_time": pa.array(a["time_us"].astype("datetime64[us]")),
        "channel": _dictionary(a["channel"], S.ACTION_CHANNELS),
        "strategy": _dictionary(a["strategy"], S.STRATEGIES),
        "dpd_at_action": pa.array(a["dpd"]),
        "contact_target": _dictionary(a["target"], S.TARGETS),
        "connected": pa.array(a["connected"] == 1, mask=a["connected"] < 0),
        "outcome": _dictionary(np.maximum(a["outcome"], 0), S.OUTCOMES, a["outcome"] >= 0),
        "amount_collected": _decimal(a["amount_fen"]),
        "cost": _decimal(a["cost_fen"]),
        "agent_id": _dictionary(a["agent"], agent_names),
        "team": _dictionary(S.AGENT_TEAM[a["agent"]], S.TEAMS),
    })
    con.register("demo_actions_arrow", table)
    con.execute(
        """
        insert into collection_actions (action_id, loan_id, action_time, channel, strategy,
            dpd_at_action, contact_target, connected, outcome, amount_collected, cost,
            agent_id, team, load_id)
        select
            action_id,
            '00' || loan_no::varchar,
            action_time,
            channel::varchar,
            strategy::varchar,
            dpd_at_action,
            contact_target::varchar,
            connected,
            outcome::varchar,
            amount_collected,
            cost,
            agent_id::varchar,
            team::varchar,
            $load_id
        from demo_actions_arrow
        """,
        {"load_id": load_id},
    )
    con.unregister("demo_actions_arrow")
    return size


def _log_load(con, load_id, table, digest, rows, started, finished, grid) -> None:
    months = ",".join(grid.month_labels) if table == "loan_months" else None
    con.execute(
        """
        insert into load_log (load_id, table_name, file_name, file_sha256, mode, encoding,
            started_at, finished_at, rows_read, rows_loaded, rows_rejected, footer_rows,
            months, amount_totals, result, message)
        values ($load_id, $table, 'demo', $digest, 'demo', null, $started, $finished, $rows,
            $rows, 0, 0, $months, null, 'loaded', 'simulated demo portfolio')
        """,
        {"load_id": load_id, "table": table, "digest": digest, "started": started,
         "finished": finished, "rows": rows, "months": months},
    )


# ----------------------------------------------------------------------------------------
# Truth

def build_truth(pf: S.Portfolio, grid: S.MonthGrid, tally: S.Tally, breaches: dict,
                actions: dict, seed: int, n_loans: int, as_of: dt.date,
                downgraded_calls: int) -> dict:
    """Collect every true parameter and realised check figure into one JSON-able dict."""
    from ingest import demo_truth

    return demo_truth.build(pf, grid, tally, breaches, actions, seed, n_loans, as_of,
                            downgraded_calls)


# ----------------------------------------------------------------------------------------
# Command line

def main(argv: list[str] | None = None) -> int:
    """Run ``python -m ingest demo``.

    Returns 0 on success, 2 on invalid arguments and 1 when the database cannot be written
    (for example while another process holds it open).
    """
    parser = argparse.ArgumentParser(
        prog="python -m ingest demo",
        description="Generate the simulated demo portfolio into a LoanLens database and "
                    "write its true parameters to demo_truth.json beside it.",
    )
    parser.add_argument("--db", help="database file (default: $LOANLENS_DB or "
                                     "data/loanlens.duckdb)")
    parser.add_argument("--loans", type=int, default=DEFAULT_LOANS,
                        help=f"number of loans (default {DEFAULT_LOANS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed; the same seed gives the same data "
                             f"(default {DEFAULT_SEED})")
    parser.add_argument("--as-of", dest="as_of",
                        help="as-of month-end, YYYY-MM-DD (default: the last month-end "
                             "before today)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return 0 if exit_.code == 0 else 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        truth = generate_demo(args.db, n_loans=args.loans, seed=args.seed, as_of=args.as_of)
    except DemoError as error:
        logger.error("%s", error)
        return 2
    except duckdb.Error as error:
        logger.error("demo generation failed, the database is unchanged: %s", error)
        return 1
    path = db.resolve_db_path(args.db)
    print(f"demo portfolio: {truth['n_loans']} loans, {truth['rows']['loan_months']} month-end "
          f"rows, {truth['rows']['collection_actions']} collection actions, as of "
          f"{truth['as_of']}")
    print(f"database: {path}")
    print(f"truth: {path.with_name(TRUTH_FILE_NAME)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
