"""``python -m analysis regions``: the report command returns what the page shows."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from analysis import regions
from analysis.cli import main
from analysis.filters import Filters
from queries import db
from tests.fixtures_regions import build_mixed_db, build_openintro_db


@pytest.fixture(scope="module")
def mixed_path(tmp_path_factory):
    return build_mixed_db(tmp_path_factory.mktemp("cli") / "mixed.duckdb")


def _page_table(path, **options) -> pd.DataFrame:
    con = db.connect(path, read_only=True)
    try:
        data = regions.load_region_months(con, Filters(), months=1)
    finally:
        con.close()
    return regions.region_rates(data, **options).report()


def test_cli_writes_report_columns(mixed_path, tmp_path):
    out = tmp_path / "regions.csv"
    code = main(["regions", "--db", str(mixed_path), "--metric", "par30", "--out", str(out)])
    assert code == 0

    report = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    assert report.columns.tolist() == regions.REPORT_COLUMNS
    expected = _page_table(mixed_path, metric="par30")
    assert report["region"].fillna("").tolist() == expected["region"].fillna("").tolist()
    assert report["loans"].tolist() == expected["loans"].tolist()
    pd.testing.assert_series_equal(report["rate"], expected["rate"], check_names=False)
    assert report["below_min_size"].tolist() == expected["below_min_size"].tolist()


def test_cli_options_reach_analysis(mixed_path, capsys):
    code = main([
        "regions", "--db", str(mixed_path), "--level", "city", "--province", "浙江省",
        "--by", "balance", "--min-size", "5", "--metric", "npl", "--npl-preset", "simple_90_180_360",
    ])
    assert code == 0
    report = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(report["region"]) == {"杭州市", "宁波市"}
    assert report["ci_lower"].isna().all()
    assert not report["below_min_size"].any()


def test_cli_lists_unmatched_values_in_log(tmp_path, caplog):
    path = build_openintro_db(tmp_path / "openintro.duckdb")
    out = tmp_path / "states.csv"
    with caplog.at_level("WARNING", logger="analysis.regions"):
        assert main(["regions", "--db", str(path), "--out", str(out)]) == 0
    report = pd.read_csv(out, encoding="utf-8-sig")
    assert "CA" in report["region"].tolist()
    messages = [record.getMessage() for record in caplog.records
                if "matched no Chinese region" in record.getMessage()]
    assert len(messages) == 1
    assert "CA" in messages[0]


def test_cli_empty_database_fails(db_path, capsys):
    assert main(["regions", "--db", str(db_path)]) == 1
    assert "no month-end snapshots" in capsys.readouterr().err


def test_cli_rejects_unknown_metric(mixed_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["regions", "--db", str(mixed_path), "--metric", "m2plus"])
    assert exit_info.value.code == 2
