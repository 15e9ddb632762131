"""Matching source headers to the contract and parsing a file into a typed staging table.

The staging table ``stg_<table>`` has one row per data row, without footer and empty rows.
For every matched contract column ``x`` it has ``x`` (typed value) and ``x__bad`` (text
present but not parseable); error messages read the text back from the raw relation.
Unmatched columns are kept as ``a<i>`` text; personal-data columns are hashed, reduced to
region/age/gender, or dropped. All parsing is SQL over whole columns.

The SQL here is assembled from fixed fragments and generated column names (``c3``,
``lk_3``); source values and headers reach DuckDB only as bound parameters or tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from ingest import pii
from ingest.columns import (
    BOOLEAN_VALUES,
    CODED_VALUES,
    CONTRACT,
    alias_index,
    column_spec,
    normalise_header,
    unit_multiplier,
)
from ingest.mapping import ColumnMapping
from ingest.readers import Source

logger = logging.getLogger(__name__)

# Share of non-empty values matching a personal-data pattern that marks an unmatched column.
PII_VALUE_SHARE = 0.5

FOOTER_PATTERN = r"(?i)(合\s*计|小\s*计|总\s*计|共\s*计|汇\s*总|total|sub-?total|grand\s*total)\s*([:：(（].*)?"

_CODED_KIND = {"status": "status", "channel": "channel", "contact_target": "contact_target",
               "outcome": "outcome", "gender": "gender"}


@dataclass
class ColumnPlan:
    """The import action for one source column."""

    index: int
    header: str
    target: str  # contract column, 'attribute', 'ignore', 'pii:drop', 'pii:hash', 'pii:idcard'
    matched_by: str  # 'alias', 'mapping', 'header', 'values', 'free_text'
    multiplier: int = 1

    @property
    def source(self) -> str:
        return f"c{self.index}"


@dataclass
class PlanWarning:
    """A note about a file that does not stop the import; texts in messages/ingest.toml."""

    key: str  # catalog key under ingest.warning
    params: dict = field(default_factory=dict)

    def text(self, lang: str) -> str:
        import messages

        return messages.t(f"ingest.warning.{self.key}", lang, **self.params)


@dataclass
class StagePlan:
    """The column plan for one file plus file-level problems found while planning."""

    table: str
    columns: list[ColumnPlan]
    file_errors: list[tuple[str, str, str]] = field(default_factory=list)  # (rule, column, value)
    rate_percent: dict[str, bool] = field(default_factory=dict)
    warnings: list[PlanWarning] = field(default_factory=list)

    def contract(self) -> dict[str, ColumnPlan]:
        return {plan.target: plan for plan in self.columns if plan.target in _contract_names(self.table)}

    def attributes(self) -> list[ColumnPlan]:
        return [plan for plan in self.columns if plan.target == "attribute"]

    def personal(self) -> list[ColumnPlan]:
        return [plan for plan in self.columns if plan.target.startswith("pii:") or plan.target == "ignore"]


def _contract_names(table: str) -> set[str]:
    return {column.name for column in CONTRACT[table]}


def propose_columns(table: str, headers: list[str], mapping: ColumnMapping | None) -> list[ColumnPlan]:
    """Match headers to contract columns by mapping, alias and personal-data header words."""
    overrides = mapping.header_overrides(table) if mapping else {}
    aliases = alias_index(table)
    plans: list[ColumnPlan] = []
    for index, header in enumerate(headers):
        key, unit = normalise_header(header)
        multiplier = unit_multiplier(unit)
        if key in overrides:
            plans.append(ColumnPlan(index, header, overrides[key], "mapping", multiplier))
        elif key in aliases:
            plans.append(ColumnPlan(index, header, aliases[key], "alias", multiplier))
        elif (action := pii.header_action(key)) is not None:
            plans.append(ColumnPlan(index, header, action, "header", multiplier))
        elif pii.is_free_text(key):
            # Free text may hold names, which no pattern finds: dropped unless mapped.
            plans.append(ColumnPlan(index, header, "pii:drop", "free_text", multiplier))
        elif not key:
            plans.append(ColumnPlan(index, header, "attribute" if header else "ignore", "header"))
        else:
            plans.append(ColumnPlan(index, header, "attribute", "header", multiplier))
    return plans


def plan_file(
    con: duckdb.DuckDBPyConnection, table: str, source: Source, mapping: ColumnMapping | None
) -> StagePlan:
    """Build the column plan, scanning unmatched columns for personal-data values."""
    plan = StagePlan(table, propose_columns(table, source.headers, mapping))
    _detect_personal_values(con, source.relation, plan)

    seen: dict[str, ColumnPlan] = {}
    for column in plan.columns:
        if column.target not in _contract_names(table):
            continue
        if column.target in seen:
            plan.file_errors.append(("duplicate_column", column.header, seen[column.target].header))
        else:
            seen[column.target] = column
    for column in CONTRACT[table]:
        if column.required and column.name not in seen:
            plan.file_errors.append(("missing_column", column.name, ""))
    for name, column in seen.items():
        if column_spec(table, name).kind == "rate":
            plan.rate_percent[name] = _rate_is_percent(con, source.relation, column.source)
    _warn_sub_fen_amounts(con, source.relation, plan, seen, source.column_types)
    return plan


def _warn_sub_fen_amounts(con, relation: str, plan: StagePlan, seen: dict[str, ColumnPlan],
                          types: list[str] | None) -> None:
    """Warn about amounts with more than two decimals, which are rounded to the fen."""
    # Amounts in 万元 (by header or value) have four exact decimals more, so they are skipped.
    amounts = [column for name, column in seen.items()
               if column_spec(plan.table, name).kind == "amount" and column.multiplier == 1
               and not (types is not None and (decimal_scale(types[column.index]) or 0) <= 2
                        and decimal_scale(types[column.index]) is not None)]
    if not amounts:
        return
    counts = con.execute(
        # The position test skips the pattern for the usual values with at most two decimals.
        "select " + ", ".join(f"count(*) filter (where strlen({column.source}) - instr({column.source}, '.') >= 3 "
                              f"and instr({column.source}, '.') > 0 "
                              f"and regexp_matches({column.source}, '\\.\\d{{3,}}') "
                              f"and not contains({column.source}, '万'))"
                              for column in amounts) + f" from {relation}"
    ).fetchone()
    for column, count in zip(amounts, counts):
        if count:
            plan.warnings.append(PlanWarning("sub_fen", {"column": column.header, "count": count}))


def _detect_personal_values(con, relation: str, plan: StagePlan) -> None:
    candidates = [column for column in plan.columns if column.target == "attribute"]
    if not candidates:
        return
    parts = []
    for column in candidates:
        text = column.source
        # Only values 11 to 24 characters long can be an ID, mobile or card number, and the
        # length test is much cheaper than the patterns.
        candidate = f"strlen({text}) between 11 and 24"
        parts.append(
            f"count({text}) as n{column.index}, "
            f"count(*) filter (where {candidate} and ll_looks_idcard({text})) as id{column.index}, "
            f"count(*) filter (where {candidate} and ll_looks_mobile({text})) as mo{column.index}, "
            f"count(*) filter (where {candidate} and ll_looks_card({text})) as ca{column.index}"
        )
    row = con.execute(f"select {', '.join(parts)} from {relation}").fetchone()
    for position, column in enumerate(candidates):
        total, idcards, mobiles, cards = row[position * 4: position * 4 + 4]
        if not total:
            continue
        if idcards / total >= PII_VALUE_SHARE:
            column.target, column.matched_by = "pii:idcard", "values"
        elif mobiles / total >= PII_VALUE_SHARE or cards / total >= PII_VALUE_SHARE:
            column.target, column.matched_by = "pii:hash", "values"


def _rate_is_percent(con, relation: str, source: str) -> bool:
    """Decide a rate column's scale from the whole file: percent if any bare value exceeds 1."""
    largest = con.execute(
        f"select max(ll_rate_number({source})) filter (where not ll_rate_is_percent({source})) "
        f"from {relation}"
    ).fetchone()[0]
    return largest is not None and largest > 1


