"""Page 数据下载: analyst cohort downloads with an audit trail.

The sidebar's shared filters (as-of month, vintage range, product, channel, province,
grade) apply. This page adds city, bucket at the as-of month, ever-x+, collection strategy
and extra attributes. The file is built only when the user presses "prepare file", and
each prepared file is recorded in download_audit with its row count and SHA-256.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from pathlib import Path

import streamlit as st

from analysis import cohort, export
from analysis.buckets import DEFAULT_BUCKETS
from analysis.filters import Filters
from dashboard import common
from messages import format as fmt

logger = logging.getLogger(__name__)

ADMIN_ENV = "LOANLENS_ADMIN"
EVER_DPD_CHOICES = (None, 0, 30, 60, 90, 180)
MIME_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
FORMAT_LABELS = {"csv": "CSV (UTF-8 BOM)", "xlsx": "Excel (.xlsx)", "parquet": "Parquet"}
PREPARED_KEY = "data_download_prepared"


@st.cache_data(show_spinner=False)
def _filter_options(version: int) -> dict[str, list]:
    return cohort.filter_options(common.connection())


@st.cache_data(show_spinner=False, max_entries=64)
def _summary(version: int, filters: cohort.CohortFilters) -> cohort.CohortSummary:
    return cohort.summarise(common.connection(), filters)


@st.cache_data(show_spinner=False)
def _allowed_columns(version: int, grain: str) -> list[str]:
    return cohort.allowed_columns(common.connection(), grain)


def _loan_count() -> int:
    return common.connection().execute("select count(*) from loans").fetchone()[0]


def _user_name() -> str:
    """Return the signed-in user's name or e-mail, else the OS user, else 'unknown'."""
    try:
        if st.user.is_logged_in:
            for key in ("email", "name", "preferred_username"):
                value = st.user.get(key)
                if value:
                    return str(value)
    except (AttributeError, KeyError, st.errors.StreamlitAPIException):
        pass
    return cohort.os_user_name()


def _is_admin() -> bool:
    return os.environ.get(ADMIN_ENV, "").strip() == "1"


def _multiselect(label_key: str, options: list, key: str) -> tuple[str, ...]:
    if not options:
        return ()
    return tuple(st.multiselect(common.tr(label_key), options, key=key, placeholder=common.tr("data_download.any")))


