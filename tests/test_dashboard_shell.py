"""The app frame (dashboard/app.py): shared filters, language switch, database handling.

Runs the real entry script with Streamlit's AppTest on the hand-made tape
(tests/fixtures_kpis.py), with LOANLENS_DB pointing at a temporary file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from analysis.filters import Filters
from tests.fixtures_kpis import build_hand_tape

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "dashboard" / "app.py")


@pytest.fixture
def hand_db(tmp_path, monkeypatch) -> Path:
    path = build_hand_tape(tmp_path / "hand.duckdb")
    monkeypatch.setenv("LOANLENS_DB", str(path))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    return path


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


def test_filters_offer_values_from_data(hand_db):
    at = _app()
    assert not at.exception
    labels = [widget.label for widget in at.sidebar.multiselect]
    assert labels == ["产品", "渠道", "省份", "评级"]
    assert at.sidebar.multiselect[0].options == ["消费贷", "经营贷"]
    assert at.sidebar.multiselect[3].options == ["A", "B", "C"]
    # As-of month options are the snapshot months, latest first and selected by default.
    assert at.sidebar.selectbox[0].value == dt.date(2025, 4, 30)
    assert at.session_state["filters"] == Filters(as_of=dt.date(2025, 4, 30))


def test_filters_kept_across_page_switches(hand_db):
    at = _app()
    at.sidebar.multiselect[0].select("消费贷").run()
    at.sidebar.selectbox[0].select(dt.date(2025, 3, 31)).run()
    expected = Filters(as_of=dt.date(2025, 3, 31), products=("消费贷",))
    assert at.session_state["filters"] == expected

    for page in ("vintage", "regions", "data_import", "kpis"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, page
        assert at.session_state["filters"] == expected, page
        assert at.sidebar.multiselect[0].value == ["消费贷"], page
        assert at.sidebar.selectbox[0].value == dt.date(2025, 3, 31), page


def test_vintage_range_reaches_filters(hand_db):
    at = _app()
    at.sidebar.select_slider[0].set_range(dt.date(2025, 2, 1), dt.date(2025, 3, 1)).run()
    chosen = at.session_state["filters"]
    assert chosen.vintage_from == dt.date(2025, 2, 1)
    assert chosen.vintage_to == dt.date(2025, 3, 1)


def test_reset_button_clears_filters(hand_db):
    at = _app()
    at.sidebar.multiselect[1].select("线上").run()
    assert at.session_state["filters"].channels == ("线上",)
    at.sidebar.button[0].click().run()
    assert at.session_state["filters"].channels == ()
    assert at.sidebar.multiselect[1].value == []


def test_language_switch_changes_labels(hand_db):
    at = _app()
    assert at.sidebar.multiselect[0].label == "产品"
    at.session_state["lang"] = "en"
    at.run()
    assert [widget.label for widget in at.sidebar.multiselect] == [
        "Product", "Channel", "Province", "Grade"
    ]
    at.sidebar.multiselect[0].select("消费贷").run()
    at.switch_page("views/vintage.py").run()
    # The language and the filters both survive the page switch.
    assert at.sidebar.multiselect[0].label == "Product"
    assert at.session_state["filters"].products == ("消费贷",)


def test_empty_database_shows_no_data_note(tmp_path, monkeypatch):
    path = tmp_path / "empty.duckdb"
    monkeypatch.setenv("LOANLENS_DB", str(path))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    at = _app()
    assert not at.exception
    assert path.exists(), "the app creates a missing database file"
    captions = [caption.value for caption in at.sidebar.caption]
    assert any("暂无数据" in caption for caption in captions)


def test_file_released_after_each_run(hand_db):
    _app()
    # A read-write open in this process fails while any read-only connection is open
    # (DuckDB rejects a second configuration for one file), so this proves the release.
    con = duckdb.connect(str(hand_db))
    con.execute("select count(*) from loans").fetchone()
    con.close()


def test_empty_database_gets_demo(tmp_path, monkeypatch):
    pytest.importorskip("ingest.demo")
    path = tmp_path / "first_start.duckdb"
    monkeypatch.setenv("LOANLENS_DB", str(path))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "1")
    monkeypatch.setenv("LOANLENS_DEMO_LOANS", "500")
    at = _app()
    assert not at.exception
    assert any("示例数据" in info.value for info in at.info)
    assert len(at.metric) == 10
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select count(*) from loans").fetchone()[0] == 500
    assert con.execute("select value from app_meta where key = 'dataset'").fetchone()[0] == "demo"
    con.close()


def test_busy_setup_shows_data_updating(tmp_path, monkeypatch):
    """A session arriving while another prepares the database gets 数据更新中, not an error."""
    from dashboard import shell

    monkeypatch.setenv("LOANLENS_DB", str(tmp_path / "busy.duckdb"))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    assert shell._setup_lock.acquire(blocking=False)
    try:
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["update_retries"] = 60  # no automatic retry inside the test
        at.run()
    finally:
        shell._setup_lock.release()
    assert not at.exception
    assert [info.value for info in at.info] == ["数据更新中，请稍候几秒后刷新。"]
