"""Reading source files into DuckDB as all-text tables with source line numbers.

Every file becomes a temporary DuckDB relation with columns ``c0 .. c{n-1}`` (VARCHAR, one
per source column, in source order, already cleaned by ``ll_clean``: trimmed, null tokens
as NULL), ``c_extra`` (text past the last header column, set
only on malformed CSV rows) and ``_line`` (1-based source line, header = 1). Types are
decided later from the whole column, so nothing is guessed from a sample here. A Parquet
file is a view that also has its typed columns ``t0 .. t{n-1}`` (see ``_read_parquet``).

Encodings are detected locally: a BOM (UTF-8 or UTF-16), else a full strict UTF-8 decode,
else GB18030 (a superset of GBK). Files that are not UTF-8 are transcoded to a temporary
UTF-8 copy because DuckDB's CSV reader reads UTF-8 only without its encodings extension.
GB18030 decodes almost any bytes, so a file read as GB18030 whose header or first rows are
mostly characters outside common Chinese text is flagged (``Source.encoding_suspect``): it
is probably Big5 or another encoding. A caller can force the encoding instead.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import logging
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

logger = logging.getLogger(__name__)

CHUNK_BYTES = 16 * 1024 * 1024
SNIFF_BYTES = 256 * 1024
DELIMITERS = ",\t;|"
# A newline followed by an empty line; the lookahead lets consecutive blank lines all match.
_BLANK_LINE = re.compile(rb"\n(?=\r?\n)")


class SourceError(ValueError):
    """A file that cannot be read at all (unknown encoding, empty, unsupported format)."""

    def __init__(self, rule: str, message_en: str, detail: str = ""):
        super().__init__(message_en)
        self.rule = rule
        self.detail = detail


@dataclass
class Source:
    """Result of reading one file: the DuckDB relation, headers and detected format."""

    path: Path
    file_format: str  # csv / xlsx / parquet
    relation: str  # DuckDB temp relation with c0.., c_extra, _line
    headers: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    rows: int = 0
    sha256: str | None = None  # set when the reader hashed the bytes on the way
    # DuckDB types of the typed columns t0.. (Parquet only); None for text sources.
    column_types: list[str] | None = None
    # Decoded as GB18030 but the text looks garbled (probably Big5 or another encoding).
    encoding_suspect: bool = False
    sample: str = ""  # decoded text of the first data lines (CSV only)
    temp_files: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        """Delete temporary transcoded copies."""
        for path in self.temp_files:
            path.unlink(missing_ok=True)


def file_format(path: Path) -> str:
    """Return 'xlsx', 'parquet' or 'csv' from the file name."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".xls":
        raise SourceError(
            "unsupported_format",
            f"{path.name}: .xls (Excel 97-2003) files are not supported; save the sheet as .xlsx or CSV",
        )
    return "csv"


# ---------------------------------------------------------------- encodings and scanning


@dataclass
class _Scan:
    encoding: str
    utf8_path: Path  # the file itself, or a transcoded UTF-8 copy
    has_quote: bool
    blank_lines: list[int]  # physical line numbers of empty lines
    sample: str  # first SNIFF_BYTES of decoded text
    sha256: str  # of the original file bytes
    worker: threading.Thread | None = None  # fills sha256 and blank_lines when set


def detect_encoding(path: Path) -> str:
    """Return the encoding of a text file: 'utf-8', 'utf-8-sig', 'utf-16' or 'gb18030'.

    Raises
    ------
    SourceError
        If the bytes are neither valid UTF-8 nor valid GB18030.
    """
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise SourceError(
        "encoding_unknown",
        f"{path.name}: the file is neither UTF-8 nor GBK/GB18030 text; save it as UTF-8 CSV",
    )


