"""User column mapping: source header -> contract column, and value maps, kept as TOML.

Format (every section optional; ``[all]`` applies to every table)::

    [loans]
    sheet = "放款明细"              # .xlsx sheet to read
    encoding = "big5"               # text encoding of a CSV file (default: detected)

    [loans.columns]
    "借款编号" = "loan_id"
    "客户等级" = "grade"
    "备注" = "attribute"            # keep a free-text column (dropped by default)
    "证件号" = "pii:idcard"         # ID-card number: region, age, gender kept, number dropped
    "微信号" = "pii:hash"           # replaced by a keyed hash
    "家属姓名" = "pii:drop"         # dropped
    "内部流水号" = "ignore"         # dropped, listed in the report

    [loans.values.product]
    "A01" = "消费贷"

    [loan_months.values.status]
    "M1" = "active"
    "已代偿" = "charged_off"

    [collection_actions.values.channel]
    "IVR" = "ai_voice"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ingest.columns import CONTRACT, TABLES, normalise_header

SPECIAL_TARGETS = ("attribute", "ignore", "pii:drop", "pii:hash", "pii:idcard")


class MappingError(ValueError):
    """A mapping file that cannot be used: unknown table, column or target."""


@dataclass
class TableMapping:
    """Mapping for one table: header overrides, value maps and the .xlsx sheet name."""

    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    sheet: str | None = None
    encoding: str | None = None


@dataclass
class ColumnMapping:
    """A user mapping for all tables. The ``all`` entry applies to every table."""

    tables: dict[str, TableMapping] = field(default_factory=dict)

    @classmethod
    def from_toml(cls, text: str) -> "ColumnMapping":
        """Parse mapping TOML text.

        Raises
        ------
        MappingError
            If a section names an unknown table or a header maps to an unknown column.
        """
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise MappingError(f"mapping file is not valid TOML: {error}") from error
        mapping = cls()
        for table, section in data.items():
            if table not in (*TABLES, "all"):
                raise MappingError(
                    f"mapping section [{table}] is not a table; use one of {', '.join(TABLES)} or all"
                )
            if not isinstance(section, dict):
                raise MappingError(f"mapping section [{table}] must be a table, got {section!r}")
            encoding = section.get("encoding")
            if encoding is not None:
                _check_encoding(table, encoding)
            table_mapping = TableMapping(sheet=section.get("sheet"), encoding=encoding)
            for header, target in section.get("columns", {}).items():
                _check_target(table, header, target)
                table_mapping.columns[str(header)] = str(target)
            for column, values in section.get("values", {}).items():
                if not isinstance(values, dict):
                    raise MappingError(f"[{table}.values.{column}] must map source values to values")
                table_mapping.values[str(column)] = {str(k): str(v) for k, v in values.items()}
            mapping.tables[table] = table_mapping
        return mapping

    def to_toml(self) -> str:
        """Return the mapping as TOML text that ``from_toml`` reads back unchanged."""
        lines: list[str] = []
        for table, table_mapping in self.tables.items():
            lines.append(f"[{table}]")
            if table_mapping.sheet:
                lines.append(f"sheet = {_quote(table_mapping.sheet)}")
            if table_mapping.encoding:
                lines.append(f"encoding = {_quote(table_mapping.encoding)}")
            lines.append("")
            if table_mapping.columns:
                lines.append(f"[{table}.columns]")
                for header, target in table_mapping.columns.items():
                    lines.append(f"{_quote(header)} = {_quote(target)}")
                lines.append("")
            for column, values in table_mapping.values.items():
                lines.append(f"[{table}.values.{column}]")
                for source, value in values.items():
                    lines.append(f"{_quote(source)} = {_quote(value)}")
                lines.append("")
        return "\n".join(lines)

    def header_overrides(self, table: str) -> dict[str, str]:
        """Return normalised header -> target for ``table`` (table entries win over ``all``)."""
        out: dict[str, str] = {}
        for name in ("all", table):
            for header, target in self.tables.get(name, TableMapping()).columns.items():
                out[normalise_header(header)[0]] = target
        return out

    def value_map(self, table: str, column: str) -> dict[str, str]:
        """Return the source value -> value map for one contract column."""
        out: dict[str, str] = {}
        for name in ("all", table):
            out.update(self.tables.get(name, TableMapping()).values.get(column, {}))
        return out

    def encoding(self, table: str) -> str | None:
        """Return the text encoding configured for ``table`` (or ``all``), if any."""
        for name in (table, "all"):
            encoding = self.tables.get(name, TableMapping()).encoding
            if encoding:
                return encoding
        return None

    def sheet(self, table: str) -> str | None:
        """Return the .xlsx sheet name configured for ``table``, if any."""
        for name in (table, "all"):
            sheet = self.tables.get(name, TableMapping()).sheet
            if sheet:
                return sheet
        return None


def _check_encoding(table: str, encoding) -> None:
    import codecs

    if not isinstance(encoding, str):
        raise MappingError(f"[{table}] encoding must be a string, got {encoding!r}")
    try:
        codecs.lookup(encoding)
    except LookupError as error:
        raise MappingError(f"[{table}] encoding {encoding!r} is not a known encoding; "
                           f"use a name such as utf-8, gb18030 or big5") from error


def _check_target(table: str, header: str, target) -> None:
    if not isinstance(target, str):
        raise MappingError(f"mapping for header {header!r} must be a string, got {target!r}")
    if target in SPECIAL_TARGETS:
        return
    tables = TABLES if table == "all" else (table,)
    known = {column.name for name in tables for column in CONTRACT[name]}
    if target not in known:
        raise MappingError(
            f"[{table}.columns] maps {header!r} to {target!r}, which is not a contract column; "
            f"use one of {', '.join(sorted(known))} or {', '.join(SPECIAL_TARGETS)}"
        )


def _quote(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def load_mapping(path) -> ColumnMapping:
    """Read a mapping TOML file (UTF-8)."""
    return ColumnMapping.from_toml(Path(path).read_text(encoding="utf-8"))


def save_mapping(mapping: ColumnMapping, path) -> None:
    """Write a mapping as a UTF-8 TOML file."""
    Path(path).write_text(mapping.to_toml(), encoding="utf-8")
