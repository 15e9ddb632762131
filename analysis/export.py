"""Table export shared by the dashboard downloads and the report command.

CSV is UTF-8 with a byte-order mark so that Excel shows Chinese text. In .xlsx, text
columns stay text (18-digit ids and leading zeros survive) and dates stay dates.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

FORMATS = ("csv", "xlsx", "json", "parquet")
EXCEL_MAX_ROWS = 1_048_576  # including the header row


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Return the frame as UTF-8 CSV with a BOM."""
    return frame.to_csv(index=False).encode("utf-8-sig")


def to_xlsx_bytes(frame: pd.DataFrame, sheet_name: str = "data") -> bytes:
    """Return the frame as an .xlsx workbook with one sheet.

    Raises
    ------
    ValueError
        If the frame has more rows than an Excel sheet holds.
    """
    if len(frame) + 1 > EXCEL_MAX_ROWS:
        raise ValueError(
            f"{len(frame):,} rows do not fit in one Excel sheet (at most "
            f"{EXCEL_MAX_ROWS - 1:,} data rows); export as CSV or Parquet instead"
        )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name=sheet_name[:31])
    return buffer.getvalue()


def to_json_bytes(frame: pd.DataFrame) -> bytes:
    """Return the frame as a JSON array of records, dates in ISO form."""
    text = frame.to_json(orient="records", date_format="iso", force_ascii=False)
    return json.dumps(json.loads(text), ensure_ascii=False, indent=1).encode("utf-8")


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Return the frame as Parquet."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def format_from_path(path: str | Path) -> str:
    """Return the export format named by the file suffix.

    Raises
    ------
    ValueError
        If the suffix is not .csv, .xlsx, .json or .parquet.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ValueError(
            f"cannot tell the output format of {str(path)!r}; "
            f"end the file name with one of: {', '.join('.' + f for f in FORMATS)}"
        )
    return suffix


def table_bytes(frame: pd.DataFrame, file_format: str) -> bytes:
    """Return the frame encoded in ``file_format`` (csv, xlsx, json or parquet)."""
    writers = {
        "csv": to_csv_bytes,
        "xlsx": to_xlsx_bytes,
        "json": to_json_bytes,
        "parquet": to_parquet_bytes,
    }
    return writers[file_format](frame)


def write_table(frame: pd.DataFrame, path: str | Path) -> None:
    """Write the frame to ``path`` in the format its suffix names."""
    Path(path).write_bytes(table_bytes(frame, format_from_path(path)))
