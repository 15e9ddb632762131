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
    """Create an empty ``err_<table>``."""
    con.execute(
        f"create or replace temp table err_{table} (line bigint, column_name varchar, value varchar, rule varchar)"
    )


def _insert(con, table: str, select_sql: str, params: dict | None = None) -> None:
    con.execute(f"insert into err_{table} {select_sql}", params or {})


def check_rows(con, plan: StagePlan, as_of: dt.date) -> None:
    """Run the row-level checks of one staged file: parsing, required values, ranges, dates."""
    table = plan.table
    create_error_table(con, table)
    present = plan.contract()
    value = f"left(%s, {MAX_VALUE_CHARS})"

    _insert(con, table, f"select _line, '', {value % 'll_mask_personal(_extra)'}, 'malformed_row' "
                        f"from stg_{table} where _extra is not null")
    for column in CONTRACT[table]:
        if column.name not in present:
            continue
        header = {"header": present[column.name].header}
        rule = INVALID_RULE.get(column.kind)
        if rule:
            _insert(con, table, f"select _line, $header, {value % (column.name + '__t')}, '{rule}' "
                                f"from stg_{table} where {column.name}__bad", header)
        if column.required:
            _insert(con, table, f"select _line, $header, null, 'missing_value' from stg_{table} "
                                f"where {column.name} is null and not {column.name}__bad", header)

    def range_check(name: str, condition: str, rule: str, extra: dict | None = None) -> None:
        if name not in present:
            return
        params = {"header": present[name].header, **(extra or {})}
        _insert(con, table, f"select _line, $header, {value % (name + '__t')}, '{rule}' from stg_{table} "
                            f"where {condition}", params)

    as_of_param = {"as_of": as_of}
    if table == "loans":
        range_check("principal", "principal <= 0", "principal_not_positive")
        range_check("term_months", "term_months <= 0", "invalid_term")
        range_check("annual_rate", "annual_rate < 0", "invalid_rate")
        range_check("origination_date", "origination_date > $as_of", "date_in_future", as_of_param)
    elif table == "loan_months":
        range_check("dpd", "dpd < 0", "dpd_negative")
        range_check("outstanding_principal", "outstanding_principal < 0", "outstanding_negative")
        range_check("snapshot_date", "last_day(snapshot_date) > last_day($as_of)", "date_in_future", as_of_param)
    elif table == "installments":
        range_check("installment_no", "installment_no < 1", "invalid_installment_no")
        range_check("principal_due", "principal_due < 0", "amount_negative")
        range_check("paid_date", "paid_date > $as_of", "date_in_future", as_of_param)
    elif table == "collection_actions":
        range_check("action_time", "action_time >= $as_of + interval 1 day", "date_in_future", as_of_param)
        range_check("dpd_at_action", "dpd_at_action < 0", "dpd_negative")


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
    key_exprs = ["last_day(snapshot_date)" if key == "snapshot_date" else key for key in keys]
    required_keys = [key for key in keys if key != "paid_date"]
    _insert(
        con, table,
        f"select _line, $header, left(loan_id__t, {MAX_VALUE_CHARS}), 'duplicate_key' from ("
        f"select _line, loan_id__t, {' and '.join(f'{key} is not null' for key in required_keys)} as complete, "
        f"count(*) over (partition by {', '.join(key_exprs)}) as n from stg_{table}) where complete and n > 1",
        {"header": header_label(plan, "loan_id")},
    )
    if table == "installments" and {"installment_no", "due_date"} <= present.keys():
        _insert(
            con, table,
            f"select _line, $header, left(due_date__t, {MAX_VALUE_CHARS}), 'inconsistent_schedule' from ("
            f"select _line, due_date__t, count(distinct due_date) over (partition by loan_id, installment_no) as n "
            f"from stg_installments where loan_id is not null and installment_no is not null) where n > 1",
            {"header": header_label(plan, "due_date")},
        )


