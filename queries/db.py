"""Opening the LoanLens DuckDB database file.

The default file is ``data/loanlens.duckdb`` in the repository; the ``LOANLENS_DB``
environment variable or a ``--db`` option overrides it. Connections are opened when first
needed, never at import time.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

from queries import facts_schema_sql, schema_sql

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = REPO_ROOT / "data" / "loanlens.duckdb"
SCHEMA_VERSION = "1"


def resolve_db_path(path: str | os.PathLike | None = None) -> Path:
    """Return the database path: ``path`` if given, else ``$LOANLENS_DB``, else the default."""
    if path:
        return Path(path).expanduser().resolve()
    env_path = os.environ.get("LOANLENS_DB")
    if env_path:
        return Path(env_path).expanduser().resolve()
    return DEFAULT_DB_PATH


def connect(
    path: str | os.PathLike | None = None, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open the database file, creating it and its schema when opened for writing.

    A read-only connection on a file that does not exist yet raises FileNotFoundError,
    because DuckDB cannot create a file in read-only mode.
    """
    db_path = resolve_db_path(path)
    if read_only:
        if not db_path.exists():
            raise FileNotFoundError(
                f"database file {db_path} does not exist; load data first with "
                f"`python -m ingest demo` or `python -m ingest load`"
            )
        return duckdb.connect(str(db_path), read_only=True)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path))
    init_schema(con)
    return con


def init_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create any missing tables, sequences and macros, and record the schema version."""
    con.execute(schema_sql())
    con.execute(facts_schema_sql())
    con.execute("delete from app_meta where key = 'schema_version'")
    con.execute("insert into app_meta values ('schema_version', ?)", [SCHEMA_VERSION])


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """Return one app_meta value, or None when it is not set."""
    row = con.execute("select value from app_meta where key = ?", [key]).fetchone()
    return row[0] if row else None


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Set one app_meta value, replacing any earlier one."""
    con.execute("delete from app_meta where key = ?", [key])
    con.execute("insert into app_meta values (?, ?)", [key, value])
