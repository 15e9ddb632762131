"""Named SQL queries kept in ``queries/*.sql`` and the runner that binds their parameters.

Each ``.sql`` file holds one or more blocks, each introduced by a header line::

    -- name: vintage_curve
    -- Returns one row per (vintage, mob): vintage DATE (month start), mob INTEGER, ...
    select ...

Parameters are DuckDB named parameters (``$as_of``). Values are always bound by DuckDB,
never formatted into the SQL text. ``schema.sql`` (the storage schema) and
``facts_schema.sql`` (the fact tables) hold no queries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import duckdb
import pandas as pd

QUERY_DIR = Path(__file__).resolve().parent
SCHEMA_FILE = QUERY_DIR / "schema.sql"
FACTS_SCHEMA_FILE = QUERY_DIR / "facts_schema.sql"

_NAME_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Query:
    """One named query: its SQL, the parameters it references and where it is defined."""

    name: str
    sql: str
    parameters: frozenset[str]
    source: str  # "file.sql:line"
    doc: str  # the comment lines after the name header


def _parse_file(path: Path) -> list[Query]:
    text = path.read_text(encoding="utf-8")
    headers = list(_NAME_HEADER.finditer(text))
    queries = []
    for index, header in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(text)
        body = text[header.end():end].strip()
        doc_lines = []
        for line in body.splitlines():
            if not line.startswith("--"):
                break
            doc_lines.append(line[2:].strip())
        sql = body.rstrip().rstrip(";")
        line_no = text.count("\n", 0, header.start()) + 1
        queries.append(
            Query(
                name=header.group(1),
                sql=sql,
                parameters=frozenset(_PARAMETER.findall(_strip_comments(sql))),
                source=f"{path.name}:{line_no}",
                doc="\n".join(doc_lines),
            )
        )
    return queries


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


@lru_cache(maxsize=1)
def load_queries() -> dict[str, Query]:
    """Parse every ``queries/*.sql`` file except the schema into a name -> Query map.

    Raises
    ------
    ValueError
        If two blocks share a name.
    """
    found: dict[str, Query] = {}
    for path in sorted(QUERY_DIR.glob("*.sql")):
        if path in (SCHEMA_FILE, FACTS_SCHEMA_FILE):
            continue
        for query in _parse_file(path):
            if query.name in found:
                raise ValueError(
                    f"query name {query.name!r} is defined twice: "
                    f"{found[query.name].source} and {query.source}; rename one"
                )
            found[query.name] = query
    return found


def get_query(name: str) -> Query:
    """Return the named query, or raise KeyError listing the known names."""
    queries = load_queries()
    if name not in queries:
        raise KeyError(f"no query named {name!r}; known queries: {', '.join(sorted(queries))}")
    return queries[name]


def bind_parameters(query: Query, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Select the parameters the query references from ``params``.

    Extra keys are ignored, so callers can pass the shared filter parameters to any query.

    Raises
    ------
    KeyError
        If the query references a parameter that ``params`` does not contain.
    """
    params = dict(params or {})
    missing = sorted(query.parameters - params.keys())
    if missing:
        raise KeyError(
            f"query {query.name!r} ({query.source}) needs parameters {missing}; "
            f"pass them as keyword values"
        )
    return {name: params[name] for name in query.parameters}


def run(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Execute the named query with bound parameters and return the result as a DataFrame."""
    query = get_query(name)
    return con.execute(query.sql, bind_parameters(query, params)).df()


def execute(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute the named query (a statement or a query) and return the cursor, unfetched."""
    query = get_query(name)
    return con.execute(query.sql, bind_parameters(query, params))


def run_sql(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Execute ad hoc SQL, binding only the parameters it references, and return a DataFrame.

    For SQL assembled from fixed fragments (such as a chosen column list); values still
    travel as bound parameters.
    """
    query = Query("ad_hoc", sql, frozenset(_PARAMETER.findall(_strip_comments(sql))), "<ad hoc>", "")
    return con.execute(sql, bind_parameters(query, params)).df()


def schema_sql() -> str:
    """Return the storage schema script (idempotent ``create ... if not exists``)."""
    return SCHEMA_FILE.read_text(encoding="utf-8")


def facts_schema_sql() -> str:
    """Return the fact tables' definitions (``create ... if not exists``, idempotent)."""
    return FACTS_SCHEMA_FILE.read_text(encoding="utf-8")
