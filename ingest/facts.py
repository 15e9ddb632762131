"""Fact tables derived from the stored loan tape, rebuilt after every write.

Reports on a book of a million loans cannot afford to join 15 million month-end rows to
the loans table on a text key at every page view. After each import, load removal and
demo generation, and inside the same transaction, :func:`rebuild` fills:

- ``loan_facts``: one row per loan with a dense integer ``loan_key``, its segment columns,
  first and last month-end and the FPD30 judgement;
- ``month_facts``: one row per month-end row with the loan's segment columns, months on
  book and the same loan's next month-end (``next_*``), so roll rates need no self-join;
- the tables of any step listed in :data:`EXTRA_STEPS` (collection episodes and calls).

The tables are defined in ``queries/facts_schema.sql``, dropped and created again at every
rebuild, and filled by the named queries in the other ``queries/facts*.sql`` files. A signature of the source tables (row counts and the last
``loaded`` load id; failed attempts do not count) is kept in ``app_meta``;
:func:`is_current` compares it, so a database written by an older LoanLens, or changed by
hand, is rebuilt before reports read it.
"""

from __future__ import annotations

import logging
import os
import re
import time

import duckdb

import queries
from queries import db

logger = logging.getLogger(__name__)

# Bump when a fact table's definition changes, so existing databases are rebuilt.
FACTS_VERSION = "2"
META_KEY = "facts_signature"
# DuckDB memory limit while the fact tables are rebuilt (see rebuild).
REBUILD_MEMORY_LIMIT = "2GB"

CORE_STEPS = ["facts_loan_keys", "facts_insert_months", "facts_insert_loans"]
# Named queries run after the core steps, in order; each clears and fills its own tables.
EXTRA_STEPS: list[str] = []
EXTRA_STEPS.append("facts_survival_events")  # loan_survival_facts
EXTRA_STEPS.extend(["facts_collection_actions", "facts_collection_stages", "facts_collection_stage_actions", "facts_collection_stage_totals", "facts_collection_stage_channels"])  # collection_*_facts
EXTRA_STEPS.append("facts_cohort_history")  # loan_history_facts

_SOURCE_TABLES = ("loans", "loan_months", "installments", "collection_actions")


def fact_tables() -> list[str]:
    """Return the names of the tables defined in ``queries/facts_schema.sql``."""
    return re.findall(r"^create table if not exists (\w+)", queries.facts_schema_sql(), re.MULTILINE)


def signature(con: duckdb.DuckDBPyConnection) -> str:
    """Return the facts version, the source tables' row counts and the last loaded load id."""
    counts = con.execute(
        "select "
        + ", ".join(f"(select count(*) from {table})" for table in _SOURCE_TABLES)
        + ", (select coalesce(max(load_id), 0) from load_log where result = 'loaded')"
    ).fetchone()
    return FACTS_VERSION + ":" + ",".join(str(value) for value in counts)


def is_current(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the fact tables were built from the tables as they are now."""
    try:
        return db.get_meta(con, META_KEY) == signature(con)
    except duckdb.CatalogException:
        return False


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Refill every fact table from the source tables on ``con``.

    Runs inside the caller's transaction when there is one, so a failed import leaves the
    fact tables as they were. Records the new signature in ``app_meta``.
    """
    started = time.perf_counter()
    # Without a limit, the window and sort over every month-end row fill DuckDB's default
    # buffer pool (80% of RAM). With 2 GB they spill to disk: at 12.5 million rows the
    # rebuild alone peaked at about 2 GiB, against 3.1 GiB without the limit.
    previous_limit = con.execute("select current_setting('memory_limit')").fetchone()[0]
    con.execute(f"set memory_limit = '{REBUILD_MEMORY_LIMIT}'")
    try:
        for table in fact_tables():
            con.execute(f"drop table if exists {table}")
        con.execute(queries.facts_schema_sql())
        for name in CORE_STEPS + EXTRA_STEPS:
            step_started = time.perf_counter()
            queries.execute(con, name)
            logger.debug("facts step %s took %.2f s", name, time.perf_counter() - step_started)
    finally:
        con.execute(f"set memory_limit = '{previous_limit}'")
    con.execute("drop table if exists fact_keys")
    db.set_meta(con, META_KEY, signature(con))
    logger.info("fact tables rebuilt in %.1f s", time.perf_counter() - started)


def ensure_current(path: str | os.PathLike | None = None) -> bool:
    """Rebuild the fact tables of the database file when they are missing or stale.

    Opens a read-only connection to check, and a writing one only when a rebuild is
    needed. Returns True when it rebuilt. A file that does not exist is left alone.
    """
    db_path = db.resolve_db_path(path)
    if not db_path.exists():
        return False
    con = db.connect(db_path, read_only=True)
    try:
        current = is_current(con)
    finally:
        con.close()
    if current:
        return False
    logger.info("fact tables of %s are missing or stale; rebuilding", db_path)
    con = db.connect(db_path)
    try:
        con.execute("begin transaction")
        try:
            rebuild(con)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        con.close()
    return True
