"""Shared page helpers: language, database access, shared filters, downloads.

Pages call these and never open connections or build SQL themselves.

Database access
---------------
DuckDB lets one process hold a file read-write, or any number of processes hold it
read-only, never both. ``python -m ingest load`` needs the write lock, so the dashboard
must not keep the file open while it is idle. The design:

- One :class:`_Database` per database file (``st.cache_resource``) owns a read-only
  connection. It is opened on the first :func:`connection` call of a script run. It is
  closed, with every cursor made from it, as soon as no script run is using it
  (:func:`script_run` in ``app.py`` marks runs), so between page loads the file is not open.
- Each script thread gets its own cursor, because duckdb 2.x rejects concurrent use of one
  connection object from several threads.
- Opening retries for a few seconds while another process holds the write lock, then
  raises :class:`DataUpdating`; ``app.py`` shows ``app.data_updating`` instead of a crash.
  :func:`data_version` falls back to the last version it read, so cached results stay
  available during the load.
- Query results are cached with ``st.cache_data`` keyed by :func:`data_version` (row count
  and latest ids of load_log), so a load or a removal gives new keys; :func:`write_connection`
  also clears the cache.
- :func:`write_connection` (data import page) waits until no other script run is reading,
  closes the read-only connection and opens the file read-write, because DuckDB rejects a
  second connection to one file with a different configuration in the same process.

NOTE: a page script run on its own (``AppTest.from_file("dashboard/views/x.py")``) has no
:func:`script_run` around it, so its read-only connection stays open until
:func:`release_connections` is called.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
import time
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd
import streamlit as st

from analysis import export
from analysis.filters import Filters
from messages import DEFAULT_LANGUAGE, LANGUAGES, format as fmt, t
from ingest import facts
from queries import db

logger = logging.getLogger(__name__)

# How long to retry opening the file while another process holds DuckDB's write lock.
LOCK_RETRY_SECONDS = 3.0
# How long write_connection waits for other sessions' script runs to finish reading.
WRITE_WAIT_SECONDS = 30.0

# URL path of each page (file stem -> path); the default page (kpis) is served at "/".
# The page modules live in dashboard/views/, not pages/, because Streamlit 1.67 treats a
# ``pages/`` folder beside the entry script as a v1 multipage app until st.navigation first
# runs: a deep link opened as a server's first request then showed "Page not found" or ran
# the page without app.py's sidebar, filters and demo load.
PAGE_URL_PATHS = {
    "kpis": "",
    "vintage": "vintage-roll-rates",
    "survival": "survival-analysis",
    "regions": "regions-map",
    "collections": "collection-strategies",
    "compliance": "compliance-monitoring",
    "data_import": "data-import",
    "data_download": "data-download",
}

_thread_local = threading.local()


class DataUpdating(RuntimeError):
    """The database file is locked by a load in another process; retry in a few seconds."""


# --- language -------------------------------------------------------------------------

def lang() -> str:
    """Return the UI language of this session ('zh' or 'en')."""
    value = st.session_state.get("lang", DEFAULT_LANGUAGE)
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def tr(key: str, **values) -> str:
    """Return the catalog text for ``key`` in the session's language."""
    return t(key, lang(), **values)


# --- database ---------------------------------------------------------------------------

def _is_lock_error(error: Exception) -> bool:
    text = str(error).lower()
    return "lock" in text or "conflicting" in text


