"""The app frame around every page: language switch, shared filters, demo data, banners.

``app.py`` calls these on every script run, so the sidebar widgets exist on every page and
their values survive page switches. The chosen values are also kept as one
:class:`~analysis.filters.Filters` in session state (``common.filters()``), and each widget
is seeded from it, so a widget that Streamlit recreates (new options after a load) keeps
the user's choice where it is still valid.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import threading
import time
from dataclasses import dataclass

import streamlit as st

import queries
from analysis.filters import Filters
from dashboard import common
from messages import LANGUAGES
from queries import db

logger = logging.getLogger(__name__)

# Set LOANLENS_AUTO_DEMO=0 to start on an empty database without loading the demo portfolio.
AUTO_DEMO_ENV = "LOANLENS_AUTO_DEMO"
DEMO_LOANS = 20_000
# Set LOANLENS_DEMO_LOANS to generate a different number of demo loans (tests use fewer).
DEMO_LOANS_ENV = "LOANLENS_DEMO_LOANS"
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}

_setup_lock = threading.Lock()


@dataclass(frozen=True)
class FilterOptions:
    """Choices offered by the sidebar filters, read from the data."""

    products: tuple[str, ...]
    channels: tuple[str, ...]
    provinces: tuple[str, ...]
    grades: tuple[str, ...]
    vintages: tuple[dt.date, ...]        # month starts, oldest first
    months: tuple[dt.date, ...]          # snapshot month-ends, latest first
    loan_count: int


def _month_starts(first: dt.date | None, last: dt.date | None) -> tuple[dt.date, ...]:
    if first is None or last is None:
        return ()
    months = []
    current = first
    while current <= last:
        months.append(current)
        current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return tuple(months)


@st.cache_data(show_spinner=False)
def _filter_options(version: int) -> FilterOptions:
    row = queries.execute(common.connection(), "dashboard_filter_options").fetchone()
    products, channels, provinces, grades, first, last, months, loan_count = row
    return FilterOptions(
        products=tuple(products or ()),
        channels=tuple(channels or ()),
        provinces=tuple(provinces or ()),
        grades=tuple(grades or ()),
        vintages=_month_starts(first, last),
        months=tuple(months or ()),
        loan_count=int(loan_count),
    )


def filter_options() -> FilterOptions:
    """Return the sidebar choices for the current data (cached per data version)."""
    return _filter_options(common.data_version())


# --- demo data ---------------------------------------------------------------------------

def _auto_demo_enabled() -> bool:
    return os.environ.get(AUTO_DEMO_ENV, "1").strip().lower() not in ("0", "false", "no")


def _loan_count() -> int:
    return int(queries.execute(common.connection(), "dashboard_loan_count").fetchone()[0])


def ensure_database() -> None:
    """Create the database file if missing, and load the demo portfolio into an empty one.

    One session at a time prepares the database. Another session that arrives meanwhile
    gets DataUpdating (shown as 数据更新中, then retried) instead of waiting, because
    waiting inside its script run would keep the preparing session from getting exclusive
    access.
    """
    path = common.database_path()
    auto_demo = _auto_demo_enabled()
    if path.exists() and (not auto_demo or _loan_count() > 0):
        return
    if not _setup_lock.acquire(blocking=False):
        raise common.DataUpdating(f"another session is preparing {path}")
    try:
        if not path.exists():
            with common.exclusive_access():
                db.connect(path).close()
            logger.info("created empty database %s", path)
        if auto_demo and _loan_count() == 0:
            _load_demo(path)
    finally:
        _setup_lock.release()


def _load_demo(path) -> None:
    try:
        from ingest.demo import generate_demo
    except ImportError:
        logger.warning("ingest.demo is not available; starting on an empty database")
        return
    loans = int(os.environ.get(DEMO_LOANS_ENV, DEMO_LOANS))
    with st.spinner(common.tr("app.demo_loading")), common.exclusive_access():
        logger.info("database %s is empty; generating %d demo loans", path, loans)
        started = time.perf_counter()
        generate_demo(path, n_loans=loans)
        logger.info("generated the demo portfolio in %.1f s", time.perf_counter() - started)
        con = db.connect(path)
        try:
            if db.get_meta(con, "dataset") is None:
                db.set_meta(con, "dataset", "demo")
        finally:
            con.close()


def is_demo() -> bool:
    """Tell whether the database contains the generated demo portfolio."""
    return _dataset_kind(common.data_version()) == "demo"


@st.cache_data(show_spinner=False)
def _dataset_kind(version: int) -> str | None:
    return db.get_meta(common.connection(), "dataset")


# --- sidebar -----------------------------------------------------------------------------

def render_language_switch() -> None:
    """Draw the 中文/English switch; its value is ``common.lang()``."""
    st.sidebar.segmented_control(
        common.tr("app.language"),
        options=list(LANGUAGES),
        default=common.lang(),
        format_func=LANGUAGE_NAMES.__getitem__,
        key="lang",
        required=True,
    )


def _multiselect(label_key: str, key: str, options: tuple[str, ...], stored: tuple[str, ...]) -> tuple:
    chosen = st.sidebar.multiselect(
        common.tr(label_key),
        options=list(options),
        default=[value for value in stored if value in options],
        key=key,
        placeholder=common.tr("filters.all"),
    )
    return tuple(chosen)


def _vintage_range(vintages: list[dt.date], current: Filters) -> tuple[dt.date | None, dt.date | None]:
    """Draw the origination-month range; return (None, None) when it spans every vintage."""
    if len(vintages) < 2:
        return None, None
    low = current.vintage_from.replace(day=1) if current.vintage_from else vintages[0]
    high = current.vintage_to.replace(day=1) if current.vintage_to else vintages[-1]
    if low not in vintages or high not in vintages or low > high:
        low, high = vintages[0], vintages[-1]
    low, high = st.sidebar.select_slider(
        common.tr("filters.vintage"),
        options=vintages,
        value=(low, high),
        format_func=common.month_formatter(),
        key=common.language_key("flt_vintage"),
    )
    if (low, high) == (vintages[0], vintages[-1]):
        return None, None
    return low, high


FILTER_WIDGET_KEYS = ("flt_as_of", "flt_products", "flt_channels", "flt_provinces",
                      "flt_grades", "flt_vintage")


def _reset_filters() -> None:
    for key in FILTER_WIDGET_KEYS:
        st.session_state.pop(key, None)
        for language in LANGUAGES:
            st.session_state.pop(f"{key}_{language}", None)
    common.set_filters(Filters())


def render_filters() -> Filters:
    """Draw the shared filters in the sidebar and store the chosen Filters.

    Each widget's default is the stored choice, so a widget that Streamlit recreates (new
    label after a language switch, new options after a load) keeps the user's choice
    where it is still offered.
    """
    options = filter_options()
    current = common.filters()
    st.sidebar.subheader(common.tr("filters.title"))
    if not options.months:
        st.sidebar.caption(common.tr("filters.no_data"))
        chosen = Filters()
        common.set_filters(chosen)
        return chosen

    months = list(options.months)
    as_of = st.sidebar.selectbox(
        common.tr("filters.as_of"),
        options=months,
        index=months.index(current.as_of) if current.as_of in months else 0,
        format_func=common.month_formatter(),
        key=common.language_key("flt_as_of"),
    )
    products = _multiselect("filters.product", "flt_products", options.products, current.products)
    channels = _multiselect("filters.channel", "flt_channels", options.channels, current.channels)
    provinces = _multiselect("filters.province", "flt_provinces", options.provinces, current.provinces)
    grades = _multiselect("filters.grade", "flt_grades", options.grades, current.grades)
    vintage_from, vintage_to = _vintage_range(list(options.vintages), current)
    st.sidebar.button(common.tr("filters.reset"), key="flt_reset", on_click=_reset_filters)

    chosen = Filters(
        as_of=as_of,
        products=products,
        channels=channels,
        provinces=provinces,
        grades=grades,
        vintage_from=vintage_from,
        vintage_to=vintage_to,
    )
    common.set_filters(chosen)
    return chosen


def render_banners() -> None:
    """Show the demo-data banner when the database contains the demo portfolio."""
    if is_demo():
        st.info(common.tr("app.demo_banner"))


# Modules the pages import, the statistics libraries first. Importing them took several
# seconds in all, paid by the first visit to each page; statsmodels with scipy took about
# 1.3 s of the collections page's first load (cold AppTest run on a 2-core machine).
WARM_UP_MODULES = (
    "analysis.collections_compare",
    "statsmodels.stats.proportion",
    "statsmodels.stats.multitest",
    "statsmodels.stats.power",
    "scipy.stats",
    "lifelines",
    "analysis.survival",
    "analysis.collections",
    "analysis.collections_restructure",
    "analysis.vintage",
    "analysis.rollrate",
    "analysis.regions",
    "analysis.compliance",
    "plotly.graph_objects",
    "plotly.colors",
    "pandas.io.formats.style",  # the regions tables' Styler; imports matplotlib (about 0.7 s)
)
_warm_up_started = threading.Event()


def _import_modules(names: tuple[str, ...]) -> None:
    started = time.perf_counter()
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the page that needs the module reports the error
            logger.exception("warm-up import of %s failed", name)
    logger.info("warm-up imported %d modules in %.1f s", len(names), time.perf_counter() - started)


def start_warm_up() -> None:
    """Import the pages' heavy modules in a background thread, once per server process.

    ``app.py`` calls this after its first script run, so that run is not slowed. A page
    opened after the thread has finished finds its modules imported.
    """
    if _warm_up_started.is_set():
        return
    _warm_up_started.set()
    threading.Thread(target=_import_modules, args=(WARM_UP_MODULES,), name="loanlens-warm-up", daemon=True).start()
