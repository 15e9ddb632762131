"""Import tests: collection action times keep their seconds in every accepted form.

The compliance rule treats 21:59:59 as allowed and 22:00:00 as a breach, so a time that
loses its seconds, or an Excel serial that rounds 22:00:00 down to 21:59:59.999999, moves
a contact across the line. Expected times are written by hand next to each source form.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import openpyxl
import pandas as pd
import pytest
from openpyxl.utils.datetime import to_excel

from ingest.api import load_files
from tests.fixtures_ingest import (  # noqa: F401  (secret_file is an autouse fixture)
    LOANS_HEADER,
    LOANS_ROWS,
    MONTHS_HEADER,
    MONTHS_ROWS,
    secret_file,
    write_csv,
)

AS_OF = "2017-12-31"
ACTIONS_HEADER = ["借据号", "催收时间", "催收方式"]
ALLOWED = dt.datetime(2017, 3, 31, 21, 59, 59)
BREACH = dt.datetime(2017, 3, 31, 22, 0, 0)

# (source text, expected stored timestamp), one pair per accepted text form.
TEXT_FORMS = [
    ("2017年3月31日 10:20:11", dt.datetime(2017, 3, 31, 10, 20, 11)),
    ("2017年3月31日 21:59:59", ALLOWED),
    ("2017年3月31日 22:00:00", BREACH),
    ("2017年3月31日21时59分59秒", ALLOWED),
    ("2017年3月31日 21:59", dt.datetime(2017, 3, 31, 21, 59)),
    ("2017-03-31 21:59:59", ALLOWED),
    ("2017-03-31 22:00:00", BREACH),
    ("2017/3/31 21:59:59", ALLOWED),
    ("2017/3/31 22:00:00", BREACH),
    ("2017.3.31 21:59:59", ALLOWED),
    ("2017-03-31T21:59:59", ALLOWED),
    ("2017-03-31T22:00:00", BREACH),
    ("2017-03-31T21:59:59.250", dt.datetime(2017, 3, 31, 21, 59, 59, 250000)),
    ("2017-03-31T21:59:59+08:00", ALLOWED),
    ("2017-03-31T14:00:00Z", BREACH),
    ("20170331215959", ALLOWED),
    ("２０１７-０３-３１ ２１：５９：５９", ALLOWED),
    ("2017-03-31", dt.datetime(2017, 3, 31)),
]


def _base_files(tmp_path) -> dict:
    return {
        "loans": write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS),
        "loan_months": write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS),
    }


def _action_times(db_path) -> list[dt.datetime]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return [row[0] for row in con.execute(
            "select action_time from collection_actions order by action_id").fetchall()]
    finally:
        con.close()


def test_text_time_forms_keep_seconds(db_path, tmp_path):
    files = _base_files(tmp_path)
    # Loan and channel vary so that no two rows share a (loan_id, action_time, channel) key.
    loan_ids = [row[0] for row in LOANS_ROWS]
    channels = ["短信", "电催", "外访", "信函", "委外", "诉讼", "分期"]
    rows = [[loan_ids[index % 3], text, channels[index // 3]] for index, (text, _) in enumerate(TEXT_FORMS)]
    files["collection_actions"] = write_csv(tmp_path / "actions.csv", ACTIONS_HEADER, rows)
    report = load_files(db_path, files, as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert _action_times(db_path) == [expected for _, expected in TEXT_FORMS]


@pytest.mark.parametrize("text", [
    "2017/3/31 25:00:00",
    "2017年3月31日 25:00:00",
    "2017-03-31 21:59:60",
    "20170331250000",
    "2017-03-31 21:59:59 +08:00",
])
def test_impossible_time_rejected_not_midnight(db_path, tmp_path, text):
    files = _base_files(tmp_path)
    files["collection_actions"] = write_csv(tmp_path / "actions.csv", ACTIONS_HEADER, [["L0002", text, "电催"]])
    report = load_files(db_path, files, as_of=AS_OF)
    assert report.counts_by_rule == {"invalid_timestamp": 1}
    assert report.errors[0].value == text


def test_xlsx_date_cells_and_serials_keep_seconds(db_path, tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(ACTIONS_HEADER)
    # Date-formatted cells first. Then bare serial numbers (days since 1899-12-30) written
    # with 15 and 16 significant digits, as spreadsheet programs store them: 22:00:00 on
    # 2017-03-31 is 42825.91666666666, which a conversion rounding to the microsecond
    # turns into 21:59:59.999999.
    sheet.append(["L0002", ALLOWED, "电催"])
    sheet.append(["L0002", BREACH, "电催"])
    expected = [ALLOWED, BREACH]
    for digits, channel in ((15, "短信"), (16, "外访")):
        for moment in (ALLOWED, BREACH):
            sheet.append(["L0002", float(f"{to_excel(moment):.{digits}g}"), channel])
            expected.append(moment)
    path = tmp_path / "actions.xlsx"
    workbook.save(path)
    files = _base_files(tmp_path)
    files["collection_actions"] = path
    report = load_files(db_path, files, as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert _action_times(db_path) == expected


def test_parquet_typed_and_text_times_keep_seconds(db_path, tmp_path):
    frame = pd.DataFrame({
        "借据号": ["L0002", "L0002", "L0002", "L0002"],
        "催收时间": pd.to_datetime([ALLOWED, BREACH, ALLOWED.replace(second=58), BREACH.replace(second=1)]),
        "催收方式": ["电催", "电催", "短信", "短信"],
    })
    typed = tmp_path / "typed.parquet"
    frame.to_parquet(typed, index=False)
    files = _base_files(tmp_path)
    files["collection_actions"] = typed
    report = load_files(db_path, files, as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert _action_times(db_path) == [ALLOWED, BREACH, ALLOWED.replace(second=58), BREACH.replace(second=1)]


def test_parquet_zoned_times_stored_as_shanghai_time(db_path, tmp_path):
    # 13:59:59 and 14:00:00 UTC are 21:59:59 and 22:00:00 in Shanghai (UTC+8, no daylight saving).
    frame = pd.DataFrame({
        "借据号": ["L0002", "L0002"],
        "催收时间": pd.to_datetime(["2017-03-31 13:59:59", "2017-03-31 14:00:00"]).tz_localize("UTC"),
        "催收方式": ["电催", "电催"],
    })
    path = tmp_path / "zoned.parquet"
    frame.to_parquet(path, index=False)
    files = _base_files(tmp_path)
    files["collection_actions"] = path
    report = load_files(db_path, files, as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert _action_times(db_path) == [ALLOWED, BREACH]


def test_parquet_text_times_keep_seconds(db_path, tmp_path):
    frame = pd.DataFrame({
        "借据号": ["L0002", "L0002", "L0002"],
        "催收时间": ["2017年3月31日 21:59:59", "2017/3/31 22:00:00", "2017-03-31T21:59:59"],
        "催收方式": ["电催", "短信", "外访"],
    })
    path = tmp_path / "text.parquet"
    frame.to_parquet(path, index=False)
    files = _base_files(tmp_path)
    files["collection_actions"] = path
    report = load_files(db_path, files, as_of=AS_OF)
    assert report.ok, report.summary("en")
    assert _action_times(db_path) == [ALLOWED, BREACH, ALLOWED]