class _Database:
    """The read-only connection to one database file, opened and released on demand."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Condition()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._generation = 0          # bumped on every close, so stale cursors are not reused
        self._active_runs: dict[int, int] = {}   # thread id -> nesting depth of script runs
        self._writing = False
        self._facts_checked = False   # every writer rebuilds the facts, so one check suffices
        self.last_version: int | None = None

    # Script runs -----------------------------------------------------------------------
    def begin_run(self) -> None:
        with self._lock:
            thread = threading.get_ident()
            self._active_runs[thread] = self._active_runs.get(thread, 0) + 1

    def end_run(self) -> None:
        with self._lock:
            thread = threading.get_ident()
            depth = self._active_runs.get(thread, 0) - 1
            if depth > 0:
                self._active_runs[thread] = depth
            else:
                self._active_runs.pop(thread, None)
            if not self._active_runs:
                self._close_locked()
            self._lock.notify_all()

    # Reading ---------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Return this thread's cursor, opening the file read-only when it is closed."""
        with self._lock:
            while self._writing:
                if not self._lock.wait(timeout=LOCK_RETRY_SECONDS):
                    raise DataUpdating(f"{self.path} is being written by the data import page")
            cache = getattr(_thread_local, "cursors", None)
            if cache is None:
                cache = _thread_local.cursors = {}
            cached = cache.get(self.path)
            if cached is not None and cached[0] == self._generation and self._connection is not None:
                return cached[1]
            if self._connection is None:
                self._connection = self._open_read_only()
            cursor = self._connection.cursor()
            self._cursors.append(cursor)
            cache[self.path] = (self._generation, cursor)
            return cursor

    def _open_read_only(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + LOCK_RETRY_SECONDS
        while True:
            try:
                if not self._facts_checked:
                    facts.ensure_current(self.path)
                    self._facts_checked = True
                return db.connect(self.path, read_only=True)
            except duckdb.IOException as error:
                if not _is_lock_error(error):
                    raise
                if time.monotonic() >= deadline:
                    logger.warning("database %s stays locked by another process: %s", self.path, error)
                    raise DataUpdating(str(error)) from error
                time.sleep(0.2)

    def _close_locked(self) -> None:
        for cursor in self._cursors:
            with contextlib.suppress(duckdb.Error):
                cursor.close()
        self._cursors.clear()
        if self._connection is not None:
            with contextlib.suppress(duckdb.Error):
                self._connection.close()
            self._connection = None
        self._generation += 1

    def release(self) -> None:
        """Close the read-only connection now (the next cursor() call reopens it)."""
        with self._lock:
            self._close_locked()

    # Writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Block readers and close the read-only connection while the block runs."""
        thread = threading.get_ident()
        with self._lock:
            deadline = time.monotonic() + WRITE_WAIT_SECONDS
            while self._writing or any(t != thread for t in self._active_runs):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise DataUpdating(f"other sessions are still reading {self.path}")
                self._lock.wait(timeout=remaining)
            self._writing = True
            self._close_locked()
        try:
            yield
        finally:
            with self._lock:
                self._writing = False
                self._lock.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a read-write connection while readers are blocked."""
        with self.exclusive():
            try:
                con = db.connect(self.path)
            except duckdb.IOException as error:
                if _is_lock_error(error):
                    raise DataUpdating(str(error)) from error
                raise
            try:
                yield con
            finally:
                con.close()


@st.cache_resource(show_spinner=False)
def _database(path: str) -> _Database:
    """Return the connection manager of one database file, shared by all sessions."""
    return _Database(path)


def database_path() -> Path:
    """Return the database file the dashboard reads ($LOANLENS_DB or the default)."""
    return db.resolve_db_path()


def _current_database() -> _Database:
    return _database(str(database_path()))


def connection() -> duckdb.DuckDBPyConnection:
    """Return this thread's read-only cursor on the database.

    Raises
    ------
    DataUpdating
        When a load in another process keeps the file locked for more than a few seconds.
    """
    return _current_database().cursor()


@contextlib.contextmanager
def script_run() -> Iterator[None]:
    """Mark one script run; the file is closed when no run is using it any more."""
    database = _current_database()
    database.begin_run()
    try:
        yield
    finally:
        database.end_run()


@contextlib.contextmanager
def write_connection() -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a read-write connection for an import, then clear cached query results.

    Waits (up to 30 s) for other sessions' script runs to finish reading, closes the
    read-only connection and opens the file read-write. Readers in other sessions wait
    while the block runs.
    """
    database = _current_database()
    with database.writing() as con:
        yield con
    st.cache_data.clear()
    logger.info("data written to %s; cached query results cleared", database.path)


@contextlib.contextmanager
def exclusive_access() -> Iterator[None]:
    """Close the read-only connection and block readers, e.g. while another module writes
    the file with its own connection (the demo generator). Clears cached results after."""
    with _current_database().exclusive():
        yield
    st.cache_data.clear()


def release_connections() -> None:
    """Close the cached read-only connection of the current database file (tests use it)."""
    _current_database().release()


def data_version() -> int:
    """Return a number that changes whenever a load changes the data (cache key).

    While another process holds the write lock, returns the last version read, so pages
    can still show cached results.
    """
    database = _current_database()
    try:
        row = connection().execute(
            "select count(*), coalesce(max(load_id), 0), count(removed_at), "
            "coalesce(max(coalesce(removed_at, finished_at, started_at)), timestamp '1970-01-01') "
            "from load_log"
        ).fetchone()
    except DataUpdating:
        if database.last_version is None:
            raise
        return database.last_version
    # The path is part of the key, so two database files never share cached results.
    version = hash((database.path, row[0], row[1], row[2], str(row[3])))
    database.last_version = version
    return version


# --- shared filters -----------------------------------------------------------------------

FILTER_STATE_KEY = "filters"


def filters() -> Filters:
    """Return the shared filters chosen in the sidebar (no filter until the shell sets them)."""
    value = st.session_state.get(FILTER_STATE_KEY)
    return value if isinstance(value, Filters) else Filters()


def set_filters(value: Filters) -> None:
    """Store the shared filters for every page of this session."""
    st.session_state[FILTER_STATE_KEY] = value


# --- drawing helpers ----------------------------------------------------------------------

def coming_soon(title_key: str) -> None:
    """Draw the page title and a short notice for a page that is not built yet."""
    st.title(tr(title_key))
    st.info(tr("app.coming"))


def method_note(text: str) -> None:
    """Draw the 口径 note (metric definition used) under a chart."""
    st.caption(f"{tr('common.method_note')}：{text}" if lang() == "zh"
               else f"{tr('common.method_note')}: {text}")


def format_month(month: dt.date | str | None) -> str:
    """Format a month in the session's language."""
    return fmt.format_month(month, lang())


def language_key(key: str) -> str:
    """Return a widget key that changes with the UI language.

    A selectbox or radio whose ``format_func`` depends on the language keeps showing the
    old language's option text in the browser after a switch (Streamlit 1.67), so such
    widgets get one key per language. Restore the choice from your own session state
    (see :func:`remembered`), because the new widget starts from its default.
    """
    return f"{key}_{lang()}"


def remembered(name: str, default):
    """Return a page setting stored with :func:`remember`, or ``default``.

    Widget state is dropped when a page without that widget runs, so page settings that
    must survive page switches are kept under a plain session-state name as well.
    """
    return st.session_state.get(f"setting_{name}", default)


def remember(name: str, value) -> None:
    """Store a page setting for :func:`remembered`."""
    st.session_state[f"setting_{name}"] = value


def month_formatter():
    """Return a month formatter bound to the session's current language.

    Use it as a widget ``format_func``: Streamlit may call that function outside the
    script run, where the session's language cannot be read.
    """
    language = lang()
    return functools.partial(fmt.format_month, lang=language)


def download_buttons(frame: pd.DataFrame, file_stem: str, key: str) -> None:
    """Offer the frame as CSV (UTF-8 with BOM) and .xlsx.

    The files are encoded only when a button is clicked (Streamlit runs the callable
    then), because encoding every chart's table as .xlsx on every script run took most
    of a warm page load. The callables get a copy, so later changes to ``frame`` do not
    reach the file.
    """
    frame = frame.copy()
    left, right = st.columns(2)
    left.download_button(
        tr("common.download_csv"),
        data=functools.partial(export.to_csv_bytes, frame),
        file_name=f"{file_stem}.csv",
        mime="text/csv",
        key=f"{key}_csv",
    )
    right.download_button(
        tr("common.download_xlsx"),
        data=functools.partial(export.to_xlsx_bytes, frame),
        file_name=f"{file_stem}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key=f"{key}_xlsx",
    )


def language_selectbox(label: str, options: list, name: str, format_func) -> object:
    """Draw a selectbox whose option labels are translated, keeping the choice across languages.

    In Streamlit 1.67 a selectbox keeps showing the previous language's option label after
    a language switch (checked in Chromium), so its key includes the language and the
    choice itself lives in session state under ``name``.
    """
    stored = st.session_state.get(name)
    index = options.index(stored) if stored in options else 0
    value = st.selectbox(label, options, index=index, format_func=format_func, key=f"{name}_{lang()}")
    st.session_state[name] = value
    return value
