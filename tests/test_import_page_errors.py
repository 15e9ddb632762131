"""Tests of the 数据导入 page's user-facing texts: upload errors and the load history table.

Expected texts are the catalog strings of messages/ingest.toml and messages/data.toml,
written out here so that a changed lookup fails.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import upload_errors
from ingest import api

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "data_import.py")
TEMP_NAME = "1270ee9f-d7bb-4c1e-9d7a-1f2e3d4c5b6a_空文件.csv"
RAW_COLUMNS = ("load_id", "table_name", "file_sha256", "rows_loaded", "removed_at")


def _preview_error(path: Path, sheet: str | None = None) -> Exception:
    with pytest.raises(ValueError) as caught:
        api.preview_file(path, "loans", None, sheet=sheet, n_rows=20)
    return caught.value


@pytest.fixture
def empty_upload(tmp_path: Path) -> Path:
    path = tmp_path / TEMP_NAME
    path.write_bytes(b"")
    return path


def test_empty_file_message_chinese(empty_upload):
    error = _preview_error(empty_upload)
    text = upload_errors.error_text(error, {"loans": empty_upload}, {"loans": "空文件.csv"}, "zh")
    assert text == "空文件.csv：文件没有表头行。第一行应为列名。"


def test_empty_file_message_english(empty_upload):
    error = _preview_error(empty_upload)
    text = upload_errors.error_text(error, {"loans": empty_upload}, {"loans": "空文件.csv"}, "en")
    assert text == "空文件.csv: the file has no header row. Put the column names in the first row."


def test_missing_sheet_message_names_sheet(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    path = tmp_path / "abc123_借据.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["loan_id"])
    workbook.save(path)
    error = _preview_error(path, sheet="放款")
    text = upload_errors.error_text(error, {"loans": path}, {"loans": "借据.xlsx"}, "zh")
    assert text.startswith("借据.xlsx：找不到工作表“放款”。")
    assert "abc123" not in text


def test_other_error_gets_user_file_name(tmp_path):
    path = tmp_path / "abc123_loans.csv"
    error = OSError(f"cannot read {path}")
    text = upload_errors.error_text(error, {"loans": path}, {"loans": "loans.csv"}, "zh")
    assert text == "cannot read loans.csv"


def test_preview_failed_catalog_has_no_file_placeholder():
    from messages import t

    assert t("data_import.preview_failed", "zh", error="X") == "无法预览上传的文件。X"


@pytest.mark.parametrize(
    ("lang", "labels"),
    [
        ("zh", ("批次号", "数据表", "文件指纹（SHA-256 前12位）", "导入行数", "删除时间")),
        ("en", ("Load", "Table", "File SHA-256 (first 12 digits)", "Rows loaded", "Removed")),
    ],
)
def test_history_table_labels_and_blanks(demo_db, tmp_path, monkeypatch, lang, labels):
    monkeypatch.setenv("LOANLENS_DB", str(demo_db))
    monkeypatch.setenv("LOANLENS_MAPPINGS", str(tmp_path / "none"))
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.session_state["lang"] = lang
    app.run()
    assert not app.exception
    history = app.dataframe[-1].value
    for raw in RAW_COLUMNS:
        assert raw not in history.columns
    for label in labels:
        assert label in history.columns
    # The demo loads have no encoding and were never removed: shown as an em dash.
    assert set(history[labels[-1]]) == {"—"}
    assert not history.astype(str).isin(["None", "nan", "NaT"]).any().any()
    with duckdb.connect(str(demo_db), read_only=True) as con:
        sha = con.execute("select file_sha256 from load_log order by load_id desc limit 1").fetchone()[0]
    assert history[labels[2]].iloc[0] == sha[:12]