def _attribute_filters(options: dict[str, list]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    names = sorted(field[len("attribute:"):] for field in options if field.startswith("attribute:"))
    if not names:
        return ()
    chosen = st.multiselect(
        common.tr("data_download.attributes"), names, key="dl_attributes",
        placeholder=common.tr("data_download.any"),
    )
    pairs = []
    for name in chosen:
        values = options.get(f"attribute:{name}", [])
        if values:
            picked = st.multiselect(
                common.tr("data_download.attribute_values", name=name), values, key=f"dl_attr_{name}"
            )
        else:
            text = st.text_input(common.tr("data_download.attribute_text", name=name), key=f"dl_attr_text_{name}")
            picked = [part.strip() for part in text.replace("，", ",").split(",") if part.strip()]
        if picked:
            pairs.append((name, tuple(picked)))
    return tuple(pairs)


def _render_filters(options: dict[str, list]) -> cohort.CohortFilters:
    """Draw the page's own filters and return them combined with the shared ones."""
    shared: Filters = common.filters()
    st.subheader(common.tr("data_download.filters"))
    st.caption(common.tr("data_download.shared_note"))
    left, middle, right = st.columns(3)
    with left:
        cities = _multiselect("data_download.city", options.get("city", []), "dl_city")
        buckets = tuple(
            st.multiselect(
                common.tr("data_download.bucket"), list(DEFAULT_BUCKETS.labels), key="dl_bucket",
                placeholder=common.tr("data_download.any"),
            )
        )
    with middle:
        any_label = common.tr("data_download.any")
        ever_dpd = common.language_selectbox(
            common.tr("data_download.ever_dpd"),
            list(EVER_DPD_CHOICES),
            "dl_ever_dpd",
            format_func=lambda value: any_label if value is None else f"{value}",
        )
        strategies = _multiselect("data_download.strategy", options.get("strategy", []), "dl_strategy")
    with right:
        attributes = _attribute_filters(options)
    return cohort.CohortFilters(
        base=shared,
        cities=cities,
        buckets=buckets,
        ever_dpd=ever_dpd,
        strategies=strategies,
        attributes=attributes,
    )


def _render_counts(selection: cohort.CohortSummary, grain: str) -> None:
    """Draw the live counts of the selection: loans, balance and rows of the download."""
    rows = selection.loan_count if grain == "loan" else selection.loan_month_count
    lang = common.lang()
    first, second, third = st.columns(3)
    first.metric(common.tr("data_download.loans_selected"), fmt.format_count(selection.loan_count, lang))
    second.metric(common.tr("data_download.balance_selected"), fmt.format_amount(selection.balance, lang))
    third.metric(common.tr("data_download.rows_selected"), fmt.format_count(rows, lang))
    if selection.as_of is not None:
        st.caption(f"{common.tr('data_download.as_of')}: {common.format_month(selection.as_of)}")


def _prepare(
    filters: cohort.CohortFilters,
    grain: str,
    columns: list[str],
    file_format: str,
    signature: tuple,
) -> None:
    """Build the file, record it in download_audit and keep it for the download button.

    DuckDB streams the rows into a temporary file, so a large download never becomes a
    DataFrame. The download button then serves the file's bytes.
    """
    with tempfile.TemporaryDirectory(prefix="loanlens_download_") as folder:
        path = Path(folder) / f"download.{file_format}"
        written = cohort.write_download(common.connection(), filters, grain, columns, path, file_format)
        data = path.read_bytes()
    with common.write_connection() as con:
        cohort.record_download(
            con,
            user_name=_user_name(),
            filters=filters,
            grain=grain,
            columns=columns,
            file_format=file_format,
            row_count=written.row_count,
            sha256=written.sha256,
        )
    stamp = dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    st.session_state[PREPARED_KEY] = {
        "signature": signature,
        "data": data,
        "rows": written.row_count,
        "sha256": written.sha256,
        "file_name": f"loanlens_{grain}_{stamp}.{file_format}",
        "mime": MIME_TYPES[file_format],
    }


def _render_download(filters: cohort.CohortFilters, selection: cohort.CohortSummary) -> None:
    # Labels are computed here: AppTest calls format_func outside the script run.
    grain_labels = {
        "loan": common.tr("data_download.grain_loan"),
        "loan-month": common.tr("data_download.grain_loan_month"),
    }
    grain = st.radio(
        common.tr("data_download.grain"),
        cohort.GRAINS,
        format_func=grain_labels.__getitem__,
        horizontal=True,
        key="dl_grain",
    )
    allowed = _allowed_columns(common.data_version(), grain)
    columns = st.multiselect(
        common.tr("data_download.columns"),
        allowed,
        default=[column for column in cohort.default_columns(grain) if column in allowed],
        key=f"dl_columns_{grain}",
    )
    row_count = selection.loan_count if grain == "loan" else selection.loan_month_count
    file_format = st.radio(
        common.tr("data_download.format"), cohort.DOWNLOAD_FORMATS, horizontal=True, key="dl_format",
        format_func=FORMAT_LABELS.__getitem__,
    )
    too_many = file_format == "xlsx" and row_count + 1 > export.EXCEL_MAX_ROWS
    if too_many:
        st.warning(common.tr("data_download.excel_too_many", rows=fmt.format_count(row_count, common.lang())))
    if row_count == 0:
        st.info(common.tr("data_download.nothing"))

    signature = (repr(filters), selection.as_of, grain, tuple(columns), file_format, common.data_version())
    if st.button(
        common.tr("data_download.prepare"),
        type="primary",
        disabled=too_many or row_count == 0 or not columns,
        key="dl_prepare",
    ):
        try:
            _prepare(filters, grain, list(columns), file_format, signature)
        except common.DataUpdating:
            st.warning(common.tr("data_download.busy"))
        except ValueError as error:
            st.error(common.tr("data_download.invalid", error=error))

    prepared = st.session_state.get(PREPARED_KEY)
    if prepared is None:
        return
    if prepared["signature"] != signature:
        st.caption(common.tr("data_download.stale"))
        return
    st.success(
        common.tr(
            "data_download.prepared",
            rows=fmt.format_count(prepared["rows"], common.lang()),
            sha=prepared["sha256"][:16],
        )
    )
    st.download_button(
        common.tr("data_download.download"),
        data=prepared["data"],
        file_name=prepared["file_name"],
        mime=prepared["mime"],
        key="dl_download",
        on_click="ignore",
    )


def _render_audit() -> None:
    st.subheader(common.tr("data_download.audit_title"))
    st.caption(common.tr("data_download.audit_note"))
    audit = cohort.list_downloads(common.connection())
    if audit.empty:
        st.info(common.tr("data_download.audit_empty"))
        return
    st.dataframe(audit, hide_index=True, width="stretch")
    common.download_buttons(audit, "download_audit", key="dl_audit")


def render() -> None:
    st.title(common.tr("page.data_download"))
    common.method_note(common.tr("data_download.method"))
    if _loan_count() == 0:
        st.info(common.tr("data_download.empty"))
        if _is_admin():
            _render_audit()
        return

    version = common.data_version()
    options = _filter_options(version)
    filters = _render_filters(options)
    try:
        selection = _summary(version, filters)
    except ValueError as error:
        st.error(common.tr("data_download.invalid", error=error))
        return
    _render_counts(selection, st.session_state.get("dl_grain", "loan"))
    _render_download(filters, selection)
    if _is_admin():
        _render_audit()


render()
