"""Work a page rerun must not repeat: download encoding and cached collection analyses.

The download checks run common.download_buttons in a one-function AppTest script. The
collections check runs the real entry script on the demo portfolio (tests/conftest.py).
Expected counts follow from the caching rules: a file is encoded only when its download
button is clicked, and the arm comparison runs once per data version, filters and
choices.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from analysis import collections_compare, export

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "dashboard" / "app.py")


def _counting(monkeypatch, module, name: str) -> list:
    """Replace ``module.name`` by a wrapper that records each call; return the record."""
    calls = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _download_script():
    import pandas as pd

    from dashboard import common

    common.download_buttons(pd.DataFrame({"loan_id": ["900000000000001234"], "rate": [0.5]}), "table", key="t")


def test_download_buttons_encode_nothing_on_run(monkeypatch):
    csv_calls = _counting(monkeypatch, export, "to_csv_bytes")
    xlsx_calls = _counting(monkeypatch, export, "to_xlsx_bytes")
    at = AppTest.from_function(_download_script).run()
    assert not at.exception
    assert len(at.get("download_button")) == 2
    assert csv_calls == []
    assert xlsx_calls == []


def test_download_callables_return_the_table(monkeypatch):
    captured = {}

    def capture(self, label, data, **kwargs):
        captured[kwargs["file_name"]] = data
        return False

    monkeypatch.setattr(st.delta_generator.DeltaGenerator, "download_button", capture)
    at = AppTest.from_function(_download_script).run()
    assert not at.exception
    csv_bytes = captured["table.csv"]()
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(io.BytesIO(csv_bytes), encoding="utf-8-sig", dtype=str)
    assert back.loc[0, "loan_id"] == "900000000000001234"
    sheet = pd.read_excel(io.BytesIO(captured["table.xlsx"]()), dtype=str)
    assert sheet.loc[0, "loan_id"] == "900000000000001234"


def test_collections_rerun_reuses_comparison(demo_db, monkeypatch):
    monkeypatch.setenv("LOANLENS_DB", str(demo_db))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    st.cache_data.clear()
    calls = _counting(monkeypatch, collections_compare, "compare_arms")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("views/collections.py").run()
    assert not at.exception
    first_run_calls = len(calls)
    at.run()
    assert not at.exception
    if first_run_calls == 0:
        pytest.skip("the demo portfolio has fewer than two judged arms; no comparison ran")
    assert len(calls) == first_run_calls