def build_known_loans(con, loans_plan: StagePlan | None, mode: str) -> None:
    """Create ``known_loans(loan_id, origination_date)``: loans this load keeps plus the database's.

    In quarantine mode only loans rows without errors count; in strict mode every parsed
    loans row counts, so one bad loans row does not also fail its months as unknown loans.
    """
    parts = []
    if loans_plan is not None and "loan_id" in loans_plan.contract():
        origination = "origination_date" if "origination_date" in loans_plan.contract() else "null::date"
        rejected = "and _line not in (select line from err_loans where line is not null)" if mode == "quarantine" else ""
        parts.append(f"select loan_id, {origination} as origination_date, 1 as priority from stg_loans "
                     f"where loan_id is not null {rejected}")
    parts.append("select loan_id, origination_date, 2 as priority from loans")
    con.execute(
        "create or replace temp table known_loans as select loan_id, arg_min(origination_date, priority) "
        f"as origination_date from ({' union all '.join(parts)}) group by loan_id"
    )


def check_references(con, plan: StagePlan) -> None:
    """Check loan ids against known_loans, snapshot months and closed loans."""
    table = plan.table
    present = plan.contract()
    if table == "loans" or "loan_id" not in present:
        return
    header = {"header": header_label(plan, "loan_id")}
    _insert(con, table,
            f"select _line, $header, left(loan_id__t, {MAX_VALUE_CHARS}), 'loan_not_found' from stg_{table} s "
            f"where loan_id is not null and not exists (select 1 from known_loans k where k.loan_id = s.loan_id)",
            header)
    if table == "loan_months" and "snapshot_date" in present:
        _insert(con, table,
                f"select s._line, $header, left(s.snapshot_date__t, {MAX_VALUE_CHARS}), 'snapshot_before_origination' "
                f"from stg_loan_months s join known_loans k on k.loan_id = s.loan_id "
                f"where s.snapshot_date is not null and k.origination_date is not null "
                f"and last_day(s.snapshot_date) < last_day(k.origination_date)",
                {"header": header_label(plan, "snapshot_date")})
        _check_closed_loans(con, plan)


def month_status_sql(plan: StagePlan, alias: str = "") -> str:
    """Return SQL for a loan-month status: the mapped status, else paid_off at zero balance."""
    prefix = f"{alias}." if alias else ""
    present = plan.contract()
    default = (f"case when {prefix}outstanding_principal = 0 and coalesce({prefix}dpd, 0) = 0 "
               f"then 'paid_off' else 'active' end")
    if "status" in present:
        return f"coalesce({prefix}status, {default})"
    return default


def _check_closed_loans(con, plan: StagePlan) -> None:
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
                   s.outstanding_principal, s.snapshot_date__t
            from stg_loan_months s
            where s.loan_id is not null and s.snapshot_date is not null
        ),
        db_rows as (
            select null::bigint as _line, m.loan_id, m.snapshot_date as month_end, m.status,
                   m.outstanding_principal, null as snapshot_date__t
            from loan_months m
            where m.loan_id in (select loan_id from file_rows)
              and m.snapshot_date not in (select month_end from file_rows)
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
        select f._line, f.snapshot_date__t
        from file_rows f
        join first_close c on c.loan_id = f.loan_id
        where f.month_end > c.close_month
          and not (f.status = 'charged_off' and f.outstanding_principal = 0 and c.close_status = 'charged_off')
    """)
    _insert(con, "loan_months",
            f"select _line, $header, left(snapshot_date__t, {MAX_VALUE_CHARS}), 'row_after_close' from lm_close_check",
            {"header": header_label(plan, "snapshot_date")})


def file_level_errors(con, plan: StagePlan) -> None:
    """Record missing and duplicate columns as errors on line 1 (the header)."""
    for rule, column, other in plan.file_errors:
        _insert(con, plan.table, f"select 1, $column, $value, '{rule}'", {"column": column, "value": other or None})