# ---------------------------------------------------------------- lookups


def _register_lookup(con, name: str, mapping: dict[str, str | None]) -> None:
    frame = pd.DataFrame({"src": list(mapping.keys()), "dst": list(mapping.values())}, dtype="object")
    con.complete()  # DuckDB 2 refuses register() while an earlier result is unread.
    con.register(f"{name}_frame", frame)
    con.execute(f"create or replace temp table {name} as select src::varchar as src, dst::varchar as dst "
                f"from {name}_frame")
    con.unregister(f"{name}_frame")


def _distinct(con, relation: str, expression: str, limit: int = 500_000) -> list:
    rows = con.execute(
        f"select distinct {expression} as v from {relation} where {expression} is not null limit {limit}"
    ).fetchall()
    return [row[0] for row in rows]


def _coded_lookup(values: list[str], kind: str, user: dict[str, str]) -> dict[str, str | None]:
    table = BOOLEAN_VALUES if kind == "boolean" else CODED_VALUES[kind]
    out: dict[str, str | None] = {}
    for value in values:
        mapped = user.get(value, value)
        key = str(mapped).strip().lower()
        hit = table.get(key)
        if hit is None:
            hit = table.get(key.replace(" ", "_"))
        if kind == "boolean" and hit is not None:
            out[value] = "true" if hit else "false"
        else:
            out[value] = hit
    return out


