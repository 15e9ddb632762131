"""Table export shared by the dashboard downloads and the report command.

CSV is UTF-8 with a byte-order mark so that Excel shows Chinese text. In .xlsx, text
columns stay text (18-digit ids and leading zeros survive) and dates stay dates.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import io
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

logger = logging.getLogger(__name__)

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


def write_table(frame: pd.DataFrame | WrittenExport, path: str | Path) -> None:
    """Write the frame to ``path`` in the format its suffix names.

    A :class:`WrittenExport` is already on disk: it is left as it is when it was written
    to ``path``, and copied there otherwise.
    """
    if isinstance(frame, WrittenExport):
        if Path(path).resolve() != frame.path.resolve():
            shutil.copyfile(frame.path, path)
        return
    Path(path).write_bytes(table_bytes(frame, format_from_path(path)))


# --- streamed exports: rows go from DuckDB to the file without a pandas frame -------------

# Rows per Arrow record batch when a format is written batch by batch (xlsx, json).
BATCH_ROWS = 65_536
CSV_BOM = "\ufeff".encode("utf-8")
_HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class WrittenExport:
    """A query result already written to ``path`` by :func:`export_query`.

    Report commands that stream their output return this instead of a DataFrame;
    :func:`write_table` then leaves the file as it is.
    """

    path: Path
    file_format: str
    columns: tuple[str, ...]
    row_count: int
    sha256: str              # hex digest of the file's bytes

    def __len__(self) -> int:
        return self.row_count


def export_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict,
    path: str | Path,
    file_format: str | None = None,
) -> WrittenExport:
    """Run ``sql`` and write its rows to ``path`` in ``file_format`` without a DataFrame.

    Parquet and CSV are written by DuckDB's ``copy``; xlsx and json from Arrow record
    batches. The file appears at ``path`` only when it is complete (written to a
    temporary name beside it, then renamed).

    Raises
    ------
    ValueError
        If the format is unknown, or an xlsx file would exceed one sheet's rows.
    """
    path = Path(path)
    file_format = file_format or format_from_path(path)
    if file_format not in FORMATS:
        raise ValueError(f"unknown export format {file_format!r}; use one of {', '.join(FORMATS)}")
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    # A cursor of its own, because duckdb 2.x rejects a new query while an earlier result
    # on the caller's connection is not fully fetched.
    con = con.cursor()
    try:
        if file_format == "parquet":
            row_count = _copy_to(con, sql, params, partial, "(format parquet)")
            columns = _query_columns(con, sql, params)
        elif file_format == "csv":
            row_count, columns = _write_csv(con, sql, params, partial)
        else:
            reader = con.sql(sql, params=params).to_arrow_reader(BATCH_ROWS)
            columns = tuple(reader.schema.names)
            writer = _write_xlsx if file_format == "xlsx" else _write_json
            row_count = writer(reader, partial)
        sha256 = _file_sha256(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        con.close()
    logger.info("exported %d rows as %s to %s", row_count, file_format, path)
    return WrittenExport(path, file_format, tuple(columns), row_count, sha256)


def _copy_to(con, sql: str, params: dict, target: Path, options: str) -> int:
    """Write the rows of ``sql`` with DuckDB's ``copy``; return the row count."""
    # The target path travels as a bound parameter like every value.
    row = con.execute(f"copy ({sql}) to $export_path {options}", {**params, "export_path": str(target)}).fetchone()
    return int(row[0])


def _query_columns(con, sql: str, params: dict) -> tuple[str, ...]:
    """Return the output column names of ``sql`` without running it over the data."""
    relation = con.sql(f"select * from ({sql}) limit 0", params=params)
    return tuple(relation.columns)


def _write_csv(con, sql: str, params: dict, target: Path) -> tuple[int, tuple[str, ...]]:
    """Write UTF-8 CSV with a BOM: DuckDB writes the rows, then the BOM is put in front."""
    body = target.with_name(target.name + ".body")
    try:
        row_count = _copy_to(con, sql, params, body, "(format csv, header true)")
        with target.open("wb") as sink, body.open("rb") as source:
            sink.write(CSV_BOM)
            shutil.copyfileobj(source, sink, _HASH_CHUNK_BYTES)
    finally:
        body.unlink(missing_ok=True)
    return row_count, _query_columns(con, sql, params)


def _write_xlsx(reader: pa.RecordBatchReader, target: Path) -> int:
    """Write the batches to a one-sheet workbook in openpyxl's write-only mode.

    Text stays text (18-digit ids and leading zeros survive); dates are Excel dates.
    """
    import openpyxl  # imported here: it adds about 0.3 s to a dashboard server's first page

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("data")
    sheet.append(reader.schema.names)
    row_count = 0
    try:
        for batch in reader:
            row_count += batch.num_rows
            if row_count + 1 > EXCEL_MAX_ROWS:
                raise ValueError(
                    f"more than {EXCEL_MAX_ROWS - 1:,} rows do not fit in one Excel sheet; "
                    "export as CSV or Parquet instead"
                )
            for row in zip(*(column.to_pylist() for column in batch.columns)):
                sheet.append(row)
    finally:
        # Saving also finishes the sheet's row writer; the caller deletes the file on error.
        workbook.save(target)
    return row_count


def _write_json(reader: pa.RecordBatchReader, target: Path) -> int:
    """Write the batches as a JSON array of records, dates in ISO form."""
    row_count = 0
    with target.open("w", encoding="utf-8") as sink:
        sink.write("[")
        for batch in reader:
            for record in batch.to_pylist():
                sink.write(",\n" if row_count else "\n")
                sink.write(json.dumps(record, ensure_ascii=False, default=_json_value))
                row_count += 1
        sink.write("\n]\n" if row_count else "]\n")
    return row_count


def _json_value(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} as JSON")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
