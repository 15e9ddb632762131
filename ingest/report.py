"""The import report: per-file counts, validation errors with bilingual texts, totals."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import messages

# Errors kept per rule in the report and its JSON; counts are always complete.
EXAMPLES_PER_RULE = 200


@dataclass
class ValidationError:
    """One failed check on one source cell (line 1 is the header; None = whole file)."""

    file: str
    line: int | None
    column: str
    value: str | None
    rule: str
    message_en: str
    message_zh: str
    fix_en: str
    fix_zh: str


def make_error(file: str, line, column: str, value, rule: str) -> ValidationError:
    """Build a ValidationError with its catalog texts filled in."""
    values = {"file": file, "line": line if line is not None else "-", "column": column or "-",
              "value": "" if value is None else value}
    return ValidationError(
        file, line, column, value, rule,
        messages.t(f"ingest.rule.{rule}.message", "en", **values),
        messages.t(f"ingest.rule.{rule}.message", "zh", **values),
        messages.t(f"ingest.rule.{rule}.fix", "en", **values),
        messages.t(f"ingest.rule.{rule}.fix", "zh", **values),
    )


@dataclass
class FileReport:
    """Outcome of importing one input file: counts, columns, totals and warnings."""

    file_name: str
    table: str
    file_format: str = ""
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    sha256: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    footer_rows: int = 0
    footer_lines: list[int] = field(default_factory=list)
    columns_mapped: dict[str, str] = field(default_factory=dict)
    columns_attributes: list[str] = field(default_factory=list)
    # Unmatched columns of loan_months, installments and collection_actions files: only the
    # loans file has an attribute table, so these values are read but not stored.
    columns_not_stored: list[str] = field(default_factory=list)
    columns_personal: dict[str, str] = field(default_factory=dict)
    # Free-text columns (备注, remarks ...) dropped as personal data; also in columns_personal.
    columns_free_text: list[str] = field(default_factory=list)
    rate_scale: dict[str, str] = field(default_factory=dict)
    amount_totals: dict[str, str] = field(default_factory=dict)
    file_amount_totals: dict[str, str] = field(default_factory=dict)
    months_replaced: list[str] = field(default_factory=list)
    # Rows of the replaced months that belonged to loans not in this file (now deleted).
    rows_replaced_other_loans: int = 0
    derived_months: int = 0
    warnings: list[str] = field(default_factory=list)  # English texts
    warnings_zh: list[str] = field(default_factory=list)  # the same warnings in Chinese
    load_id: int | None = None
    counts_by_rule: dict[str, int] = field(default_factory=dict)
    result: str = ""  # load_log result: 'loaded', or 'rejected' when no row of the file loaded


@dataclass
class LoadReport:
    """The outcome of one ``load_files`` call."""

    ok: bool
    mode: str
    as_of: str = ""
    load_ids: dict[str, int] = field(default_factory=dict)
    files: list[FileReport] = field(default_factory=list)
    errors: list[ValidationError] = field(default_factory=list)
    counts_by_rule: dict[str, int] = field(default_factory=dict)
    rejects_csv: str | None = None
    seconds: float = 0.0
    # True when this load removed the demo portfolio first (see ingest.load), with its loan count.
    demo_removed: bool = False
    demo_loans_removed: int = 0

    @property
    def files_rejected(self) -> list[str]:
        """Names of the files of which no row loaded (unreadable, file-level error, every row bad)."""
        return [report.file_name for report in self.files if report.result == "rejected"]

    def to_dict(self) -> dict:
        """Return a JSON-ready dict of the whole report."""
        data = asdict(self)
        data["files_rejected"] = self.files_rejected
        data["errors_shown"] = len(self.errors)
        data["errors_total"] = sum(self.counts_by_rule.values())
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, default=str)

    def write_json(self, path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    def summary(self, lang: str = "zh") -> str:
        """Return a short human-readable summary in ``lang`` ('zh' or 'en')."""
        if not self.ok:
            key = "ingest.summary.rejected"
        elif self.files_rejected:
            key = "ingest.summary.partly_rejected"
        else:
            key = "ingest.summary.ok"
        lines = [messages.t(key, lang, mode=self.mode, files=", ".join(self.files_rejected))]
        if self.demo_removed:
            lines.append(messages.t("ingest.summary.demo_removed", lang, loans=f"{self.demo_loans_removed:,}"))
        failed = [report.file_name for report in self.files if report.counts_by_rule]
        for report in self.files:
            lines.append(messages.t(
                "ingest.summary.file", lang, file=report.file_name, table=report.table,
                read=report.rows_read, loaded=report.rows_loaded, rejected=report.rows_rejected,
                footer=report.footer_rows, encoding=report.encoding or report.file_format or "-",
            ))
            for rule, count in sorted(report.counts_by_rule.items()):
                lines.append(messages.t("ingest.summary.rule", lang, rule=rule, count=count))
            if report.rows_rejected and not report.counts_by_rule and failed:
                lines.append(messages.t("ingest.summary.not_loaded_other_file", lang, files=", ".join(failed)))
            for warning in (report.warnings_zh if lang == "zh" else report.warnings):
                lines.append(f"  ! {warning}")
            if report.rows_replaced_other_loans and report.months_replaced:
                key = "ingest.summary.months_other_loans" if len(report.months_replaced) > 1 \
                    else "ingest.summary.month_other_loans"
                lines.append(messages.t(key, lang, first=report.months_replaced[0],
                                        months=len(report.months_replaced),
                                        rows=f"{report.rows_replaced_other_loans:,}"))
            if report.columns_not_stored:
                lines.append(messages.t("ingest.summary.not_stored", lang,
                                        columns=", ".join(report.columns_not_stored)))
            if report.columns_personal:
                columns = ", ".join(f"{name} -> {action}" for name, action in report.columns_personal.items())
                lines.append(messages.t("ingest.summary.personal", lang, columns=columns))
            if report.columns_free_text:
                lines.append(messages.t("ingest.summary.free_text", lang, columns=", ".join(report.columns_free_text)))
        shown = 0
        for error in self.errors:
            if shown >= 10:
                break
            message = error.message_zh if lang == "zh" else error.message_en
            fix = error.fix_zh if lang == "zh" else error.fix_en
            lines.append(f"  - {message} {fix}")
            shown += 1
        if self.rejects_csv:
            lines.append(messages.t("ingest.summary.rejects_csv", lang, path=self.rejects_csv))
        return "\n".join(lines)