def _regions():
    try:
        from ingest import regions
    except ImportError:  # pragma: no cover - the regions module ships with the repository
        return None
    return regions


# ---------------------------------------------------------------- staging


@dataclass
class _Select:
    columns: list[str] = field(default_factory=list)
    joins: list[str] = field(default_factory=list)
    warnings: list[PlanWarning] = field(default_factory=list)


def _warn_unrecognised(select: _Select, column: ColumnPlan, values: list[str]) -> None:
    """Note region names that matched no official name; they are stored as written."""
    if values:
        shown = ", ".join(sorted(values)[:10])
        select.warnings.append(PlanWarning("unrecognised_region",
                                           {"column": column.header, "count": len(values), "values": shown}))


def stage_file(
    con: duckdb.DuckDBPyConnection, plan: StagePlan, source: Source, mapping: ColumnMapping | None,
    secret_params: dict[str, bytes],
) -> dict:
    """Create ``stg_<table>`` and return footer/blank row information.

    Returns
    -------
    dict
        ``footer_lines`` (list of source lines), ``footer_rows`` and ``blank_rows`` counts.
    """
    table = plan.table
    relation = source.relation
    excel = "true" if source.file_format == "xlsx" else "false"
    contract = plan.contract()
    select = _Select()
    lookup_no = 0

    def new_lookup(mapping_values: dict[str, str | None]) -> str:
        nonlocal lookup_no
        lookup_no += 1
        name = f"lk_{table}_{lookup_no}"
        _register_lookup(con, name, mapping_values)
        return name

    texts: dict[str, str] = {}
    for name, column in contract.items():
        text = f"r.{column.source}"
        user = mapping.value_map(table, name) if mapping else {}
        kind = column_spec(table, name).kind
        if user and kind not in _CODED_KIND and kind not in ("boolean", "province", "city"):
            values = _distinct(con, relation, column.source)
            lk = new_lookup({value: user[value] for value in values if value in user})
            select.joins.append(f"left join {lk} on {lk}.src = {text}")
            text = f"coalesce({lk}.dst, {text})"
        texts[name] = text

    for name, column in contract.items():
        spec = column_spec(table, name)
        text = texts[name]
        typed = None
        if source.column_types is not None and text == f"r.{column.source}":
            typed = _typed_expression(spec.kind, f"r.t{column.index}", source.column_types[column.index],
                                      column.multiplier)
        value, bad = typed or _parse_expression(spec.kind, name, text, column, plan, excel)
        if spec.kind in _CODED_KIND or spec.kind == "boolean":
            user = mapping.value_map(table, name) if mapping else {}
            values = _distinct(con, relation, column.source)
            lk = new_lookup(_coded_lookup(values, _CODED_KIND.get(spec.kind, spec.kind), user))
            select.joins.append(f"left join {lk} on {lk}.src = {text}")
            value = f"{lk}.dst::boolean" if spec.kind == "boolean" else f"{lk}.dst"
            bad = f"({text} is not null and {lk}.dst is null)"
        elif spec.kind == "province":
            user = mapping.value_map(table, name) if mapping else {}
            value, bad = _province_expression(con, relation, column, text, new_lookup, select, user)
        elif spec.kind == "city":
            value, bad = _city_expression(con, relation, contract, column, text, new_lookup, select)
        select.columns.append(f"{value} as {name}")
        select.columns.append(f"coalesce({bad}, false) as {name}__bad")

    for column in plan.attributes():
        select.columns.append(f"ll_mask_personal(r.{column.source}) as a{column.index}")
    for column in plan.columns:
        if column.target == "pii:hash":
            select.columns.append(f"{pii.hmac_sql(f'r.{column.source}')} as h{column.index}")
    idcards = [column for column in plan.columns if column.target == "pii:idcard"]
    if idcards:
        text = f"upper(r.{idcards[0].source})"
        select.columns.append(f"ll_idcard_valid({text}) as _id_valid")
        select.columns.append(f"case when ll_idcard_valid({text}) then substr({text}, 1, 6) end as _id_region")
        select.columns.append(f"case when ll_idcard_valid({text}) then ll_idcard_birth({text}) end as _id_birth")
        select.columns.append(f"case when ll_idcard_valid({text}) then ll_idcard_gender({text}) end as _id_gender")
        select.columns.append(f"r.{idcards[0].source} is not null as _id_present")

    footer, blank = _footer_conditions(plan, source)
    where = f"not ({footer}) and not ({blank})"
    sql = (
        f"create or replace temp table stg_{table} as select r._line, r.c_extra as _extra, "
        f"{', '.join(select.columns)} from {relation} r {' '.join(select.joins)} where {where}"
    )
    params = secret_params if "$hmac_" in sql else {}
    con.execute(sql, params)
    if table == "loans":
        _fill_loan_regions(con, new_lookup)

    footer_lines = [row[0] for row in con.execute(
        f"select _line from {relation} r where {footer} order by _line").fetchall()]
    blank_rows = con.execute(f"select count(*) from {relation} r where not ({footer}) and {blank}").fetchone()[0]
    plan.warnings.extend(select.warnings)
    return {"footer_lines": footer_lines, "footer_rows": len(footer_lines), "blank_rows": blank_rows}


