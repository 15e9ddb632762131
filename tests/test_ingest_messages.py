"""Import tests: report texts for replaced months, duplicates, files not loaded, warnings,
wrong encodings and CLI usage errors.

Expected counts are worked out by hand from the rows each test writes.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from ingest.api import ColumnMapping, load_files, preview_file
from ingest.mapping import MappingError
from ingest.readers import looks_garbled
from tests.fixtures_ingest import (  # noqa: F401  (secret_file is an autouse fixture)
    LOANS_HEADER,
    LOANS_ROWS,
    MONTHS_HEADER,
    MONTHS_ROWS,
    secret_file,
    table_rows,
    write_csv,
)

AS_OF = "2017-12-31"
ROOT = Path(__file__).resolve().parents[1]


def _months(loans, month):
    return [[loan, month, "0", "100", "正常"] for loan in loans]


def test_replaced_months_warn_other_loans(db_path, tmp_path):
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS)
    ids = [row[0] for row in LOANS_ROWS]
    first = write_csv(tmp_path / "m1.csv", MONTHS_HEADER, _months(ids, "2017-04-30") + _months(ids, "2017-05-31"))
    assert load_files(db_path, {"loans": loans, "loan_months": first}, as_of=AS_OF).ok
    # The second file has only L0002 for April and May: the rows of the 2 other loans in each month are deleted.
    second = write_csv(tmp_path / "m2.csv", MONTHS_HEADER, _months(["L0002"], "2017-04-30")
                       + _months(["L0002"], "2017-05-31"))
    report = load_files(db_path, {"loan_months": second}, as_of=AS_OF)
    assert report.ok
    file_report = report.files[0]
    assert file_report.months_replaced == ["2017-04", "2017-05"]
    assert file_report.rows_replaced_other_loans == 4
    assert "替换了 2017-04 等 2 个月份的数据，其中 4 行属于本次文件中没有的借据" in report.summary("zh")
    assert "4 of the replaced rows belonged to loans not in this file" in report.summary("en")
    assert report.to_dict()["files"][0]["rows_replaced_other_loans"] == 4
    assert len(table_rows(db_path, "loan_months")) == 2
    # Reloading the same file replaces only its own loans' rows: no warning.
    again = load_files(db_path, {"loan_months": second}, as_of=AS_OF)
    assert again.files[0].rows_replaced_other_loans == 0
    assert "替换了" not in again.summary("zh")


def test_duplicate_loan_id_has_its_own_text(db_path, tmp_path):
    rows = LOANS_ROWS + [LOANS_ROWS[1]]
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, rows)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    report = load_files(db_path, {"loans": loans, "loan_months": months}, as_of=AS_OF, rejects_dir=tmp_path)
    assert report.counts_by_rule == {"duplicate_loan_id": 2}
    error = report.errors[0]
    assert "借据表中出现多次" in error.message_zh
    assert "借据表中每笔借据只保留一行" in error.fix_zh
    assert "统计月" not in error.fix_zh
    assert "one row per loan in the loans file" in error.fix_en
    # The months file had no error: the summary states why its rows were not loaded.
    assert report.files[1].rows_rejected == 3
    assert not report.files[1].counts_by_rule
    assert "本文件没有错误，但 loans.csv 未通过校验" in report.summary("zh")
    assert "not loaded because loans.csv did not pass validation" in report.summary("en")
    # The rejects CSV has the fix texts next to the reasons.
    with open(report.rejects_csv, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    assert {"reason_zh", "reason_en", "fix_zh", "fix_en"} <= rows[0].keys()
    assert rows[0]["fix_zh"] == error.fix_zh
    assert rows[0]["fix_en"] == error.fix_en


def test_warnings_in_both_languages(db_path, tmp_path):
    rows = [row[:] for row in LOANS_ROWS]
    rows[1][2] = "5000.125"
    rows[2][6] = "火星省"
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, rows)
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    report = load_files(db_path, {"loans": loans, "loan_months": months}, as_of=AS_OF)
    assert report.ok
    file_report = report.files[0]
    assert "放款金额(元)：1 个值超过两位小数，已四舍五入到分" in file_report.warnings_zh
    assert "放款金额(元): 1 value(s) have more than two decimals and were rounded to the fen" in file_report.warnings
    assert any(text.startswith("省份：1 个值不是规范的行政区划名称") and "火星省" in text
               for text in file_report.warnings_zh)
    zh, en = report.summary("zh"), report.summary("en")
    assert "四舍五入到分" in zh
    assert "rounded to the fen" not in zh
    assert "rounded to the fen" in en
    assert "四舍五入" not in en


BIG5_HEADER = ["借據號", "放款日期", "放款金額(元)", "期數", "年利率", "產品", "省份"]
BIG5_MAPPING = """
[loans.columns]
"借據號" = "loan_id"
"放款金額(元)" = "principal"
"期數" = "term_months"
"產品" = "product"
"""
BIG5_ROWS = [["L1", "2017-02-03", "1000", "12", "18%", "消費貸", "廣東"],
             ["L2", "2017-02-03", "2000", "12", "18%", "經營貸", "臺灣"]]


def test_big5_file_flagged_and_encoding_can_be_forced(db_path, tmp_path):
    loans = write_csv(tmp_path / "big5.csv", BIG5_HEADER, BIG5_ROWS, encoding="big5")
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, _months(["L1", "L2"], "2017-03-31"))
    report = load_files(db_path, {"loans": loans, "loan_months": months}, as_of=AS_OF)
    assert not report.ok
    assert "encoding_suspect" in report.counts_by_rule
    error = next(error for error in report.errors if error.rule == "encoding_suspect")
    assert "按 gb18030 解码" in error.message_zh
    assert "Big5" in error.message_zh
    assert "CSV UTF-8" in error.fix_zh
    assert "--encoding big5" in error.fix_zh
    assert "Big5" in error.message_en
    assert "--encoding big5" in error.fix_en
    assert preview_file(loans, "loans").encoding_suspect

    # Read as Big5 the headers are traditional characters, which the mapping names.
    forced = load_files(db_path, {"loans": loans, "loan_months": months}, as_of=AS_OF, encoding={"loans": "big5"},
                        mapping=ColumnMapping.from_toml(BIG5_MAPPING))
    assert forced.ok, forced.summary("en")
    assert forced.files[0].encoding == "big5"
    assert ("L1", "消費貸") in table_rows(db_path, "loans", "loan_id, product")
    mapping = ColumnMapping.from_toml('[loans]\nencoding = "big5"\n')
    assert mapping.encoding("loans") == "big5"
    assert mapping.encoding("loan_months") is None
    assert ColumnMapping.from_toml(mapping.to_toml()).encoding("loans") == "big5"
    assert not preview_file(loans, "loans", mapping=mapping).encoding_suspect


def test_gbk_file_not_flagged(db_path, tmp_path):
    loans = write_csv(tmp_path / "gbk.csv", LOANS_HEADER, LOANS_ROWS, encoding="gbk")
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    report = load_files(db_path, {"loans": loans, "loan_months": months}, as_of=AS_OF)
    assert report.ok
    assert report.files[0].encoding == "gb18030"
    assert not looks_garbled("借据号放款日期放款金额期数年利率产品省份")
    assert looks_garbled("".join(BIG5_HEADER).encode("big5").decode("gb18030"))


def test_bad_encoding_names_rejected(db_path, tmp_path):
    import pytest

    from ingest.load import UsageError

    with pytest.raises(MappingError):
        ColumnMapping.from_toml('[loans]\nencoding = "klingon"\n')
    loans = write_csv(tmp_path / "loans.csv", LOANS_HEADER, LOANS_ROWS)
    with pytest.raises(UsageError):
        load_files(db_path, {"loans": loans}, encoding="klingon")


def _run(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ingest", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LOANLENS_SECRET_FILE": str(Path(cwd) / "secret.key"),
                               "PYTHONPATH": str(ROOT)}, timeout=120)


def test_cli_missing_file_is_usage_error(tmp_path):
    db = tmp_path / "db.duckdb"
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, MONTHS_ROWS)
    result = _run(["load", "--db", str(db), "--loans", "nothere.csv", "--months", str(months)], tmp_path)
    assert result.returncode == 2
    assert str(ROOT / "nothere.csv") in result.stderr
    assert not db.exists() or "loans" not in result.stdout

    nothing = _run(["load", "--db", str(db)], tmp_path)
    assert nothing.returncode == 2
    assert "--months/--installments/--actions FILE for loans already in the database" in nothing.stderr


def test_cli_encoding_option(tmp_path):
    db = tmp_path / "db.duckdb"
    loans = write_csv(tmp_path / "big5.csv", BIG5_HEADER, BIG5_ROWS, encoding="big5")
    months = write_csv(tmp_path / "months.csv", MONTHS_HEADER, _months(["L1", "L2"], "2017-03-31"))
    report = tmp_path / "report.json"
    args = ["load", "--db", str(db), "--loans", str(loans), "--months", str(months), "--as-of", AS_OF,
            "--report", str(report)]
    flagged = _run(args, tmp_path)
    assert flagged.returncode == 1
    assert "Big5" in flagged.stdout
    # The months file is UTF-8 (正常 is not Big5), so the encoding is given for the loans file only.
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(BIG5_MAPPING, encoding="utf-8")
    wrong = _run(args + ["--encoding", "big5"], tmp_path)
    assert wrong.returncode == 1
    assert "months.csv：文件不是有效的 big5 编码文本" in wrong.stdout
    bad = _run(args + ["--encoding", "sheets=big5"], tmp_path)
    assert bad.returncode == 2
    forced = _run(args + ["--encoding", "loans=big5", "--mapping", str(mapping)], tmp_path)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert json.loads(report.read_text(encoding="utf-8"))["files"][0]["encoding"] == "big5"
