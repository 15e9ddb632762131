"""Validation rules of the loan-tape contract, run as SQL over the staging tables.

Each check inserts failing rows into ``err_<table>`` as (line, column, value, rule); the
column is the source header. Rule codes and their Chinese/English texts live in
``messages/ingest.toml`` (``ingest.rule.<code>.message`` and ``.fix``).
"""

from __future__ import annotations

import datetime as dt

import duckdb

from ingest.columns import CONTRACT
from ingest.stage import StagePlan, header_label

# Rule code for a value that does not parse, by column kind.
INVALID_RULE = {
    "date": "invalid_date",
    "timestamp": "invalid_timestamp",
    "amount": "invalid_amount",
    "integer": "invalid_integer",
    "rate": "invalid_number",
    "double": "invalid_number",
    "boolean": "invalid_boolean",
    "status": "invalid_code",
    "channel": "invalid_code",
    "contact_target": "invalid_code",
    "outcome": "invalid_code",
    "gender": "invalid_code",
    "region_code": "invalid_region_code",
}

MAX_VALUE_CHARS = 200


def create_error_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create an empty ``err_<table>``; ``src`` names the raw column whose text fills ``value``."""
    con.execute(
        f"create or replace temp table err_{table} "
        f"(line bigint, column_name varchar, value varchar, rule varchar, src varchar)"
    )


def _insert(con, table: str, select_sql: str, params: dict | None = None) -> None:
    con.execute(f"insert into err_{table} {select_sql}", params or {})


def _source(plan: StagePlan, name: str) -> str:
    column = plan.contract().get(name)
    return column.source if column else ""


def check_rows(con, plan: StagePlan, as_of: dt.date) -> None:
    """Run the row-level checks of one staged file: parsing, required values, ranges, dates.

    One aggregate pass counts the failures of every check; only checks with failures are
    then run again to list their rows, so a clean file is scanned once.
    """
    table = plan.table
    create_error_table(con, table)
    present = plan.contract()
    checks: list[tuple[str, str, str]] = [("_extra is not null", "", "malformed_row")]  # (condition, column, rule)
    for column in CONTRACT[table]:
        if column.name not in present:
            continue
        rule = INVALID_RULE.get(column.kind)
        if rule:
            checks.append((f"{column.name}__bad", column.name, rule))
        if column.required:
            checks.append((f"{column.name} is null and not {column.name}__bad", column.name, "missing_value"))

    ranges = {
        "loans": [("principal", "principal <= 0", "principal_not_positive"),
                  ("term_months", "term_months <= 0", "invalid_term"),
                  ("annual_rate", "annual_rate < 0", "invalid_rate"),
                  ("origination_date", "origination_date > $as_of", "date_in_future")],
        "loan_months": [("dpd", "dpd < 0", "dpd_negative"),
                        ("outstanding_principal", "outstanding_principal < 0", "outstanding_negative"),
                        ("snapshot_date", "last_day(snapshot_date) > last_day($as_of)", "date_in_future")],
        "installments": [("installment_no", "installment_no < 1", "invalid_installment_no"),
                         ("principal_due", "principal_due < 0", "amount_negative"),
                         ("paid_date", "paid_date > $as_of", "date_in_future")],
        "collection_actions": [("action_time", "action_time >= $as_of + interval 1 day", "date_in_future"),
                               ("dpd_at_action", "dpd_at_action < 0", "dpd_negative")],
    }[table]
    checks.extend((condition, name, rule) for name, condition, rule in ranges if name in present)

    count_sql = ("select " + ", ".join(f"count(*) filter (where coalesce({condition}, false))"
                                       for condition, _, _ in checks) + f" from stg_{table}")
    counts = con.execute(count_sql, {"as_of": as_of} if "$as_of" in count_sql else {}).fetchone()
    for (condition, name, rule), count in zip(checks, counts):
        if not count:
            continue
        if rule == "malformed_row":
            _insert(con, table, f"select _line, '', left(ll_mask_personal(_extra), {MAX_VALUE_CHARS}), "
                                f"'malformed_row', null from stg_{table} where _extra is not null")
            continue
        header = present[name].header
        src = "" if rule == "missing_value" else present[name].source
        params = {"header": header, "src": src or None}
        if "$as_of" in condition:
            params["as_of"] = as_of
        _insert(con, table, f"select _line, $header, null, '{rule}', $src from stg_{table} "
                            f"where coalesce({condition}, false)", params)


def fill_error_values(con, table: str) -> None:
    """Fill ``value`` of the errors from the cleaned source text of their column."""
    sources = [row[0] for row in con.execute(
        f"select distinct src from err_{table} where src is not null and value is null").fetchall()]
    for src in sources:
        con.execute(
            f"update err_{table} set value = left(r.{src}, {MAX_VALUE_CHARS}) from raw_{table} r "
            f"where r._line = err_{table}.line and err_{table}.src = $src",
            {"src": src},
        )


def check_keys(con, plan: StagePlan) -> None:
    """Flag every row of a key that occurs more than once in the file."""
    table = plan.table
    present = plan.contract()
    if table == "loans":
        keys = ["loan_id"]
    elif table == "loan_months":
        keys = ["loan_id", "snapshot_date"]
    elif table == "installments":
        keys = ["loan_id", "installment_no", "paid_date"]
    else:
        keys = ["loan_id", "action_time", "channel"]
    keys = [key for key in keys if key in present]
    if "loan_id" not in keys:
        return
    # A loans file has its own rule, because its fix (one row per loan) differs.
    rule = "duplicate_loan_id" if table == "loans" else "duplicate_key"
    key_exprs = ["last_day(snapshot_date)" if key == "snapshot_date" else key for key in keys]
    required_keys = [key for key in keys if key != "paid_date"]
    # Group-then-join is cheaper than a window count over millions of rows. Null keys are
    # compared with "is not distinct from" so that rows without a paid_date still match.
    complete = " and ".join(f"{key} is not null" for key in required_keys)
    aliases = [f"k{index}" for index in range(len(key_exprs))]
    _insert(
        con, table,
        f"with repeated as (select {', '.join(f'{expr} as {alias}' for expr, alias in zip(key_exprs, aliases))} "
        f"from stg_{table} where {complete} group by all having count(*) > 1) "
        f"select s._line, $header, null, '{rule}', $src from stg_{table} s join repeated d on "
        + " and ".join(f"d.{alias} is not distinct from s.{expr}" if expr == key else
                       f"d.{alias} is not distinct from {expr.replace('snapshot_date', 's.snapshot_date')}"
                       for expr, alias, key in zip(key_exprs, aliases, keys)),
        {"header": header_label(plan, "loan_id"), "src": _source(plan, "loan_id")},
    )
    if table == "installments" and {"installment_no", "due_date"} <= present.keys():
        _insert(
            con, table,
            f"select _line, $header, null, 'inconsistent_schedule', $src from ("
            f"select _line, count(distinct due_date) over (partition by loan_id, installment_no) as n "
            f"from stg_installments where loan_id is not null and installment_no is not null) where n > 1",
            {"header": header_label(plan, "due_date"), "src": _source(plan, "due_date")},
        )


def build_known_loans(con, loans_plan: StagePlan | None, mode: str, use_database: bool = True) -> None:
    """Create ``known_loans(loan_id, origination_date)``: loans this load keeps plus the database's.

    In quarantine mode only loans rows without errors count. In strict mode every parsed
    loans row counts, so that one bad loans row does not also fail its months as unknown loans.
    With ``use_database`` false (the demo is about to be removed) the database's loans do not count.
    """
    parts = []
    if loans_plan is not None and "loan_id" in loans_plan.contract():
        origination = "origination_date" if "origination_date" in loans_plan.contract() else "null::date"
        rejected = "and _line not in (select line from err_loans where line is not null)" if mode == "quarantine" else ""
        parts.append(f"select loan_id, {origination} as origination_date, 1 as priority from stg_loans "
                     f"where loan_id is not null {rejected}")
    parts.append("select loan_id, origination_date, 2 as priority from loans"
                 + ("" if use_database else " where false"))
    con.execute(
        "create or replace temp table known_loans as select loan_id, arg_min(origination_date, priority) "
        f"as origination_date from ({' union all '.join(parts)}) group by loan_id"
    )


def check_references(con, plan: StagePlan, use_database: bool = True) -> None:
    """Check loan ids against known_loans, snapshot months and closed loans."""
    table = plan.table
    present = plan.contract()
    if table == "loans" or "loan_id" not in present:
        return
    _insert(con, table,
            f"select _line, $header, null, 'loan_not_found', $src from stg_{table} s "
            f"where loan_id is not null and not exists (select 1 from known_loans k where k.loan_id = s.loan_id)",
            {"header": header_label(plan, "loan_id"), "src": _source(plan, "loan_id")})
    if table == "loan_months" and "snapshot_date" in present:
        _insert(con, table,
                f"select s._line, $header, null, 'snapshot_before_origination', $src "
                f"from stg_loan_months s join known_loans k on k.loan_id = s.loan_id "
                f"where s.snapshot_date is not null and k.origination_date is not null "
                f"and last_day(s.snapshot_date) < last_day(k.origination_date)",
                {"header": header_label(plan, "snapshot_date"), "src": _source(plan, "snapshot_date")})
        _check_closed_loans(con, plan, use_database)


def month_status_sql(plan: StagePlan, alias: str = "") -> str:
    """Return SQL for a loan-month status: the mapped status, else paid_off at zero balance."""
    prefix = f"{alias}." if alias else ""
    present = plan.contract()
    default = (f"case when {prefix}outstanding_principal = 0 and coalesce({prefix}dpd, 0) = 0 "
               f"then 'paid_off' else 'active' end")
    if "status" in present:
        return f"coalesce({prefix}status, {default})"
    return default


def _check_closed_loans(con, plan: StagePlan, use_database: bool = True) -> None:
    """Rows after a loan's first paid_off/charged_off month are errors, except recoveries.

    A recovery row after a write-off (status charged_off, outstanding principal 0) is
    allowed, because lenders report recoveries on written-off loans month by month.
    Months already in the database count too, unless this file replaces them.
    """
    if "outstanding_principal" not in plan.contract():
        return
    status = month_status_sql(plan, "s")
    con.execute(f"""
        create or replace temp table lm_close_check as
        with file_rows as (
            select s._line, s.loan_id, last_day(s.snapshot_date) as month_end, {status} as status,
                   s.outstanding_principal
            from stg_loan_months s
            where s.loan_id is not null and s.snapshot_date is not null
        ),
        db_rows as (
            select null::bigint as _line, m.loan_id, m.snapshot_date as month_end, m.status,
                   m.outstanding_principal
            from loan_months m
            where m.loan_id in (select loan_id from file_rows)
              and m.snapshot_date not in (select month_end from file_rows)
              and {str(use_database).lower()}
        ),
        all_rows as (
            select * from file_rows
            union all
            select * from db_rows
        ),
        first_close as (
            select loan_id, min(month_end) as close_month, arg_min(status, month_end) as close_status
            from all_rows
            where status in ('paid_off', 'charged_off')
            group by loan_id
        )
        select f._line
        from file_rows f
        join first_close c on c.loan_id = f.loan_id
        where f.month_end > c.close_month
          and not (f.status = 'charged_off' and f.outstanding_principal = 0 and c.close_status = 'charged_off')
    """)
    _insert(con, "loan_months",
            "select _line, $header, null, 'row_after_close', $src from lm_close_check",
            {"header": header_label(plan, "snapshot_date"), "src": _source(plan, "snapshot_date")})


def file_level_errors(con, plan: StagePlan) -> None:
    """Record missing and duplicate columns as errors on line 1 (the header)."""
    for rule, column, other in plan.file_errors:
        _insert(con, plan.table, f"select 1, $column, $value, '{rule}', null",
                {"column": column, "value": other or None})