_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_TIMESTAMP_TYPES = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS")


def decimal_scale(data_type: str) -> int | None:
    """Return the scale of a DuckDB DECIMAL(p,s) type name, 0 for integer types, else None."""
    if data_type in _INTEGER_TYPES:
        return 0
    if data_type.startswith("DECIMAL(") and data_type.endswith(")"):
        return int(data_type[8:-1].split(",")[1])
    return None


def _typed_expression(kind: str, typed: str, data_type: str, multiplier: int):
    """Return (value SQL, invalid-condition SQL) that uses a typed Parquet column, or None.

    Only types that convert without loss or rounding take this path, so every value gets
    the same result and the same errors as its text would: dates and timestamps, integers,
    and decimals with at most two decimals. Everything else is parsed from its text.
    """
    if kind == "date" and data_type == "DATE":
        return f"case when not ll_is_sentinel({typed}) then {typed} end", "false"
    if kind == "date" and data_type in _TIMESTAMP_TYPES:
        value = f"cast({typed} as date)"
        return f"case when not ll_is_sentinel({value}) then {value} end", "false"
    if kind == "timestamp" and data_type in (*_TIMESTAMP_TYPES, "DATE"):
        value = f"cast({typed} as timestamp)"
        return f"case when year({value}) < 2900 then {value} end", "false"
    if kind == "timestamp" and data_type == "TIMESTAMP WITH TIME ZONE":
        value = f"timezone('Asia/Shanghai', {typed})"
        return f"case when year({value}) < 2900 then {value} end", "false"
    scale = decimal_scale(data_type)
    if kind == "amount" and scale is not None and scale <= 2:
        scaled = typed if multiplier == 1 else f"({typed} * {int(multiplier)})"
        value = f"try_cast({scaled} as decimal(18, 2))"
        return value, f"({typed} is not null and {value} is null)"
    if kind == "integer" and scale == 0:
        value = f"try_cast({typed} as integer)"
        return value, f"({typed} is not null and {value} is null)"
    return None


