"""Page 数据导入: upload loan-tape files, check the column mapping, validate and load.

Flow: choose a saved mapping profile (optional), upload files and choose the table of
each, review the preview and the proposed mapping (editable, savable as a profile), then
load in strict or quarantine mode. Past loads are listed from load_log, and
the data of one load can be removed so that a bad month can be replaced.

Loading uses ``ingest.api.load_files``, which opens its own read-write connection, so the
page first closes the dashboard's read-only connection through
``common.exclusive_access()``; that also clears cached query results afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from analysis import export
from dashboard import common, upload_errors
from queries import db

logger = logging.getLogger(__name__)

from ingest import api
from ingest.columns import CONTRACT, TABLES, normalise_header
from ingest.mapping import SPECIAL_TARGETS, ColumnMapping, MappingError, TableMapping
from messages import format as fmt, has_key

# Mapping profiles: TOML files, the same format as `python -m ingest load --mapping`.
MAPPINGS_ENV = "LOANLENS_MAPPINGS"
PROFILE_NAME = re.compile(r"^[\w\-]{1,64}$")
UPLOAD_TYPES = ["csv", "tsv", "txt", "xlsx", "parquet"]
PREVIEW_ROWS = 20
EXAMPLES_PER_RULE = 5
HEADERS_SHOWN = 30

# File-name keywords that suggest the table of an upload (checked in this order).
TABLE_HINTS = (
    ("collection_actions", ("collection", "催收")),
    ("installments", ("installment", "instalment", "还款计划", "还款流水", "repay", "lp")),
    ("loan_months", ("loan_month", "month", "月末", "余额", "逾期明细", "台账", "snapshot")),
    ("loans", ("loan", "借据", "放款", "贷款")),
)

STATE_MAPPING = "imp_profile_mapping"
STATE_REPORT = "imp_report"


def mappings_dir() -> Path:
    """Return the mapping-profile folder: $LOANLENS_MAPPINGS, else data/mappings/."""
    configured = os.environ.get(MAPPINGS_ENV)
    if configured:
        return Path(configured).expanduser()
    return db.REPO_ROOT / "data" / "mappings"


def guess_table(file_name: str) -> str:
    """Return the table a file name suggests, 'loans' when nothing matches."""
    lowered = file_name.lower()
    for table, hints in TABLE_HINTS:
        if any(hint in lowered for hint in hints):
            return table
    return "loans"


def _save_upload(upload, folder: Path) -> Path:
    """Write an uploaded file into ``folder`` (this script run's temporary folder)."""
    safe_name = re.sub(r"[^\w.\-]", "_", upload.name)
    path = folder / f"{upload.file_id}_{safe_name}"
    path.write_bytes(upload.getvalue())
    return path


@st.cache_data(show_spinner=False, max_entries=32)
def _preview(file_id: str, size: int, table: str, sheet: str | None, _path: Path):
    """Preview one upload with automatic matching only; cached by upload id, table and sheet.

    The profile is left out on purpose: its overrides are applied in the mapping editor, and
    the automatic proposal is what tells which columns hold personal data.
    """
    return api.preview_file(_path, table, None, sheet=sheet, n_rows=PREVIEW_ROWS)


# --- step 1: mapping profile -----------------------------------------------------------


def _render_profile() -> ColumnMapping:
    """Let the user pick a saved profile; return its mapping (empty when none)."""
    st.subheader(common.tr("data_import.step_profile"))
    folder = mappings_dir()
    names = sorted(path.stem for path in folder.glob("*.toml")) if folder.is_dir() else []
    none_label = common.tr("data_import.profile_none")
    choice = common.language_selectbox(
        common.tr("data_import.profile_select"),
        [None, *names],
        "imp_profile",
        format_func=lambda name: none_label if name is None else name,
    )
    st.caption(common.tr("data_import.profile_dir", path=folder))
    if choice is None:
        return ColumnMapping()
    try:
        return api.load_mapping(folder / f"{choice}.toml")
    except (MappingError, OSError) as error:
        st.error(common.tr("data_import.profile_invalid", name=choice, error=error))
        return ColumnMapping()


def _save_profile(mapping: ColumnMapping) -> None:
    left, right = st.columns([3, 1])
    name = left.text_input(common.tr("data_import.profile_name"), key="imp_profile_name")
    right.write("")
    if right.button(common.tr("data_import.profile_save"), key="imp_profile_save"):
        name = name.strip()
        if not PROFILE_NAME.match(name):
            st.error(common.tr("data_import.profile_bad_name", name=name))
            return
        folder = mappings_dir()
        folder.mkdir(parents=True, exist_ok=True)
        api.save_mapping(mapping, folder / f"{name}.toml")
        logger.info("saved mapping profile %s", folder / f"{name}.toml")
        st.success(common.tr("data_import.profile_saved", name=name))


# --- step 2: uploads, preview and mapping ------------------------------------------------


def _target_options(table: str) -> list[str]:
    return [column.name for column in CONTRACT[table]] + list(SPECIAL_TARGETS)


def _mapping_editor(upload, table: str, preview, profile: ColumnMapping) -> dict[str, str]:
    """Draw the editable header -> target table; return the chosen targets by header."""
    overrides = profile.header_overrides(table)  # normalised header -> target
    rows = []
    for header in preview.headers:
        sample = None
        if header in preview.rows.columns:
            values = preview.rows[header].dropna()
            sample = str(values.iloc[0]) if len(values) else None
        override = overrides.get(normalise_header(header)[0])
        target = override or preview.proposed.get(header) or "attribute"
        rows.append({"header": header, "sample": sample, "target": target})
    frame = pd.DataFrame(rows, columns=["header", "sample", "target"])

    st.markdown(common.tr("data_import.mapping_title"))
    edited = st.data_editor(
        frame,
        column_config={
            "header": st.column_config.TextColumn(common.tr("data_import.col_header"), disabled=True),
            "sample": st.column_config.TextColumn(common.tr("data_import.col_sample"), disabled=True),
            "target": st.column_config.SelectboxColumn(
                common.tr("data_import.col_target"), options=_target_options(table), required=True
            ),
        },
        hide_index=True,
        num_rows="fixed",
        key=f"imp_map_{upload.file_id}_{table}",
        width="stretch",
    )
    chosen = {row["header"]: row["target"] for row in edited.to_dict("records") if row["target"]}

    # A column the import detects as personal data may be dropped or hashed, never kept in
    # clear, so a profile entry or an edit that maps it elsewhere is undone.
    kept_in_clear = [
        header
        for header, target in chosen.items()
        if str(preview.proposed.get(header, "")).startswith("pii:") and not target.startswith("pii:")
    ]
    for header in kept_in_clear:
        chosen[header] = preview.proposed[header]
    if kept_in_clear:
        st.warning(common.tr("data_import.pii_kept", columns=", ".join(kept_in_clear)))

    required = [column.name for column in CONTRACT[table] if column.required]
    missing = [column for column in required if column not in chosen.values()]
    if missing:
        st.warning(common.tr("data_import.missing_required", columns=", ".join(missing)))
    return chosen


def _render_uploads(
    profile: ColumnMapping, folder: Path
) -> tuple[dict[str, Path], dict[str, str], ColumnMapping, list[str]]:
    """Draw the uploader and one preview per file, saving each upload into ``folder``.

    Returns the files by table, their display names, the mapping to load with, and the
    tables chosen for more than one file.
    """
    st.subheader(common.tr("data_import.step_upload"))
    limit_mb = st.get_option("server.maxUploadSize")
    st.caption(common.tr("data_import.upload_limit", mb=limit_mb))
    uploads = st.file_uploader(
        common.tr("data_import.uploader"), type=UPLOAD_TYPES, accept_multiple_files=True, key="imp_files"
    )
    mapping = ColumnMapping(tables={name: TableMapping(**vars(part)) for name, part in profile.tables.items()})
    for part in mapping.tables.values():
        part.columns = dict(part.columns)
    files: dict[str, Path] = {}
    names: dict[str, str] = {}
    duplicates: list[str] = []
    table_labels = {table: common.tr(f"data_import.table.{table}") for table in TABLES}
    for upload in uploads or []:
        with st.container(border=True):
            name = f"imp_table_{upload.file_id}"
            st.session_state.setdefault(name, guess_table(upload.name))
            table = common.language_selectbox(
                common.tr("data_import.table_for", name=upload.name),
                list(TABLES),
                name,
                format_func=table_labels.__getitem__,
            )
            path = _save_upload(upload, folder)
            if table in files:
                duplicates.append(table)
            files[table] = path
            names[table] = upload.name
            try:
                preview = _preview(upload.file_id, upload.size, table, profile.sheet(table), path)
            except (ValueError, OSError, duckdb.Error) as error:
                logger.info("preview of %s failed: %s", upload.name, error)
                message = upload_errors.error_text(error, {table: path}, {table: upload.name}, common.lang())
                st.error(common.tr("data_import.preview_failed", error=message))
                continue
            st.caption(
                common.tr(
                    "data_import.detected",
                    encoding=preview.encoding or "-",
                    delimiter=repr(preview.delimiter) if preview.delimiter else "-",
                    columns=len(preview.headers),
                    rows=min(PREVIEW_ROWS, len(preview.rows)),
                )
            )
            separator = "、" if common.lang() == "zh" else ", "
            st.caption(common.tr("data_import.headers", headers=separator.join(preview.headers[:HEADERS_SHOWN])))
            st.dataframe(preview.rows, hide_index=True, width="stretch")
            chosen = _mapping_editor(upload, table, preview, profile)
            # The editor lists every header, so its choices replace the profile's entries.
            mapping.tables.setdefault(table, TableMapping()).columns = chosen
    return files, names, mapping, duplicates


# --- step 3: validate and load -----------------------------------------------------------


def _run_import(
    files: dict[str, Path],
    names: dict[str, str],
    mapping: ColumnMapping,
    mode: str,
    dry_run: bool,
    folder: Path,
) -> None:
    """Validate (dry_run) or load the files; store the report and rejects CSV in session state."""
    progress = st.progress(0.0, text=common.tr("data_import.loading"))

    def report_progress(fraction: float, message: str) -> None:
        progress.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    db_path = common.database_path()
    try:
        if dry_run:
            report = api.validate_files(
                db_path, files, mapping=mapping, progress=report_progress, display_names=names
            )
        else:
            with common.exclusive_access():
                report = api.load_files(
                    db_path, files, mode=mode, mapping=mapping, progress=report_progress,
                    display_names=names, rejects_dir=folder,
                )
    except common.DataUpdating:
        st.warning(common.tr("data_import.busy"))
        return
    except (ValueError, OSError, duckdb.Error) as error:
        logger.exception("import of %s failed", names)
        st.error(common.tr("data_import.failed", error=upload_errors.error_text(error, files, names, common.lang())))
        return
    finally:
        progress.empty()
    logger.info("import of %s finished: ok=%s dry_run=%s mode=%s", names, report.ok, dry_run, mode)
    rejects = Path(report.rejects_csv) if report.rejects_csv else None
    st.session_state[STATE_REPORT] = {
        "report": report.to_dict(),
        "dry_run": dry_run,
        "mode": mode,
        # The temporary folder is deleted at the end of this run, so keep the bytes.
        "rejects_name": rejects.name if rejects else None,
        "rejects_bytes": rejects.read_bytes() if rejects and rejects.is_file() else None,
    }


def _render_load(
    files: dict[str, Path],
    names: dict[str, str],
    mapping: ColumnMapping,
    duplicates: list[str],
    folder: Path,
) -> None:
    st.subheader(common.tr("data_import.step_load"))
    mode_labels = {
        "strict": common.tr("data_import.mode_strict"),
        "quarantine": common.tr("data_import.mode_quarantine"),
    }
    mode = st.radio(
        common.tr("data_import.mode"), ["strict", "quarantine"], format_func=mode_labels.__getitem__,
        key="imp_mode",
    )
    for table in sorted(set(duplicates)):
        st.error(common.tr("data_import.duplicate_table", table=table))
    blocked = not files or bool(duplicates)
    if not files:
        st.info(common.tr("data_import.no_files"))
    left, right = st.columns(2)
    # NOTE: ingest.api has no validate-only entry point yet, so the "validate only" button
    # appears only once it offers validate_files(); until then strict mode is the check.
    can_validate = hasattr(api, "validate_files")
    if can_validate and left.button(common.tr("data_import.validate"), disabled=blocked, key="imp_validate"):
        _run_import(files, names, mapping, mode, dry_run=True, folder=folder)
    if right.button(common.tr("data_import.load"), type="primary", disabled=blocked, key="imp_load"):
        _run_import(files, names, mapping, mode, dry_run=False, folder=folder)


def _errors_frame(errors: list[dict]) -> pd.DataFrame:
    columns = ["file", "line", "column", "value", "rule", "message_zh", "message_en", "fix_zh", "fix_en"]
    frame = pd.DataFrame(errors)
    for column in columns:
        if column not in frame:
            frame[column] = None
    return frame[columns + [column for column in frame.columns if column not in columns]]


def _render_report() -> None:
    stored = st.session_state.get(STATE_REPORT)
    if not stored:
        return
    report, lang = stored["report"], common.lang()
    st.subheader(common.tr("data_import.report_title"))
    errors = _errors_frame(report.get("errors") or [])
    rejected_rows = sum(int(item.get("rows_rejected") or 0) for item in report.get("files", []))
    if stored["dry_run"] and report.get("ok"):
        st.success(common.tr("data_import.report_validated"))
    elif not report.get("ok"):
        st.error(common.tr("data_import.report_rejected"))
    elif rejected_rows:
        st.warning(common.tr("data_import.report_quarantined", rows=rejected_rows))
    else:
        st.success(common.tr("data_import.report_ok"))

    st.markdown(common.tr("data_import.report_files"))
    file_columns = [
        "file_name", "table", "encoding", "rows_read", "rows_loaded", "rows_rejected",
        "footer_rows", "months_replaced",
    ]
    files = pd.DataFrame(report.get("files") or [])
    if not files.empty:
        st.dataframe(files[[column for column in file_columns if column in files]], hide_index=True, width="stretch")
        for item in report.get("files", []):
            personal = item.get("columns_personal") or {}
            if personal:
                described = ", ".join(f"{name} → {action}" for name, action in personal.items())
                st.caption(common.tr("data_import.report_personal", columns=described))

    counts = report.get("counts_by_rule") or {}
    if counts:
        st.markdown(common.tr("data_import.report_by_rule"))
        st.table(
            pd.DataFrame(
                {common.tr("data_import.rule"): list(counts), common.tr("data_import.count"): list(counts.values())}
            )
        )
    if not errors.empty:
        st.markdown(common.tr("data_import.report_examples"))
        message, fix = f"message_{lang}", f"fix_{lang}"
        examples = errors.groupby("rule", sort=False).head(EXAMPLES_PER_RULE)
        st.dataframe(examples[["file", "line", "column", "value", "rule", message, fix]], hide_index=True, width="stretch")

    left, right = st.columns(2)
    left.download_button(
        common.tr("data_import.report_json"),
        data=json.dumps(report, ensure_ascii=False, indent=1, default=str).encode("utf-8"),
        file_name="import_report.json",
        mime="application/json",
        key="imp_report_json",
        on_click="ignore",
    )
    right.download_button(
        common.tr("data_import.report_csv"),
        data=export.to_csv_bytes(errors),
        file_name="import_errors.csv",
        mime="text/csv",
        key="imp_report_csv",
        on_click="ignore",
    )
    if stored.get("rejects_bytes"):
        st.download_button(
            common.tr("data_import.report_rejects"),
            data=stored["rejects_bytes"],
            file_name=stored["rejects_name"],
            mime="text/csv",
            key="imp_report_rejects",
            on_click="ignore",
        )


# --- past loads and removal ----------------------------------------------------------------


HISTORY_SHA_DIGITS = 12


def _table_label(name: str) -> str:
    return common.tr(f"data_import.table.{name}") if has_key(f"data_import.table.{name}") else name


def _history_table(loads: pd.DataFrame) -> pd.DataFrame:
    """Return the load log for display: catalog column names, labelled codes, blanks as —."""
    table = loads.copy()
    table["table_name"] = table["table_name"].map(_table_label)
    for column, prefix in (("mode", "data_import.history_mode"), ("result", "data_import.history_result")):
        table[column] = table[column].map(
            lambda code, prefix=prefix: common.tr(f"{prefix}.{code}") if has_key(f"{prefix}.{code}") else code
        )
    table["file_sha256"] = table["file_sha256"].str[:HISTORY_SHA_DIGITS]
    for column in ("started_at", "finished_at", "removed_at"):
        table[column] = pd.to_datetime(table[column]).dt.strftime("%Y-%m-%d %H:%M:%S")
    for column in ("rows_read", "rows_loaded", "rows_rejected", "footer_rows"):
        table[column] = table[column].map(fmt.format_count)
    # Every column but the id becomes text, so a missing value shows as an em dash, not "None".
    shown = table.columns.drop("load_id")
    table[shown] = table[shown].astype(object).where(table[shown].notna(), fmt.MISSING)
    table[shown] = table[shown].replace({"": fmt.MISSING})
    names = {
        column: common.tr(f"data_import.history_col.{column}")
        for column in table.columns
        if has_key(f"data_import.history_col.{column}")
    }
    return table.rename(columns=names)


def _render_history() -> None:
    st.subheader(common.tr("data_import.history_title"))
    loads = api.list_loads(common.connection())
    if loads.empty:
        st.info(common.tr("data_import.history_empty"))
        return
    st.dataframe(_history_table(loads), hide_index=True, width="stretch")

    st.markdown(common.tr("data_import.remove_title"))
    removable = loads[(loads["result"] == "loaded") & loads["removed_at"].isna()]
    if removable.empty:
        st.caption(common.tr("data_import.remove_none"))
        return
    labels = {
        int(row.load_id): f"#{int(row.load_id)} {_table_label(row.table_name)} {row.file_name} {row.months or ''}".strip()
        for row in removable.itertuples()
    }
    load_id = st.selectbox(
        common.tr("data_import.remove_select"), list(labels), format_func=labels.__getitem__, key="imp_remove_id"
    )
    file_name = removable.loc[removable["load_id"] == load_id, "file_name"].iloc[0]
    confirmed = st.checkbox(
        common.tr("data_import.remove_confirm", load_id=load_id, file=file_name), key=f"imp_remove_ok_{load_id}"
    )
    if st.button(common.tr("data_import.remove_button"), disabled=not confirmed, key="imp_remove"):
        try:
            with common.exclusive_access():
                removed = api.remove_load(common.database_path(), load_id)
        except common.DataUpdating:
            st.warning(common.tr("data_import.busy"))
            return
        logger.info("removed load %d: %d rows", load_id, removed)
        st.session_state[STATE_REPORT] = None
        st.session_state["imp_removed"] = (load_id, removed)
        st.rerun()


def render() -> None:
    st.title(common.tr("page.data_import"))
    common.method_note(common.tr("data_import.method"))
    removed = st.session_state.pop("imp_removed", None)
    if removed:
        st.success(common.tr("data_import.removed", load_id=removed[0], rows=removed[1]))
    profile = _render_profile()
    # Uploads may hold personal data in clear, so they live only for this script run.
    with tempfile.TemporaryDirectory(prefix="loanlens-upload-") as temp_dir:
        folder = Path(temp_dir)
        files, names, mapping, duplicates = _render_uploads(profile, folder)
        if files:
            _save_profile(mapping)
        _render_load(files, names, mapping, duplicates, folder)
    _render_report()
    _render_history()


render()
