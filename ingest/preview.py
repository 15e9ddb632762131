"""Previewing a file before import: encoding, delimiter, headers, first rows, proposed mapping."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from ingest import sqlfuncs
from ingest.columns import CONTRACT
from ingest.mapping import ColumnMapping
from ingest.readers import read_source
from ingest.stage import plan_file


@dataclass
class Preview:
    """The first rows of a file as text, and how its columns would be imported."""

    encoding: str | None
    delimiter: str | None
    headers: list[str]
    rows: pd.DataFrame
    proposed: dict[str, str]
    unmatched_required: list[str] = field(default_factory=list)
    file_format: str = "csv"
    sheet: str | None = None
    row_count: int = 0
    # Read as GB18030 but looks garbled: probably Big5 or another encoding (see ingest.readers).
    encoding_suspect: bool = False


def preview_file(path, table: str, mapping: ColumnMapping | None = None, sheet=None, n_rows: int = 20,
                 encoding: str | None = None) -> Preview:
    """Read ``path`` and propose a column mapping for ``table``.

    ``encoding`` forces the text encoding of a CSV file (else the mapping's, else detected).

    The whole file is read (in memory, nothing is stored) so that personal-data detection
    by value pattern checks every row, as the import does.
    """
    if table not in CONTRACT:
        raise ValueError(f"table must be one of {', '.join(CONTRACT)}; got {table!r}")
    path = Path(path)
    con = duckdb.connect()
    try:
        sqlfuncs.install(con)
        with tempfile.TemporaryDirectory(prefix="loanlens-preview-") as temp_dir:
            sheet = sheet or (mapping.sheet(table) if mapping else None)
            encoding = encoding or (mapping.encoding(table) if mapping else None)
            source = read_source(con, path, "raw_preview", sheet=sheet, temp_dir=Path(temp_dir),
                                 encoding=encoding)
            try:
                plan = plan_file(con, table, source, mapping)
                columns = ", ".join(f"c{i}" for i in range(len(source.headers)))
                frame = con.execute(
                    f"select {columns} from raw_preview order by _line limit {int(n_rows)}"
                ).df()
            finally:
                source.cleanup()
    finally:
        con.close()
    frame.columns = source.headers
    # Personal-data columns are not shown in clear.
    proposed = {column.header: column.target for column in plan.columns}
    hashed = {column.name for column in CONTRACT[table] if column.kind == "hash"}
    for column in plan.columns:
        if column.target.startswith("pii:") or column.target in hashed:
            frame.iloc[:, column.index] = "***"
    unmatched = [name for rule, name, _ in plan.file_errors if rule == "missing_column"]
    return Preview(source.encoding, source.delimiter, source.headers, frame, proposed, unmatched,
                   source.file_format, source.sheet, source.rows, source.encoding_suspect)
