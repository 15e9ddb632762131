"""LoanLens dashboard entry script: ``streamlit run dashboard/app.py``.

Declares every page with ``st.navigation``, grouped as the sidebar shows them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# Streamlit puts only this script's folder on sys.path; the packages live one level up.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from dashboard import common  # noqa: E402

PAGES_DIR = Path(__file__).resolve().parent / "pages"


def _page(name: str, icon: str, default: bool = False) -> st.Page:
    return st.Page(
        PAGES_DIR / f"{name}.py",
        title=common.tr(f"page.{name}"),
        icon=icon,
        url_path=name,
        default=default,
    )


st.set_page_config(page_title="LoanLens", page_icon=":material/insights:", layout="wide")

navigation = st.navigation(
    {
        common.tr("nav.group_overview"): [_page("kpis", ":material/dashboard:", default=True)],
        common.tr("nav.group_risk"): [
            _page("vintage", ":material/stacked_line_chart:"),
            _page("survival", ":material/timeline:"),
            _page("regions", ":material/map:"),
        ],
        common.tr("nav.group_collections"): [
            _page("collections", ":material/call:"),
            _page("compliance", ":material/gavel:"),
        ],
        common.tr("nav.group_data"): [
            _page("data_import", ":material/upload_file:"),
            _page("data_download", ":material/download:"),
        ],
    }
)
navigation.run()