def _parse_expression(kind: str, name: str, text: str, column: ColumnPlan, plan: StagePlan, excel: str):
    """Return (value SQL, invalid-condition SQL) for a contract column."""
    if kind in ("id", "text", "county"):
        return text, "false"
    if kind == "hash":
        return pii.hmac_sql(text), "false"
    if kind == "region_code":
        value = f"case when regexp_full_match({text}, '\\d{{6}}(\\d{{6}})?') then substr({text}, 1, 6) end"
        return value, f"({text} is not null and not regexp_full_match({text}, '\\d{{6}}(\\d{{6}})?'))"
    if kind == "date":
        month_ok = "true" if name == "snapshot_date" else "false"
        parsed = f"ll_date_any({text}, {excel}, {month_ok})"
        value = f"case when not ll_is_sentinel({parsed}) then {parsed} end"
        return value, f"({text} is not null and {parsed} is null)"
    if kind == "timestamp":
        parsed = f"ll_timestamp_any({text}, {excel})"
        value = f"case when year({parsed}) < 2900 then {parsed} end"
        return value, f"({text} is not null and {parsed} is null)"
    if kind == "amount":
        if column.multiplier == 1:
            parsed = f"ll_amount_fen({text})"
        else:
            parsed = f"try_cast(round(ll_amount({text}, {int(column.multiplier)}), 2) as decimal(18, 2))"
        return parsed, f"({text} is not null and {parsed} is null)"
    if kind == "integer":
        parsed = f"ll_int({text})"
        return parsed, f"({text} is not null and {parsed} is null)"
    if kind == "double":
        parsed = f"ll_double({text})"
        return parsed, f"({text} is not null and {parsed} is null)"
    if kind == "rate":
        percent = "true" if plan.rate_percent.get(name) else "false"
        number = f"ll_rate_number({text})"
        value = f"case when ll_rate_is_percent({text}) or {percent} then {number} / 100 else {number} end"
        return value, f"({text} is not null and {number} is null)"
    # Coded kinds are replaced by lookups in stage_file.
    return text, "false"


def _province_expression(con, relation, column: ColumnPlan, text: str, new_lookup, select: _Select, user):
    regions = _regions()
    values = _distinct(con, relation, column.source)
    if regions is None:
        # TODO: without ingest.regions the province text is stored as written.
        return text, "false"
    found = {value: regions.normalise_province(user.get(value, value)) for value in values}
    _warn_unrecognised(select, column, [value for value, name in found.items() if name is None])
    lk = new_lookup(found)
    select.joins.append(f"left join {lk} on {lk}.src = r.{column.source}")
    return f"coalesce({lk}.dst, {text})", "false"


