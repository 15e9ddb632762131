"""LoanLens dashboard entry script: ``streamlit run dashboard/app.py``.

Declares every page with ``st.navigation``, grouped as the sidebar shows them, and draws
the frame shared by all pages: language switch, shared filters and the demo-data banner.
Each run is wrapped in ``common.script_run()`` so the database file is closed again as soon
as no run is reading it (see ``dashboard/common.py`` for why).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import streamlit as st

# Streamlit puts only this script's folder on sys.path; the packages live one level up.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from dashboard import common, shell  # noqa: E402

logger = logging.getLogger("dashboard.app")

PAGES_DIR = Path(__file__).resolve().parent / "views"
# While another process loads data, retry the page this many times, 2 s apart.
MAX_UPDATE_RETRIES = 60


def _configure_logging() -> None:
    """Send the project's INFO records to stderr, unless the host process already logs.

    Streamlit configures only its own ``streamlit`` logger. When the script runs inside
    another program that set up logging (pytest's AppTest, a notebook), that set-up is kept.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    for name in ("dashboard", "analysis", "queries", "ingest"):
        logging.getLogger(name).setLevel(logging.INFO)


def _page(name: str, default: bool = False) -> st.Page:
    # No page icons: Streamlit fetches :material/...: icons from fonts.gstatic.com, which an
    # offline installation cannot reach.
    return st.Page(
        PAGES_DIR / f"{name}.py",
        title=common.tr(f"page.{name}"),
        # The default page is served at "/" whatever its url_path.
        url_path=common.PAGE_URL_PATHS[name] or "overview",
        default=default,
    )


def _show_data_updating() -> None:
    """Tell the user a load is running, then try the page again shortly."""
    st.info(common.tr("app.data_updating"))
    retries = st.session_state.get("update_retries", 0)
    if retries < MAX_UPDATE_RETRIES:
        st.session_state["update_retries"] = retries + 1
        time.sleep(2)
        st.rerun()


navigation = st.navigation(
    {
        common.tr("nav.group_overview"): [_page("kpis", default=True)],
        common.tr("nav.group_risk"): [
            _page("vintage"),
            _page("survival"),
            _page("regions"),
        ],
        common.tr("nav.group_collections"): [
            _page("collections"),
            _page("compliance"),
        ],
        common.tr("nav.group_data"): [
            _page("data_import"),
            _page("data_download"),
        ],
    }
)
# The browser tab shows the page title, then the product name.
_configure_logging()

st.set_page_config(
    page_title=f"{navigation.title} · LoanLens", layout="wide"
)

with common.script_run():
    shell.render_language_switch()
    try:
        shell.ensure_database()
        shell.render_filters()
        shell.render_banners()
    except common.DataUpdating as error:
        logger.info("database busy, showing the data-updating notice: %s", error)
        _show_data_updating()
    else:
        st.session_state["update_retries"] = 0
        try:
            navigation.run()
        except common.DataUpdating as error:
            logger.info("database busy during the page, showing the data-updating notice: %s", error)
            _show_data_updating()

# After the first run has drawn its page, import the other pages' modules in the background.
shell.start_warm_up()