def _scan(path: Path, encoding: str, temp_dir: Path) -> _Scan:
    """Transcode to UTF-8 when needed and find quotes and blank lines in one pass."""
    transcode = encoding not in ("utf-8", "utf-8-sig")
    out_path = path
    out = None
    if transcode:
        handle, name = tempfile.mkstemp(suffix=".csv", dir=temp_dir)
        out_path = Path(name)
        out = open(handle, "wb")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    digest = hashlib.sha256()
    has_quote = False
    blank_lines: list[int] = []
    newlines_before = 0
    tail = b""
    sample_parts: list[str] = []
    sample_size = 0
    try:
        with path.open("rb") as handle:
            while True:
                chunk = handle.read(CHUNK_BYTES)
                digest.update(chunk)
                final = not chunk
                text = decoder.decode(chunk, final=final)
                if sample_size < SNIFF_BYTES and text:
                    sample_parts.append(text[: SNIFF_BYTES - sample_size])
                    sample_size += len(sample_parts[-1])
                if transcode and newlines_before == 0 and not tail:
                    text = text.lstrip("\ufeff")
                data = text.encode("utf-8") if transcode else chunk
                if out is not None and data:
                    out.write(data)
                if data:
                    has_quote = has_quote or b'"' in data
                    buffer = tail + data
                    for match in _BLANK_LINE.finditer(buffer):
                        end = match.start() + (3 if buffer[match.start() + 1:match.start() + 2] == b"\r" else 2)
                        if end > len(tail):
                            line = newlines_before - tail.count(b"\n") + buffer.count(b"\n", 0, match.start()) + 2
                            blank_lines.append(line)
                    newlines_before += data.count(b"\n")
                    tail = buffer[-2:]
                if final:
                    break
    except UnicodeDecodeError as error:
        raise SourceError(
            "encoding_unknown", f"{path.name}: invalid {encoding} bytes ({error}); save it as UTF-8 CSV"
        ) from error
    finally:
        if out is not None:
            out.close()
    sample = "".join(sample_parts).lstrip("\ufeff")
    return _Scan(encoding, out_path, has_quote, sorted(set(blank_lines)), sample, digest.hexdigest())


