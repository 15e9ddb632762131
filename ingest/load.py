"""Loading loan tapes: read, stage, validate and write all files in one transaction.

Modes: in ``strict`` mode any error rejects every file, and the only change is one load_log
row per file with result 'rejected'. In ``quarantine`` mode rows without errors load, and
rows with errors go to the ``rejects`` table and a CSV. In both, rows read = rows loaded + rows
rejected + footer rows (footer rows include rows with no values at all).

Idempotency: loans are upserted by loan_id (their attributes replaced); a loan_months file
replaces every row of the snapshot months it contains; an installments file replaces all
installments of its loans (and their derived months); a collection_actions file replaces
the actions with the same (loan_id, action_time).

Demo data: when the database holds the demo portfolio (app_meta 'dataset' = 'demo'), a load
that writes any row first removes every row of the demo loads in the same transaction, so
simulated and real loans never mix; a load that is rejected leaves the demo as it was.
Every load that writes rows sets 'dataset' to 'user'.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable

import duckdb
import pandas as pd

import queries
from ingest import facts, pii, sqlfuncs, validate
from ingest.columns import CONTRACT, TABLES, column_spec
from ingest.mapping import ColumnMapping
from ingest.readers import Source, SourceError, read_source
from ingest.report import EXAMPLES_PER_RULE, FileReport, LoadReport, make_error
from ingest.stage import StagePlan, plan_file, stage_file
from queries import db

logger = logging.getLogger(__name__)

MODES = ("strict", "quarantine")
# DuckDB buffer-pool limit while importing; temp tables beyond it spill to <database>.tmp.
# LOANLENS_IMPORT_MEMORY overrides it (a DuckDB size such as '2GB' or '1500MB').
IMPORT_MEMORY_LIMIT = "3500MB"
FILE_LEVEL_RULES = ("missing_column", "duplicate_column", "encoding_suspect")

_LOAN_COLUMNS = [column.name for column in CONTRACT["loans"]]
_MONTH_COLUMNS = ["loan_id", "snapshot_date", "dpd", "outstanding_principal", "overdue_principal",
                  "overdue_interest", "status", "principal_paid", "interest_paid", "charged_off_amount",
                  "recovered_amount"]
_INSTALLMENT_COLUMNS = [column.name for column in CONTRACT["installments"]]
_ACTION_COLUMNS = [column.name for column in CONTRACT["collection_actions"]]
DATA_TABLES = ("loans", "loan_attributes", "loan_months", "installments", "collection_actions", "rejects")


class UsageError(ValueError):
    """Arguments that cannot describe a load (unknown table, missing loans file, bad mode)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_as_of(as_of) -> dt.date:
    if as_of is None:
        return dt.date.today()
    if isinstance(as_of, dt.datetime):
        return as_of.date()
    if isinstance(as_of, dt.date):
        return as_of
    try:
        return dt.date.fromisoformat(str(as_of))
    except ValueError as error:
        raise UsageError(f"as-of date must be YYYY-MM-DD; got {as_of!r}") from error