def _city_expression(con, relation, contract, column: ColumnPlan, text: str, new_lookup, select: _Select):
    regions = _regions()
    if regions is None:
        return text, "false"
    province = contract.get("province")
    province_sql = f"coalesce(r.{province.source}, '')" if province else "''"
    pairs = con.execute(
        f"select distinct {province_sql} as p, r.{column.source} as c from {relation} r "
        f"where r.{column.source} is not null limit 500000"
    ).fetchall()
    found = {f"{p}\x1f{c}": regions.normalise_city(c, p or None) for p, c in pairs}
    _warn_unrecognised(select, column, sorted({c for p, c in pairs if found[f"{p}\x1f{c}"] is None}))
    lk = new_lookup(found)
    key = f"{province_sql} || chr(31) || r.{column.source}"
    select.joins.append(f"left join {lk} on {lk}.src = {key}")
    return f"coalesce({lk}.dst, {text})", "false"


def _fill_loan_regions(con, new_lookup) -> None:
    """Fill region_code from the ID card and province/city/county from region_code."""
    columns = [row[0] for row in con.execute("describe stg_loans").fetchall()]
    has_id = "_id_region" in columns
    has_code = "region_code" in columns
    if not has_code and not has_id:
        return
    if has_code and has_id:
        code = "coalesce(s.region_code, s._id_region)"
    elif has_id:
        code = "s._id_region"
    else:
        code = "s.region_code"
    regions = _regions()
    if regions is None:
        return
    codes = [row[0] for row in con.execute(
        f"select distinct {code} from stg_loans s where {code} is not null").fetchall()]
    frame = pd.DataFrame(
        [(value, *regions.regions_from_code(value)) for value in codes],
        columns=["src", "province", "city", "county"], dtype="object",
    )
    con.complete()
    con.register("lk_region_frame", frame)
    con.execute("create or replace temp table lk_region as select src::varchar as src, province::varchar as "
                "province, city::varchar as city, county::varchar as county from lk_region_frame")
    con.unregister("lk_region_frame")
    # The code fills a level only where it agrees with the levels the file gives above it,
    # so an ID card from another province never adds a county to the file's province.
    sets = {"region_code": code}
    agree = "true"
    for level in ("province", "city", "county"):
        if level in columns:
            sets[level] = f"coalesce(s.{level}, case when {agree} then lk_region.{level} end)"
            agree = f"{agree} and (s.{level} is null or s.{level} = lk_region.{level})"
        else:
            sets[level] = f"case when {agree} then lk_region.{level} end"
    keep = [name for name in columns if name not in sets]
    con.execute(
        f"create or replace temp table stg_loans as select {', '.join('s.' + name for name in keep)}, "
        f"{', '.join(f'{expr} as {name}' for name, expr in sets.items())} "
        f"from stg_loans s left join lk_region on lk_region.src = {code}"
    )


def _footer_conditions(plan: StagePlan, source: Source) -> tuple[str, str]:
    """Return SQL conditions for footer rows (合计/小计/总计) and rows with no values."""
    probe = {0, 1, 2}
    loan_id = plan.contract().get("loan_id")
    if loan_id is not None:
        probe.add(loan_id.index)
    probe = [index for index in sorted(probe) if index < len(plan.columns)]
    types = source.column_types
    # A typed Parquet column (date, number) cannot hold a footer word, and it is empty exactly
    # when its value is NULL, so neither test needs its text.
    text_probe = [index for index in probe if types is None or types[index] == "VARCHAR"]
    footer = " or ".join(
        f"coalesce(regexp_full_match(r.c{index}, '{FOOTER_PATTERN}'), false)" for index in text_probe
    ) or "false"
    blank = " and ".join(
        f"r.t{index} is null" if types is not None and types[index] not in ("VARCHAR", "DOUBLE", "FLOAT")
        else f"r.c{index} is null"
        for index in range(len(plan.columns))
    ) or "true"
    return footer, blank


def header_label(plan: StagePlan, name: str) -> str:
    """Return the source header of a contract column, or the column name when it is absent."""
    column = plan.contract().get(name)
    return column.header if column else name

