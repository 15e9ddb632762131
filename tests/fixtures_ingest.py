"""Helpers for the import tests: small loan tapes written in several encodings and forms."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import duckdb
import pytest

# A valid 18-digit resident ID number (check digit X) and a second one (check digit 6).
ID_NUMBER = "11010519491231002X"
ID_NUMBER_2 = "440305199003071236"

LOANS_HEADER = ["借据号", "放款日期", "放款金额(元)", "期数", "年利率", "产品", "省份"]
LOANS_ROWS = [
    ["000123456789012345", "2017-02-03", "12,000.50", "12", "18%", "消费贷", "广东"],
    ["L0002", "2017/3/5", "5000", "6", "18", "经营贷", "浙江省"],
    ["L0003", "2017-03-20", "8000.25", "12", "24", "消费贷", "北京"],
]
MONTHS_HEADER = ["借据号", "统计日期", "逾期天数", "贷款余额", "贷款状态"]
MONTHS_ROWS = [
    ["000123456789012345", "2017-03-31", "0", "11000.50", "正常"],
    ["L0002", "2017-03-31", "0", "5000", "正常"],
    ["L0003", "2017-03-31", "0", "8000.25", "正常"],
]


@pytest.fixture(autouse=True)
def secret_file(tmp_path, monkeypatch) -> Path:
    """Point the installation secret at a temporary file for every test."""
    path = tmp_path / "secret" / "secret.key"
    monkeypatch.setenv("LOANLENS_SECRET_FILE", str(path))
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, encoding: str = "utf-8",
              delimiter: str = ",") -> Path:
    """Write rows as CSV text in ``encoding`` (quoting only where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def table_rows(db_path: Path, table: str, columns: str = "* exclude (load_id)", order: str = "all") -> list:
    """Return every row of ``table`` (without load ids), ordered."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(f"select {columns} from {table} order by {order}").fetchall()
    finally:
        con.close()


def all_text_values(db_path: Path) -> list[tuple[str, str, str]]:
    """Return (table, column, value) for every non-null text cell in every table."""
    con = duckdb.connect(str(db_path), read_only=True)
    out = []
    try:
        tables = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main' and table_type = 'BASE TABLE'"
        ).fetchall()]
        for table in tables:
            for column, data_type in con.execute(
                "select column_name, data_type from information_schema.columns where table_name = ?", [table]
            ).fetchall():
                if data_type != "VARCHAR":
                    continue
                for (value,) in con.execute(f'select "{column}" from {table} where "{column}" is not null').fetchall():
                    out.append((table, column, value))
    finally:
        con.close()
    return out


ID_PATTERN = re.compile(r"[1-9]\d{5}(18|19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[\dXx]")


# Tables that hold imported rows; a rejected load must leave them unchanged.
DATA_TABLES = ("loans", "loan_attributes", "loan_months", "installments", "collection_actions", "rejects",
               "loan_facts", "month_facts")


def database_snapshot(db_path) -> dict:
    """Return every row of the data tables, the load log and app_meta, in a stable order."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        out = {table: con.execute(f"select * from {table} order by all").fetchall() for table in DATA_TABLES}
        out["load_log"] = con.execute("select * from load_log order by load_id").fetchall()
        out["app_meta"] = con.execute("select * from app_meta order by all").fetchall()
    finally:
        con.close()
    return out