def load_files(
    db_path,
    files: dict[str, Path],
    *,
    mode: str = "strict",
    mapping: ColumnMapping | None = None,
    as_of=None,
    progress: Callable[[float, str], None] | None = None,
    display_names: dict[str, str] | None = None,
    rejects_dir=None,
    encoding: str | dict[str, str] | None = None,
) -> LoadReport:
    """Import loan-tape files into the database at ``db_path`` in one transaction.

    Parameters
    ----------
    files
        Table name -> file path. ``loans`` is required unless the database already contains
        loans; ``loan_months`` or ``installments`` is required unless it contains months.
    mode
        'strict' or 'quarantine' (see the module docstring).
    as_of
        Data as-of date (date or 'YYYY-MM-DD'); dates after it are errors. Default: today.
    progress
        Called with (fraction done 0..1, step message).
    display_names
        Table -> file name to report and record instead of the path's name.
    rejects_dir
        Folder for ``rejects-<load ids>.csv`` listing every rejected row; None writes no CSV.
    encoding
        Text encoding of the CSV files (such as 'big5'), for every file or per table; it
        overrides the mapping's ``encoding`` and the automatic detection.

    Raises
    ------
    UsageError
        If the arguments cannot describe a load.
    """
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    unknown = sorted(set(files) - set(TABLES))
    if unknown:
        raise UsageError(f"unknown table(s) {', '.join(unknown)}; use {', '.join(TABLES)}")
    if not files:
        raise UsageError("no files given; pass a loans file, or a loan_months, installments or "
                         "collection_actions file for loans already in the database")
    as_of_date = _parse_as_of(as_of)
    encodings = _check_encodings(encoding, files)
    con = db.connect(db_path)
    try:
        on_demo = db.get_meta(con, "dataset") == "demo"
        # The demo is removed by this load, so its loans and months do not count.
        has_loans = not on_demo and con.execute("select count(*) > 0 from loans").fetchone()[0]
        has_months = not on_demo and con.execute("select count(*) > 0 from loan_months").fetchone()[0]
        if "loans" not in files and not has_loans:
            raise UsageError("a loans file is required because the database contains no loans yet"
                             + (" (the demo portfolio is removed by the first import)" if on_demo else ""))
        if not ({"loan_months", "installments"} & files.keys()) and not has_months and "loans" in files:
            raise UsageError(
                "a loan_months or installments file is required with the loans file, because "
                "the database contains no month-end data yet"
            )
        loader = _Loader(con, {t: Path(p) for t, p in files.items()}, mode, mapping, as_of_date,
                         progress, display_names or {}, rejects_dir, encodings, on_demo)
        with _import_settings(con):
            return loader.run()
    finally:
        con.close()


class _import_settings:
    """Cap DuckDB's memory and drop row-order guarantees for one import, then restore them.

    Both settings belong to the database instance, which other connections in the same
    process (the dashboard) share, so the previous values are put back afterwards. Readers
    that number rows by insertion order turn the order guarantee back on for their read.
    """

    def __init__(self, con):
        self.con = con
        self.previous: dict[str, str] = {}

    def __enter__(self):
        limit = os.environ.get("LOANLENS_IMPORT_MEMORY", IMPORT_MEMORY_LIMIT).strip()
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", limit, re.IGNORECASE):
            raise UsageError(f"LOANLENS_IMPORT_MEMORY must be a size such as 2GB or 1500MB; got {limit!r}")
        for name in ("memory_limit", "preserve_insertion_order"):
            self.previous[name] = str(self.con.execute("select current_setting($name)", {"name": name}).fetchone()[0])
        # SET takes no bound parameters; the limit was checked against a strict pattern above.
        self.con.execute(f"set memory_limit = '{limit}'")
        self.con.execute("set preserve_insertion_order = false")
        return self

    def __exit__(self, *exc_info):
        try:
            self.con.execute(f"set memory_limit = '{self.previous['memory_limit']}'")
            self.con.execute(f"set preserve_insertion_order = {self.previous['preserve_insertion_order']}")
        except duckdb.Error as error:
            logger.warning("could not restore DuckDB settings after the import: %s", error)
        return False


def _check_encodings(encoding, files: dict) -> dict[str, str]:
    """Return table -> Python codec name for the encodings forced by the caller."""
    import codecs

    if encoding is None:
        return {}
    chosen = {table: encoding for table in files} if isinstance(encoding, str) else dict(encoding)
    out = {}
    for table, name in chosen.items():
        if not name:
            continue
        try:
            out[table] = codecs.lookup(name).name
        except LookupError as error:
            raise UsageError(f"unknown encoding {name!r}; use a name such as utf-8, gb18030 or big5") from error
    return out


