"""Streamlit AppTest of the 数据导入 page: rendering, mapping profiles, past loads, removal.

Uploads need a browser (AppTest cannot fill a file uploader); see
tests/test_import_page_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from examples import _tape, uci_taiwan
from ingest import api
from queries import db

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "data_import.py")
UCI_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "uci_taiwan_200.csv"


def _page(db_file: Path, lang: str, monkeypatch, mappings: Path | None = None) -> AppTest:
    monkeypatch.setenv("LOANLENS_DB", str(db_file))
    if mappings is not None:
        monkeypatch.setenv("LOANLENS_MAPPINGS", str(mappings))
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.session_state["lang"] = lang
    return app.run()


@pytest.fixture
def uci_db(tmp_path: Path) -> Path:
    """A database holding the 200-account UCI sample, loaded through the import API."""
    paths = _tape.write_tables(uci_taiwan.convert(UCI_SAMPLE), tmp_path / "tape")
    path = tmp_path / "uci.duckdb"
    report = api.load_files(path, paths, mode="strict")
    assert report.ok, report.summary("en")
    return path


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_empty_database(db_path, lang, monkeypatch, tmp_path):
    app = _page(db_path, lang, monkeypatch, mappings=tmp_path / "none")
    assert not app.exception
    expected = "还没有导入记录" if lang == "zh" else "No loads yet"
    assert any(expected in info.value for info in app.info)
    assert any("500 MB" in caption.value for caption in app.caption)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_renders_demo_data(demo_db, lang, monkeypatch, tmp_path):
    app = _page(demo_db, lang, monkeypatch, mappings=tmp_path / "none")
    assert not app.exception
    assert len(app.dataframe) >= 1  # the load log


def test_load_button_needs_files(db_path, monkeypatch, tmp_path):
    app = _page(db_path, "en", monkeypatch, mappings=tmp_path / "none")
    assert app.button(key="imp_load").disabled is True


def test_saved_profiles_listed(db_path, monkeypatch, tmp_path):
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "monthly_tape.toml").write_text('[loans.columns]\n"借款编号" = "loan_id"\n', encoding="utf-8")
    (folder / "broken.toml").write_text('[loans.columns]\n"借款编号" = "no_such_column"\n', encoding="utf-8")
    app = _page(db_path, "en", monkeypatch, mappings=folder)
    assert app.selectbox(key="imp_profile_en").options == [
        "(none, match headers automatically)", "broken", "monthly_tape"
    ]
    app.selectbox(key="imp_profile_en").set_value("monthly_tape").run()
    assert not app.error
    app.selectbox(key="imp_profile_en").set_value("broken").run()
    assert any("cannot be read" in error.value for error in app.error)


def test_remove_load_needs_confirmation(uci_db, monkeypatch, tmp_path):
    app = _page(uci_db, "en", monkeypatch, mappings=tmp_path / "none")
    assert not app.exception
    con = db.connect(uci_db, read_only=True)
    try:
        months_load = con.execute(
            "select load_id from load_log where table_name = 'loan_months'"
        ).fetchone()[0]
    finally:
        con.close()
    app.selectbox(key="imp_remove_id").set_value(months_load).run()
    assert app.button(key="imp_remove").disabled is True

    app.checkbox(key=f"imp_remove_ok_{months_load}").check().run()
    app.button(key="imp_remove").click().run()
    assert not app.exception
    assert any("Removed 1,200 rows" in success.value or "Removed 1200 rows" in success.value for success in app.success)

    con = db.connect(uci_db, read_only=True)
    try:
        assert con.execute("select count(*) from loan_months").fetchone()[0] == 0
        assert con.execute("select count(*) from loans").fetchone()[0] == 200
        result = con.execute("select result from load_log where load_id = ?", [months_load]).fetchone()[0]
    finally:
        con.close()
    assert result == "removed"
