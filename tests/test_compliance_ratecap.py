"""Pricing against 4 × LPR, 24% and 36% (analysis.compliance) and the shipped LPR table.

Expected values are set by hand: each loan's rate sits just above, at or below a cap.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from analysis import compliance
from analysis.cli import main
from analysis.filters import Filters
from queries import db
from tests.fixtures_collections import add_loans


@pytest.mark.realdata
def test_shipped_lpr_matches_source(realdata):
    source = pd.read_csv(realdata / "china-lpr" / "lpr_monthly.csv")
    shipped = compliance.load_lpr(compliance.DEFAULT_LPR_PATH)
    assert len(shipped) == 85
    assert [day.isoformat() for day in shipped["announcement_date"]] == source["date"].tolist()
    assert shipped["lpr_1y_pct"].tolist() == source["lpr_1y_pct"].tolist()


def test_shipped_lpr_spot_values():
    lpr = compliance.load_lpr(compliance.DEFAULT_LPR_PATH).set_index("announcement_date")["lpr_1y_pct"]
    assert lpr[dt.date(2019, 8, 20)] == 4.25
    assert lpr[dt.date(2020, 4, 20)] == 3.85
    assert lpr[dt.date(2024, 10, 21)] == 3.10


def test_lpr_override_by_environment(tmp_path, monkeypatch):
    path = tmp_path / "lpr.csv"
    path.write_text("announcement_date,lpr_1y_pct\n2019-08-20,4.25\n2030-01-20,2.50\n", encoding="utf-8")
    monkeypatch.setenv("LOANLENS_LPR", str(path))
    assert compliance.lpr_path() == path
    assert compliance.load_lpr()["lpr_1y_pct"].tolist() == [4.25, 2.50]


@pytest.mark.parametrize(
    "text, message",
    [
        ("date,rate\n2019-08-20,4.25\n", "must have columns"),
        ("announcement_date,lpr_1y_pct\n2019/08/20,4.25\n", "line 2"),
        ("announcement_date,lpr_1y_pct\n2019-08-20,abc\n", "line 2"),
        ("announcement_date,lpr_1y_pct\n2019-08-20,0.0425\n2019-09-20,-1\n", "line 3"),
        ("announcement_date,lpr_1y_pct\n2019-08-20,4.25\n2019-08-20,4.20\n", "appears twice"),
    ],
)
def test_lpr_bad_file_rejected(tmp_path, text, message):
    path = tmp_path / "lpr.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        compliance.load_lpr(path)


def test_lpr_missing_file_rejected(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        compliance.load_lpr(tmp_path / "absent.csv")


LPR = pd.DataFrame(
    {
        "announcement_date": [dt.date(2019, 8, 20), dt.date(2020, 4, 20), dt.date(2020, 5, 20)],
        "lpr_1y_pct": [4.25, 3.85, 3.85],
    }
)


def test_rate_cap_boundaries(con):
    add_loans(
        con,
        [
            # April 2020: LPR 3.85%, cap 15.4%.
            {"loan_id": "a1", "origination_date": dt.date(2020, 4, 2), "annual_rate": 0.154, "principal": 100},
            {"loan_id": "a2", "origination_date": dt.date(2020, 4, 28), "annual_rate": 0.1541, "principal": 200},
            {"loan_id": "a3", "origination_date": dt.date(2020, 4, 15), "annual_rate": 0.24, "principal": 300},
            {"loan_id": "a4", "origination_date": dt.date(2020, 4, 15), "annual_rate": 0.2401, "principal": 400},
            {"loan_id": "a5", "origination_date": dt.date(2020, 4, 15), "annual_rate": 0.36, "principal": 500},
            {"loan_id": "a6", "origination_date": dt.date(2020, 4, 15), "annual_rate": 0.37, "principal": 600},
            {"loan_id": "a7", "origination_date": dt.date(2020, 4, 15), "annual_rate": None, "principal": 700},
        ],
    )
    row = compliance.rate_cap_table(con, Filters(), LPR).iloc[0]
    assert row["lpr_1y_pct"] == 3.85
    assert row["loans"] == 7
    assert row["rated_loans"] == 6
    assert row["above_4lpr_loans"] == 5  # all but a1 (exactly at the cap) and a7 (no rate)
    assert row["above_4lpr_principal"] == 200 + 300 + 400 + 500 + 600
    assert row["above_24_loans"] == 3   # a4, a5, a6
    assert row["above_36_loans"] == 1   # a6
    assert row["above_24_principal"] == 1500


def test_rate_cap_months_before_and_after_table(con):
    add_loans(
        con,
        [
            {"loan_id": "old", "origination_date": dt.date(2019, 7, 31), "annual_rate": 0.30},
            {"loan_id": "gap", "origination_date": dt.date(2020, 3, 10), "annual_rate": 0.17},
            {"loan_id": "new", "origination_date": dt.date(2021, 6, 1), "annual_rate": 0.155},
        ],
    )
    table = compliance.rate_cap_table(con, Filters(), LPR).set_index("vintage")
    # Before the first announcement: no LPR, so no 4 x LPR judgement at all.
    assert pd.isna(table.loc[pd.Timestamp("2019-07-01"), "lpr_1y_pct"])
    assert pd.isna(table.loc[pd.Timestamp("2019-07-01"), "above_4lpr_loans"])
    assert table.loc[pd.Timestamp("2019-07-01"), "above_24_loans"] == 1
    # March 2020 has no row: the latest earlier announcement (Aug 2019, 4.25%) applies.
    assert table.loc[pd.Timestamp("2020-03-01"), "lpr_1y_pct"] == 4.25
    assert table.loc[pd.Timestamp("2020-03-01"), "above_4lpr_loans"] == 0
    # After the table ends the last announcement (3.85%) carries forward.
    assert table.loc[pd.Timestamp("2021-06-01"), "lpr_1y_pct"] == 3.85
    assert table.loc[pd.Timestamp("2021-06-01"), "above_4lpr_loans"] == 1


def test_rate_cap_shares_by_product(con):
    add_loans(
        con,
        [
            {"loan_id": "p1", "product": "消费贷", "origination_date": dt.date(2020, 4, 5), "annual_rate": 0.20, "principal": 1000},
            {"loan_id": "p2", "product": "消费贷", "origination_date": dt.date(2020, 4, 5), "annual_rate": 0.10, "principal": 3000},
            {"loan_id": "p3", "product": "消费贷", "origination_date": dt.date(2019, 5, 5), "annual_rate": 0.30, "principal": 5000},
        ],
    )
    shares = compliance.rate_cap_shares(compliance.rate_cap_table(con, Filters(), LPR)).set_index("product")
    assert shares.loc["消费贷", "share_4lpr_loans"] == pytest.approx(0.5)       # of the 2 judged loans
    assert shares.loc["消费贷", "share_4lpr_principal"] == pytest.approx(0.25)  # 1000 of 4000
    assert shares.loc["消费贷", "share_24_loans"] == pytest.approx(1 / 3)


def test_ratecap_command_columns(db_path, tmp_path):
    connection = db.connect(db_path)
    add_loans(connection, [{"loan_id": "x", "origination_date": dt.date(2024, 11, 5), "annual_rate": 0.2}])
    connection.close()
    out = tmp_path / "ratecap.csv"
    assert main(["ratecap", "--db", str(db_path), "--out", str(out)]) == 0
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert list(table.columns) == [
        "product", "vintage", "loans", "principal", "above_4lpr_loans", "above_4lpr_principal",
        "above_24_loans", "above_36_loans",
    ]
    # November 2024: LPR 3.10%, cap 12.4%.
    assert table["above_4lpr_loans"].tolist() == [1]


def test_ratecap_command_bad_lpr_file(db_path, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("x\n1\n", encoding="utf-8")
    assert main(["ratecap", "--db", str(db_path), "--lpr", str(bad)]) == 1
    assert "must have columns" in capsys.readouterr().err


def test_rate_cap_shares_keep_missing_product(con):
    add_loans(
        con,
        [
            {"loan_id": "n1", "product": None, "origination_date": dt.date(2020, 4, 5), "annual_rate": 0.30},
            {"loan_id": "n2", "product": "消费贷", "origination_date": dt.date(2020, 4, 5), "annual_rate": 0.10},
        ],
    )
    shares = compliance.rate_cap_shares(compliance.rate_cap_table(con, Filters(), LPR))
    assert len(shares) == 2
    assert shares["loans"].sum() == 2
    missing = shares[shares["product"].isna()].iloc[0]
    assert missing["share_24_loans"] == 1.0