def _scan_detecting(path: Path, temp_dir: Path) -> _Scan:
    """Scan with the BOM's encoding, else as UTF-8, else as GB18030 (one pass for UTF-8 files)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return _scan(path, "utf-8-sig", temp_dir)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _scan(path, "utf-16", temp_dir)
    try:
        return _scan(path, "utf-8", temp_dir)
    except SourceError:
        pass
    try:
        return _scan(path, "gb18030", temp_dir)
    except SourceError as error:
        raise SourceError(
            "encoding_unknown",
            f"{path.name}: the file is neither UTF-8 nor GBK/GB18030 text; save it as UTF-8 CSV",
        ) from error


# Share of non-ASCII characters outside common Chinese text that marks a garbled decode.
SUSPECT_SHARE = 0.3
_SUSPECT_MIN_CHARS = 4


def _uncommon(char: str) -> bool:
    """True for a character rare in Chinese loan tapes: outside GB2312, kana, private use."""
    code = ord(char)
    if 0x3040 <= code <= 0x30FF or 0xE000 <= code <= 0xF8FF or code > 0xFFFF or 0x3400 <= code <= 0x4DBF:
        return True
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return True
    return False


def looks_garbled(text: str) -> bool:
    """Return True when most non-ASCII characters of ``text`` are uncommon (see ``_uncommon``)."""
    wide = [char for char in text if ord(char) > 127 and not char.isspace()]
    if len(wide) < _SUSPECT_MIN_CHARS:
        return False
    return sum(map(_uncommon, wide)) / len(wide) >= SUSPECT_SHARE


def _sniff_delimiter(sample: str) -> str:
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith("\n"):
        lines = lines[:-1]  # the last line may be cut off
    text = "\n".join(lines[:200])
    try:
        return csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = lines[0] if lines else ""
        counts = {delimiter: first.count(delimiter) for delimiter in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _read_header(sample: str, delimiter: str) -> tuple[list[str], int]:
    """Return the header cells and the number of physical lines the header spans."""
    reader = csv.reader(io.StringIO(sample), delimiter=delimiter, quotechar='"')
    try:
        header = next(reader)
    except StopIteration:
        return [], 1
    return [cell.strip().lstrip("\ufeff") for cell in header], reader.line_num


# ---------------------------------------------------------------- readers


def read_source(
    con: duckdb.DuckDBPyConnection, path: Path, relation: str, *, sheet: str | None = None,
    temp_dir: Path, encoding: str | None = None,
) -> Source:
    """Read ``path`` into the temporary relation ``relation`` (see the module docstring).

    ``encoding`` (a Python codec name) forces the text encoding of a CSV file; it is
    ignored for .xlsx and Parquet files.
    """
    kind = file_format(path)
    if not path.is_file():
        raise SourceError("file_not_found", f"{path}: file not found")
    if kind == "xlsx":
        return _read_xlsx(con, path, relation, sheet)
    if kind == "parquet":
        return _read_parquet(con, path, relation)
    if encoding:
        return _load_csv(con, path, relation, _scan_forced(path, encoding, temp_dir))
    source = _read_csv(con, path, relation, temp_dir)
    if source.encoding == "gb18030":
        source.encoding_suspect = looks_garbled("".join(source.headers)) or looks_garbled(source.sample)
        if source.encoding_suspect:
            logger.warning("%s: decoded as GB18030 but the text looks garbled; it may be Big5 or "
                           "another encoding", path.name)
    return source


def _scan_forced(path: Path, encoding: str, temp_dir: Path) -> _Scan:
    name = codecs.lookup(encoding).name
    if name == "utf-8":
        with path.open("rb") as handle:
            if handle.read(3) == codecs.BOM_UTF8:
                name = "utf-8-sig"
    try:
        return _scan(path, name, temp_dir)
    except SourceError as error:
        raise SourceError(
            "encoding_mismatch", f"{path.name}: the file is not valid {name} text", detail=name,
        ) from error


def _read_csv(con, path: Path, relation: str, temp_dir: Path) -> Source:
    scan = _fast_utf8_scan(path)
    if scan is not None:
        try:
            return _load_csv(con, path, relation, scan)
        except duckdb.InvalidInputException as error:
            if "unicode" not in str(error).lower():
                raise
            logger.info("%s is not valid UTF-8 after the first %s bytes; reading it as GB18030",
                        path.name, SNIFF_BYTES)
    return _load_csv(con, path, relation, _scan_detecting(path, temp_dir))


def _fast_utf8_scan(path: Path) -> _Scan | None:
    """Scan a file whose start is UTF-8 without decoding it in Python, or return None.

    DuckDB's CSV reader rejects invalid UTF-8 itself, so only the sample is decoded here.
    The SHA-256 digest and the blank lines are computed in a thread while DuckDB reads.
    """
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    cut = head if len(head) < SNIFF_BYTES else head[: head.rfind(b"\n") + 1] or head
    try:
        sample = cut.decode("utf-8")
    except UnicodeDecodeError:
        return None
    has_quote = False
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if b'"' in chunk:
                has_quote = True
                break
    scan = _Scan("utf-8", path, has_quote, [], sample, "")
    scan.worker = threading.Thread(target=_hash_and_blank_lines, args=(path, scan), daemon=True)
    scan.worker.start()
    return scan


def _hash_and_blank_lines(path: Path, scan: _Scan) -> None:
    """Fill ``scan.sha256`` and ``scan.blank_lines`` (physical line numbers of empty lines)."""
    digest = hashlib.sha256()
    newlines_before = 0  # newlines in the file before the current chunk
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            buffer = tail + chunk
            # bytes.find runs at memchr speed and stops only at blank lines. Searching from
            # position + 1 finds consecutive blank lines too.
            positions = set()
            for pattern in (b"\n\n", b"\n\r\n"):
                position = buffer.find(pattern)
                while position != -1:
                    if position + len(pattern) > len(tail):  # not already found in the last chunk
                        positions.add(position)
                    position = buffer.find(pattern, position + 1)
            buffer_start_newlines = newlines_before - tail.count(b"\n")
            counted_to, counted = 0, 0
            for position in sorted(positions):
                counted += buffer.count(b"\n", counted_to, position)
                counted_to = position
                scan.blank_lines.append(buffer_start_newlines + counted + 2)
            newlines_before += chunk.count(b"\n")
            tail = buffer[-2:]
    scan.blank_lines.sort()
    scan.sha256 = digest.hexdigest()


def _load_csv(con, path: Path, relation: str, scan: _Scan) -> Source:
    encoding = scan.encoding
    delimiter = _sniff_delimiter(scan.sample)
    headers, header_lines = _read_header(scan.sample, delimiter)
    if not headers or all(not cell for cell in headers):
        raise SourceError("empty_file", f"{path.name}: the file has no header row")
    names = [f"c{i}" for i in range(len(headers))] + ["c_extra"]
    columns = "{" + ", ".join(f"'{name}': 'VARCHAR'" for name in names) + "}"
    base = f"{relation}_base"
    data_names = names[:-1]
    cleaned = ", ".join(f"ll_clean({name}) as {name}" for name in data_names)
    newline_count = ""
    if scan.has_quote:
        newline_count = ", " + " + ".join(
            f"coalesce(length({name}) - length(replace({name}, chr(10), '')), 0)" for name in data_names
        ) + " as _nl"
    # The quote and escape characters are fixed to the double quote (RFC 4180). The parallel
    # reader cannot pad short rows when quoted cells contain newlines, so quoted files are
    # read single-threaded. Cells are cleaned once here (trimmed, null tokens to NULL).
    # Line numbers come from rowid, so the table must keep the file's row order even when the
    # import runs with preserve_insertion_order = false.
    order_setting = con.execute("select current_setting('preserve_insertion_order')").fetchone()[0]
    con.execute("set preserve_insertion_order = true")
    con.execute(
        f"create or replace temp table {base} as select {cleaned}, c_extra{newline_count} from read_csv($path, "
        f"delim = $delim, quote = '\"', escape = '\"', header = true, auto_detect = false, columns = {columns}, "
        f"null_padding = true, strict_mode = false, parallel = {str(not scan.has_quote).lower()})",
        {"path": str(scan.utf8_path), "delim": delimiter},
    )
    con.execute(f"set preserve_insertion_order = {str(bool(order_setting)).lower()}")
    if scan.worker is not None:
        scan.worker.join()
    _attach_line_numbers(con, base, relation, scan, header_lines)
    rows = con.execute(f"select count(*) from {base}").fetchone()[0]
    source = Source(path, "csv", relation, headers, encoding, delimiter, rows=rows, sha256=scan.sha256,
                    sample="\n".join(scan.sample.splitlines()[1:200]))
    if scan.utf8_path != path:
        source.temp_files.append(scan.utf8_path)
    logger.info("read %s: %s rows, encoding %s, delimiter %r", path.name, rows, encoding, delimiter)
    return source


def _attach_line_numbers(con, base: str, relation: str, scan: _Scan, header_lines: int):
    """Create the view ``relation`` = ``base`` plus ``_line``.

    A row's line is 1 + header lines + its row index + newlines inside earlier rows' quoted
    cells (``_nl``) + blank lines before it (DuckDB skips blank lines).
    """
    first = header_lines + 1
    multiline = scan.has_quote and con.execute(f"select count(*) from {base} where _nl > 0").fetchone()[0] > 0
    line0 = f"rowid + {first}"
    if multiline:
        con.execute(f"create or replace temp table {base}_nl as select rowid as rid, _nl from {base} where _nl > 0")
        line0 = (f"rowid + {first} + coalesce((select sum(n._nl) from {base}_nl n "
                 f"where n.rid < {base}.rowid), 0)")
    # Blank line i (0-based) at physical line b shifts every row whose line without blank
    # lines is >= b - i by one more.
    thresholds = [line - index for index, line in enumerate(scan.blank_lines) if line > header_lines]
    con.execute(f"create or replace temp table {base}_blank (t bigint)")
    if thresholds:
        con.executemany(f"insert into {base}_blank values (?)", [[value] for value in thresholds])
    line = f"l0 + (select count(*) from {base}_blank where t <= l0)" if thresholds else "l0"
    drop = ", _nl" if scan.has_quote else ""
    con.execute(
        f"create or replace temp view {relation} as "
        f"select {line} as _line, * exclude (l0{drop}) from (select {line0} as l0, * from {base})"
    )


def _cell_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    text = str(value)
    return text


def _read_xlsx(con, path: Path, relation: str, sheet: str | None) -> Source:
    import openpyxl
    import pandas as pd

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise SourceError(
                "sheet_not_found",
                f"{path.name}: no sheet named {sheet!r}; sheets are {', '.join(workbook.sheetnames)}",
            )
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        rows_iter = worksheet.iter_rows(values_only=True)
        header_row = next(rows_iter, None)
        if header_row is None:
            raise SourceError("empty_file", f"{path.name}: the sheet {worksheet.title!r} is empty")
        headers = [_cell_text(cell) or "" for cell in header_row]
        while headers and not headers[-1]:
            headers.pop()
        width = len(headers)
        lines: list[int] = []
        columns: list[list[str | None]] = [[] for _ in range(width + 1)]
        for line, row in enumerate(rows_iter, start=2):
            cells = [_cell_text(cell) for cell in row]
            if all(cell is None or cell == "" for cell in cells):
                continue
            lines.append(line)
            for index in range(width):
                columns[index].append(cells[index] if index < len(cells) else None)
            extra = [cell for cell in cells[width:] if cell not in (None, "")]
            columns[width].append("\t".join(extra) if extra else None)
        sheet_name = worksheet.title
    finally:
        workbook.close()
    frame = pd.DataFrame({"_line": pd.Series(lines, dtype="int64")})
    for index in range(width):
        frame[f"c{index}"] = pd.Series(columns[index], dtype="object")
    frame["c_extra"] = pd.Series(columns[width], dtype="object")
    # DuckDB 2 refuses register() while an earlier execute() result is unread.
    con.complete()
    con.register(f"{relation}_frame", frame)
    cast = ", ".join([f"ll_clean(c{i}::varchar) as c{i}" for i in range(width)] + ["c_extra::varchar as c_extra"])
    con.execute(f"create or replace temp table {relation} as select _line, {cast} from {relation}_frame")
    con.unregister(f"{relation}_frame")
    logger.info("read %s sheet %s: %s rows", path.name, sheet_name, len(lines))
    return Source(path, "xlsx", relation, headers, None, None, sheet_name, rows=len(lines))


def _read_parquet(con, path: Path, relation: str) -> Source:
    """Expose a Parquet file as the view ``relation``; nothing is copied into memory.

    Besides the text columns ``c<i>`` the view has the typed columns ``t<i>`` as stored in
    the file, so staging can use a date, integer or decimal column directly instead of
    printing it and parsing the text back (see ``Source.column_types``). Parquet is
    columnar, so each later scan reads only the columns it needs.
    """
    described = con.execute("describe select * from read_parquet($path)", {"path": str(path)}).fetchall()
    headers = [row[0] for row in described]
    types = [row[1] for row in described]
    # Typed columns (dates, numbers) print without padding or null tokens, so only text
    # columns and floating-point ones (which may print 'nan') need cleaning.
    parts = []
    for index, (name, data_type) in enumerate(zip(headers, types)):
        quoted = '"' + name.replace('"', '""') + '"'
        needs_clean = data_type in ("VARCHAR", "DOUBLE", "FLOAT")
        parts.append(f"ll_clean(cast({quoted} as varchar)) as c{index}" if needs_clean
                     else f"cast({quoted} as varchar) as c{index}")
        parts.append(f"{quoted} as t{index}")
    # A relation view keeps the path a bound value: SQL views cannot hold parameters.
    parquet = con.read_parquet(str(path), file_row_number=True)
    parquet.project(f"file_row_number + 2 as _line, {', '.join(parts)}, null::varchar as c_extra").create_view(
        relation, replace=True)
    rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
    logger.info("read %s: %s rows (parquet)", path.name, rows)
    return Source(path, "parquet", relation, headers, None, None, rows=rows, column_types=types)
