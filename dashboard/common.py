"""Shared page helpers: language, database access, shared filters, downloads.

Pages call these and never open connections or build SQL themselves.
"""

from __future__ import annotations

import threading

import duckdb
import pandas as pd
import streamlit as st

from analysis import export
from analysis.filters import Filters
from messages import DEFAULT_LANGUAGE, t
from queries import db

_thread_local = threading.local()


def lang() -> str:
    """Return the UI language of this session ('zh' or 'en')."""
    return st.session_state.get("lang", DEFAULT_LANGUAGE)


def tr(key: str, **values) -> str:
    """Return the catalog text for ``key`` in the session's language."""
    return t(key, lang(), **values)


@st.cache_resource
def _database(path: str) -> duckdb.DuckDBPyConnection:
    """One connection per database file, shared by all sessions; use cursors from it."""
    return db.connect(path)


def connection() -> duckdb.DuckDBPyConnection:
    """Return a cursor of the shared connection, one per thread.

    duckdb 2.x rejects concurrent use of one connection object, so each Streamlit script
    thread gets its own cursor.
    """
    path = str(db.resolve_db_path())
    cursors = getattr(_thread_local, "cursors", None)
    if cursors is None:
        cursors = _thread_local.cursors = {}
    if path not in cursors:
        cursors[path] = _database(path).cursor()
    return cursors[path]


def data_version() -> int:
    """Return a number that changes whenever a load changes the data (cache key)."""
    row = connection().execute(
        "select count(*), coalesce(max(load_id), 0) from load_log"
    ).fetchone()
    return hash(row)


def filters() -> Filters:
    """Return the shared filters chosen in the sidebar (no filter until the shell sets them)."""
    return st.session_state.get("filters", Filters())


def coming_soon(title_key: str) -> None:
    """Draw the page title and a short notice for a page that is not built yet."""
    st.title(tr(title_key))
    st.info(tr("app.coming"))


def download_buttons(frame: pd.DataFrame, file_stem: str, key: str) -> None:
    """Offer the frame as CSV (UTF-8 with BOM) and .xlsx."""
    left, right = st.columns(2)
    left.download_button(
        tr("common.download_csv"),
        data=export.to_csv_bytes(frame),
        file_name=f"{file_stem}.csv",
        mime="text/csv",
        key=f"{key}_csv",
    )
    right.download_button(
        tr("common.download_xlsx"),
        data=export.to_xlsx_bytes(frame),
        file_name=f"{file_stem}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key=f"{key}_xlsx",
    )