class _Loader:
    def __init__(self, con, files, mode, mapping, as_of, progress, display_names, rejects_dir,
                 encodings=None, on_demo=False):
        self.con = con
        self.files = {table: files[table] for table in TABLES if table in files}
        self.mode = mode
        self.mapping = mapping
        self.as_of = as_of
        self.progress = progress
        self.display_names = display_names
        self.rejects_dir = Path(rejects_dir) if rejects_dir else None
        self.encodings = encodings or {}
        self.on_demo = on_demo
        self.report = LoadReport(ok=False, mode=mode, as_of=as_of.isoformat())
        self.plans: dict[str, StagePlan] = {}
        self.sources: dict[str, Source] = {}
        self.file_reports: dict[str, FileReport] = {}
        self.source_errors: dict[str, SourceError] = {}
        self.started = dt.datetime.now()
        self.steps_done = 0
        self.steps_total = 3 * len(self.files) + 2

    def step(self, message: str) -> None:
        self.steps_done += 1
        logger.info(message)
        if self.progress:
            self.progress(min(self.steps_done / self.steps_total, 1.0), message)

    # ------------------------------------------------------------ phases

    def run(self) -> LoadReport:
        clock = time.perf_counter()
        sqlfuncs.install(self.con)
        secret = pii.hmac_params()
        with tempfile.TemporaryDirectory(prefix="loanlens-ingest-") as temp_dir:
            try:
                for table, path in self.files.items():
                    self._read_and_stage(table, path, secret, Path(temp_dir))
                self._validate()
                self.step("validated")
                any_error = bool(self.report.counts_by_rule)
                if any_error and self.mode == "strict":
                    self._record_attempt("rejected")
                    self.report.ok = False
                else:
                    self._write()
                    self.report.ok = True
                self._write_rejects_csv()
            finally:
                for source in self.sources.values():
                    source.cleanup()
        self.report.files = list(self.file_reports.values())
        self.report.seconds = round(time.perf_counter() - clock, 3)
        self.step("done")
        for error in self._first_error_per_rule():
            logger.warning("%s (%s errors of rule %s)", error.message_en,
                           self.report.counts_by_rule.get(error.rule, 0), error.rule)
        if self.report.files_rejected:
            logger.warning("files rejected in full: %s", ", ".join(self.report.files_rejected))
        logger.info("load %s in %.1f s: %s", "succeeded" if self.report.ok else "rejected",
                    self.report.seconds, self.report.counts_by_rule or "no errors")
        return self.report

    def _first_error_per_rule(self) -> list:
        seen, out = set(), []
        for error in self.report.errors:
            if error.rule not in seen:
                seen.add(error.rule)
                out.append(error)
        return out

    def _name(self, table: str) -> str:
        return self.display_names.get(table) or self.files[table].name

    def _read_and_stage(self, table: str, path: Path, secret: dict, temp_dir: Path) -> None:
        report = FileReport(self._name(table), table)
        self.file_reports[table] = report
        sheet = self.mapping.sheet(table) if self.mapping else None
        forced = self.encodings.get(table) or (self.mapping.encoding(table) if self.mapping else None)
        try:
            source = read_source(self.con, path, f"raw_{table}", sheet=sheet, temp_dir=temp_dir,
                                 encoding=forced)
        except SourceError as error:
            self.source_errors[table] = error
            if path.is_file():
                report.sha256 = _sha256(path)
            self.step(f"{table}: {error}")
            return
        self.sources[table] = source
        report.sha256 = source.sha256 or _sha256(path)
        report.file_format = source.file_format
        report.encoding = source.encoding
        report.delimiter = source.delimiter
        report.sheet = source.sheet
        report.rows_read = source.rows
        self.step(f"read {report.file_name}: {source.rows} rows")

        plan = plan_file(self.con, table, source, self.mapping)
        self.plans[table] = plan
        if source.encoding_suspect and not any(column.matched_by in ("alias", "mapping") for column in plan.columns):
            # Garbled headers: report the likely cause instead of only the missing columns.
            plan.file_errors.insert(0, ("encoding_suspect", "", source.encoding or ""))
        for column in plan.columns:
            if column.matched_by == "free_text":
                report.columns_free_text.append(column.header)
            if column.target == "attribute":
                report.columns_attributes.append(column.header)
            elif column.target.startswith("pii:") or column.target == "ignore":
                report.columns_personal[column.header] = column.target
            else:
                report.columns_mapped[column.header] = column.target
                if column_spec(table, column.target).kind == "hash":
                    report.columns_personal[column.header] = "pii:hash"
        report.rate_scale = {name: ("percent" if percent else "fraction")
                             for name, percent in plan.rate_percent.items()}
        footer = stage_file(self.con, plan, source, self.mapping, secret)
        report.footer_rows = footer["footer_rows"] + footer["blank_rows"]
        report.warnings.extend(warning.text("en") for warning in plan.warnings)
        report.warnings_zh.extend(warning.text("zh") for warning in plan.warnings)
        if table != "loans" and plan.attributes():
            report.columns_not_stored = [column.header for column in plan.attributes()]
            logger.warning("%s: unmatched columns not stored (only loans keeps attributes): %s",
                           report.file_name, ", ".join(report.columns_not_stored))
        report.footer_lines = footer["footer_lines"]
        self.step(f"parsed {report.file_name}")

    def _validate(self) -> None:
        for table in self.files:
            validate.create_error_table(self.con, table)
            if table in self.source_errors:
                continue
            plan = self.plans[table]
            validate.check_rows(self.con, plan, self.as_of)
            validate.check_keys(self.con, plan)
            validate.file_level_errors(self.con, plan)
        validate.build_known_loans(self.con, self.plans.get("loans"), self.mode, use_database=not self.on_demo)
        for table in self.files:
            if table in self.plans and not self._file_rejected(table):
                validate.check_references(self.con, self.plans[table], use_database=not self.on_demo)
            if table in self.plans:
                validate.fill_error_values(self.con, table)

        for table in self.files:
            report = self.file_reports[table]
            if table in self.source_errors:
                error = self.source_errors[table]
                report.counts_by_rule = {error.rule: 1}
                self.report.errors.append(make_error(report.file_name, None, "", error.detail or None, error.rule))
                self._add_counts(report.counts_by_rule)
                continue
            counts = dict(self.con.execute(
                f"select rule, count(*) from err_{table} group by rule order by rule").fetchall())
            report.counts_by_rule = counts
            self._add_counts(counts)
            examples = self.con.execute(
                f"select line, column_name, value, rule from (select *, row_number() over "
                f"(partition by rule order by line, column_name) as n from err_{table}) "
                f"where n <= {EXAMPLES_PER_RULE} order by rule, line"
            ).fetchall()
            for line, column, value, rule in examples:
                self.report.errors.append(make_error(report.file_name, line, column, value, rule))
            if self._file_rejected(table):
                self.con.execute(f"create or replace temp table rej_{table} as select _line as line from stg_{table}")
            else:
                self.con.execute(f"create or replace temp table rej_{table} as select distinct line from err_{table} "
                                 f"where line is not null")
            rejected = self.con.execute(f"select count(*) from rej_{table}").fetchone()[0]
            staged = self.con.execute(f"select count(*) from stg_{table}").fetchone()[0]
            report.rows_rejected = rejected
            report.rows_loaded = staged - rejected
            report.file_amount_totals = self._amount_totals(table, f"stg_{table}")

    def _add_counts(self, counts: dict[str, int]) -> None:
        for rule, count in counts.items():
            self.report.counts_by_rule[rule] = self.report.counts_by_rule.get(rule, 0) + count

    def _file_rejected(self, table: str) -> bool:
        plan = self.plans.get(table)
        return plan is not None and any(rule in FILE_LEVEL_RULES for rule, _, _ in plan.file_errors)

    def _amount_totals(self, table: str, relation: str) -> dict[str, str]:
        plan = self.plans[table]
        names = [name for name in plan.contract() if column_spec(table, name).kind == "amount"]
        if not names:
            return {}
        row = self.con.execute(
            f"select {', '.join(f'coalesce(sum({name}), 0)::decimal(38, 2)' for name in names)} from {relation}"
        ).fetchone()
        return {name: format(value, "f") for name, value in zip(names, row)}

    # ------------------------------------------------------------ writing

    def _record_attempt(self, result: str, message: str | None = None) -> None:
        """Insert one load_log row per file for a load that changed no data."""
        finished = dt.datetime.now()
        for table, report in self.file_reports.items():
            load_id = self.con.execute("select nextval('load_id_seq')").fetchone()[0]
            report.load_id = load_id
            self.report.load_ids[table] = load_id
            report.rows_loaded = 0
            report.rows_rejected = report.rows_read - report.footer_rows
            report.result = result
            self.con.execute(
                "insert into load_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null)",
                [load_id, table, report.file_name, report.sha256 or "", self.mode, report.encoding,
                 self.started, finished, report.rows_read, 0, report.rows_rejected, report.footer_rows,
                 None, json.dumps(report.file_amount_totals, ensure_ascii=False), result,
                 message or json.dumps(report.counts_by_rule, ensure_ascii=False)],
            )

    def _writes_rows(self) -> bool:
        return any(self.file_reports[table].rows_loaded > 0 for table in self.plans
                   if not self._file_rejected(table))

    def _remove_demo(self) -> None:
        """Delete every row of the demo loads and mark them removed (inside the transaction)."""
        con = self.con
        ids = [row[0] for row in con.execute(
            "select load_id from load_log where mode = 'demo' and result = 'loaded'").fetchall()]
        loans = con.execute("select count(*) from loans where list_contains($ids, load_id)",
                            {"ids": ids}).fetchone()[0]
        for table in DATA_TABLES:
            con.execute(f"delete from {table} where list_contains($ids, load_id)", {"ids": ids})
        con.execute("update load_log set result = 'removed', removed_at = now()::timestamp "
                    "where list_contains($ids, load_id)", {"ids": ids})
        self.report.demo_removed = True
        self.report.demo_loans_removed = loans
        logger.info("removed the demo portfolio before the import: %s loans (loads %s)", loans, ids)

    def _write(self) -> None:
        con = self.con
        writes = self._writes_rows()
        con.execute("begin transaction")
        try:
            if self.on_demo and writes:
                self._remove_demo()
            for table in self.files:
                if table not in self.plans or self._file_rejected(table):
                    continue
                load_id = con.execute("select nextval('load_id_seq')").fetchone()[0]
                self.file_reports[table].load_id = load_id
                self.report.load_ids[table] = load_id
                if self.file_reports[table].rows_rejected:
                    con.execute(f"create or replace temp view acc_{table} as select * from stg_{table} "
                                f"where _line not in (select line from rej_{table})")
                else:
                    con.execute(f"create or replace temp view acc_{table} as select * from stg_{table}")
                getattr(self, f"_write_{table}")(load_id)
                self.step(f"wrote {table}")
            if "installments" in self.report.load_ids and "loan_months" not in self.files:
                load_id = self.report.load_ids["installments"]
                queries.execute(con, "ingest_delete_derived_months", {"load_id": load_id})
                queries.execute(con, "ingest_derive_months", {"load_id": load_id, "as_of": self.as_of})
                derived = con.execute("select count(*) from loan_months where load_id = ?", [load_id]).fetchone()[0]
                self.file_reports["installments"].derived_months = derived
            if "collection_actions" in self.report.load_ids:
                queries.execute(con, "ingest_fill_action_dpd", {"load_id": self.report.load_ids["collection_actions"]})
            self._insert_log_rows()
            if self.mode == "quarantine":
                self._insert_rejects()
            if writes:
                db.set_meta(con, "dataset", "user")
                self.step("rebuilding fact tables")
                facts.rebuild(con)
            con.execute("commit")
        except Exception as error:
            con.execute("rollback")
            logger.exception("load failed and was rolled back")
            self.report.load_ids = {}
            self.report.demo_removed = False
            self.report.demo_loans_removed = 0
            self._record_attempt("failed", f"{type(error).__name__}: {error}")
            raise

    def _insert_log_rows(self) -> None:
        finished = dt.datetime.now()
        for table, report in self.file_reports.items():
            load_id = report.load_id
            if load_id is None:
                load_id = self.con.execute("select nextval('load_id_seq')").fetchone()[0]
                report.load_id = load_id
                self.report.load_ids[table] = load_id
                report.rows_loaded = 0
                report.rows_rejected = report.rows_read - report.footer_rows
            nothing_loaded = report.rows_loaded == 0 and report.rows_read > report.footer_rows
            result = "rejected" if table in self.source_errors or nothing_loaded else "loaded"
            report.result = result
            self.con.execute(
                "insert into load_log values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null)",
                [load_id, table, report.file_name, report.sha256 or "", self.mode, report.encoding,
                 self.started, finished, report.rows_read, report.rows_loaded, report.rows_rejected,
                 report.footer_rows, ",".join(report.months_replaced) or None,
                 json.dumps(report.amount_totals, ensure_ascii=False), result,
                 json.dumps(report.counts_by_rule, ensure_ascii=False) if report.counts_by_rule else None],
            )

    def _columns(self, table: str) -> set[str]:
        return {row[0] for row in self.con.execute(f"describe stg_{table}").fetchall()}

    def _set_loaded_totals(self, table: str) -> None:
        report = self.file_reports[table]
        if report.rows_rejected:
            report.amount_totals = self._amount_totals(table, f"acc_{table}")
        else:
            report.amount_totals = dict(report.file_amount_totals)

    def _write_loans(self, load_id: int) -> None:
        con = self.con
        staged = self._columns("loans")
        expressions = []
        for name in _LOAN_COLUMNS:
            expression = name if name in staged else "null"
            if name == "borrower_age" and "_id_birth" in staged:
                expression = f"coalesce({expression}, ll_age_at(_id_birth, origination_date))"
            if name == "borrower_gender" and "_id_gender" in staged:
                expression = f"coalesce({expression}, _id_gender)"
            expressions.append(f"{expression} as {name}")
        con.execute("delete from loans where loan_id in (select loan_id from acc_loans)")
        con.execute(f"insert into loans ({', '.join(_LOAN_COLUMNS)}, load_id) "
                    f"select {', '.join(expressions)}, $load_id from acc_loans", {"load_id": load_id})
        con.execute("delete from loan_attributes where loan_id in (select loan_id from acc_loans)")
        plan = self.plans["loans"]
        for column in plan.columns:
            if column.target == "attribute":
                value = f"a{column.index}"
            elif column.target == "pii:hash":
                value = f"h{column.index}"
            else:
                continue
            con.execute(f"insert into loan_attributes select loan_id, $header, {value}, $load_id "
                        f"from acc_loans where {value} is not null",
                        {"header": column.header, "load_id": load_id})
        self._set_loaded_totals("loans")

    def _write_loan_months(self, load_id: int) -> None:
        con = self.con
        staged = self._columns("loan_months")
        plan = self.plans["loan_months"]
        expressions = []
        for name in _MONTH_COLUMNS:
            if name == "snapshot_date":
                expressions.append("last_day(snapshot_date)")
            elif name == "status":
                expressions.append(validate.month_status_sql(plan))
            else:
                expressions.append(name if name in staged else "null")
        con.execute("create or replace temp table months_replaced as "
                    "select distinct last_day(snapshot_date) as m from acc_loan_months")
        months = [row[0] for row in con.execute("select m from months_replaced order by m").fetchall()]
        # Rows of these months that belong to loans not in this file are replaced too (dropped).
        self.file_reports["loan_months"].rows_replaced_other_loans = con.execute(
            "select count(*) from loan_months lm where lm.snapshot_date in (select r.m from months_replaced r) "
            "and not exists (select 1 from acc_loan_months a where a.loan_id = lm.loan_id)").fetchone()[0]
        con.execute("delete from loan_months where snapshot_date in (select m from months_replaced)")
        con.execute(f"insert into loan_months ({', '.join(_MONTH_COLUMNS)}, is_derived, load_id) "
                    f"select {', '.join(expressions)}, false, $load_id from acc_loan_months", {"load_id": load_id})
        self.file_reports["loan_months"].months_replaced = [month.strftime("%Y-%m") for month in months]
        self._set_loaded_totals("loan_months")

    def _write_installments(self, load_id: int) -> None:
        con = self.con
        staged = self._columns("installments")
        expressions = [name if name in staged else "null" for name in _INSTALLMENT_COLUMNS]
        con.execute("delete from installments where loan_id in (select distinct loan_id from acc_installments)")
        con.execute(f"insert into installments ({', '.join(_INSTALLMENT_COLUMNS)}, load_id) "
                    f"select {', '.join(expressions)}, $load_id from acc_installments", {"load_id": load_id})
        self._set_loaded_totals("installments")

    def _write_collection_actions(self, load_id: int) -> None:
        con = self.con
        staged = self._columns("collection_actions")
        expressions = [name if name in staged else "null" for name in _ACTION_COLUMNS]
        con.execute("delete from collection_actions c where exists (select 1 from acc_collection_actions a "
                    "where a.loan_id = c.loan_id and a.action_time = c.action_time)")
        con.execute(f"insert into collection_actions (action_id, {', '.join(_ACTION_COLUMNS)}, load_id) "
                    f"select _line, {', '.join(expressions)}, $load_id from acc_collection_actions",
                    {"load_id": load_id})
        self._set_loaded_totals("collection_actions")

    def _raw_row_sql(self, table: str) -> tuple[str, dict]:
        """Return SQL for the cleaned row as JSON (no personal data) and its bound keys."""
        plan = self.plans[table]
        parts, params = [], {}
        for column in plan.columns:
            if column.target in plan.contract() and plan.contract()[column.target] is column:
                kind = column_spec(table, column.target).kind
                value = f"s.{column.target}" if kind == "hash" else f"r.{column.source}"
            elif column.target == "attribute":
                value = f"s.a{column.index}"
            elif column.target == "pii:hash":
                value = f"s.h{column.index}"
            else:
                continue
            key = f"k{column.index}"
            params[key] = column.header
            parts.append(f"${key}, {value}")
        if not parts:
            return "null", {}
        return f"json_object({', '.join(parts)})::varchar", params

    def _insert_rejects(self) -> None:
        """Insert one rejects row per error (a row with two errors appears twice)."""
        for table, report in self.file_reports.items():
            if table not in self.plans:
                continue
            raw_sql, params = self._raw_row_sql(table)
            rules = [rule for rule in report.counts_by_rule]
            for rule in rules:
                templates = {
                    "en": _reason_template(rule, "en"), "zh": _reason_template(rule, "zh"),
                }
                reason = ("replace(replace(replace(replace($tmpl_{lang}, '{{file}}', $file), '{{line}}', "
                          "coalesce(e.line::varchar, '-')), '{{column}}', coalesce(e.column_name, '-')), "
                          "'{{value}}', coalesce(e.value, ''))")
                self.con.execute(
                    f"insert into rejects select $load_id, $table, $file, e.line, e.column_name, e.value, e.rule, "
                    f"{reason.format(lang='en')}, {reason.format(lang='zh')}, {raw_sql} "
                    f"from err_{table} e left join stg_{table} s on s._line = e.line "
                    f"left join raw_{table} r on r._line = e.line where e.rule = $rule",
                    {"load_id": report.load_id, "table": table, "file": report.file_name, "rule": rule,
                     "tmpl_en": templates["en"], "tmpl_zh": templates["zh"], **params},
                )
            if self._file_rejected(table):
                self.con.execute(
                    f"insert into rejects select $load_id, $table, $file, s._line, null, null, 'file_rejected', "
                    f"$en, $zh, {raw_sql} from stg_{table} s join raw_{table} r on r._line = s._line",
                    {"load_id": report.load_id, "table": table, "file": report.file_name,
                     "en": "The whole file was rejected because of a file-level error (see line 1).",
                     "zh": "由于文件级错误（见第 1 行），整个文件被拒绝。", **params},
                )

    def _write_rejects_csv(self) -> None:
        if self.rejects_dir is None or not self.report.counts_by_rule:
            return
        self.rejects_dir.mkdir(parents=True, exist_ok=True)
        ids = "-".join(str(value) for value in self.report.load_ids.values()) or "none"
        path = self.rejects_dir / f"rejects-{ids}.csv"
        frames = []
        for table, report in self.file_reports.items():
            if table not in self.plans:
                continue
            raw_sql, params = self._raw_row_sql(table)
            frame = self.con.execute(
                f"select $table as table_name, $file as file_name, e.line as line_no, e.column_name, e.value, "
                f"e.rule, {raw_sql} as raw_row from err_{table} e left join stg_{table} s on s._line = e.line "
                f"left join raw_{table} r on r._line = e.line "
                f"order by e.line, e.rule",
                {"table": table, "file": report.file_name, **params},
            ).df()
            frames.append(frame)
        table_frame = pd.concat(frames) if frames else pd.DataFrame()
        if not table_frame.empty:
            errors = [make_error(f, line, column, value, rule)
                      for f, line, column, value, rule in zip(table_frame.file_name, table_frame.line_no,
                                                              table_frame.column_name, table_frame.value,
                                                              table_frame.rule)]
            table_frame["reason_en"] = [error.message_en for error in errors]
            table_frame["reason_zh"] = [error.message_zh for error in errors]
            table_frame["fix_en"] = [error.fix_en for error in errors]
            table_frame["fix_zh"] = [error.fix_zh for error in errors]
        table_frame.to_csv(path, index=False, encoding="utf-8-sig", quoting=csv.QUOTE_MINIMAL)
        self.report.rejects_csv = str(path)


def _reason_template(rule: str, lang: str) -> str:
    import messages

    keep = {"file": "{file}", "line": "{line}", "column": "{column}", "value": "{value}"}
    return (messages.t(f"ingest.rule.{rule}.message", lang, **keep) + " "
            + messages.t(f"ingest.rule.{rule}.fix", lang, **keep))


def remove_load(db_path, load_id: int) -> int:
    """Delete every row written by one load and mark it removed in load_log; return rows removed."""
    con = db.connect(db_path)
    try:
        con.execute("begin transaction")
        removed = 0
        for table in ("loans", "loan_attributes", "loan_months", "installments", "collection_actions"):
            count = con.execute(f"select count(*) from {table} where load_id = ?", [load_id]).fetchone()[0]
            con.execute(f"delete from {table} where load_id = ?", [load_id])
            removed += count
        con.execute("update load_log set result = 'removed', removed_at = now()::timestamp where load_id = ?",
                    [load_id])
        facts.rebuild(con)
        con.execute("commit")
        logger.info("removed load %s: %s rows", load_id, removed)
        return removed
    finally:
        con.close()


def list_loads(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Return the load log, newest first."""
    return con.execute("select * from load_log order by started_at desc, load_id desc").df()
