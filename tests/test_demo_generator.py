"""Demo generator: determinism, reruns, arguments and the loan-tape contract.

The contract checks run on the shared 20,000-loan demo (``demo_db``); determinism and rerun
checks build small demos of their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ingest import demo, demo_params
from queries import db

SMALL = 1_500
AS_OF = "2026-11-30"


def read_tables(path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            "loans": con.execute("select * exclude (load_id) from loans order by loan_id").df(),
            "loan_months": con.execute(
                "select * exclude (load_id) from loan_months order by loan_id, snapshot_date"
            ).df(),
            "collection_actions": con.execute(
                "select * exclude (load_id) from collection_actions order by action_id"
            ).df(),
        }
    finally:
        con.close()


@pytest.fixture(scope="module")
def demo_frames(demo_db):
    return read_tables(demo_db)


# --- determinism and reruns -------------------------------------------------------------

def test_same_seed_same_tables(tmp_path):
    first = tmp_path / "a" / "demo.duckdb"
    second = tmp_path / "b" / "demo.duckdb"
    truth_a = demo.generate_demo(first, n_loans=SMALL, seed=7, as_of=AS_OF)
    truth_b = demo.generate_demo(second, n_loans=SMALL, seed=7, as_of=AS_OF)
    assert truth_a == truth_b
    tables_a, tables_b = read_tables(first), read_tables(second)
    for name in tables_a:
        pd.testing.assert_frame_equal(tables_a[name], tables_b[name], check_exact=True)


def test_other_seed_other_tables(tmp_path):
    a = read_tables_of(tmp_path / "a.duckdb", seed=1)
    b = read_tables_of(tmp_path / "b.duckdb", seed=2)
    assert not a["loans"]["principal"].equals(b["loans"]["principal"])
    assert set(a["loans"]["borrower_id"]).isdisjoint(set(b["loans"]["borrower_id"]))


def read_tables_of(path, seed):
    demo.generate_demo(path, n_loans=SMALL, seed=seed, as_of=AS_OF)
    return read_tables(path)


def test_rerun_replaces_previous_demo(tmp_path):
    path = tmp_path / "demo.duckdb"
    demo.generate_demo(path, n_loans=SMALL, seed=3, as_of=AS_OF)
    truth = demo.generate_demo(path, n_loans=SMALL, seed=4, as_of=AS_OF)
    con = duckdb.connect(str(path), read_only=True)
    try:
        for table, rows in truth["rows"].items():
            assert con.execute(f"select count(*) from {table}").fetchall()[0][0] == rows, table
        results = con.execute(
            "select result, count(*) from load_log group by result order by result"
        ).fetchall()
        assert results == [("loaded", 3), ("removed", 3)]
        removed_at = con.execute(
            "select count(*) from load_log where result = 'removed' and removed_at is not null"
        ).fetchall()[0][0]
        assert removed_at == 3
    finally:
        con.close()


def test_refuses_database_with_imported_loans(db_path):
    con = db.connect(db_path)
    con.execute(
        "insert into loans (loan_id, origination_date, principal, load_id) "
        "values ('X1', date '2026-01-05', 1000, 99)"
    )
    con.close()
    with pytest.raises(demo.DemoError, match="contains 1 imported loans"):
        demo.generate_demo(db_path, n_loans=100, seed=1, as_of=AS_OF)
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("select count(*) from loans").fetchall()[0][0] == 1
    con.close()


def test_truth_file_beside_database_and_logged(tmp_path):
    path = tmp_path / "sub" / "x.duckdb"
    truth = demo.generate_demo(path, n_loans=SMALL, seed=5, as_of=AS_OF)
    truth_path = path.with_name("demo_truth.json")
    text = truth_path.read_text(encoding="utf-8")
    assert json.loads(text) == truth
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    con = duckdb.connect(str(path), read_only=True)
    try:
        log = con.execute(
            "select table_name, file_name, file_sha256, mode, rows_loaded, result "
            "from load_log order by load_id"
        ).fetchall()
        assert db.get_meta(con, "dataset") == "demo"
    finally:
        con.close()
    assert [row[0] for row in log] == ["loans", "loan_months", "collection_actions"]
    for table, file_name, sha, mode, rows, result in log:
        assert (file_name, sha, mode, result) == ("demo", digest, "demo", "loaded")
        assert rows == truth["rows"][table]


# --- arguments ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-11-30", dt.date(2026, 11, 30)),
        ("2026-11-15", dt.date(2026, 10, 31)),
        ("2024-02-29", dt.date(2024, 2, 29)),
        (dt.date(2025, 3, 1), dt.date(2025, 2, 28)),
    ],
)
def test_resolve_as_of_month_end(given, expected):
    assert demo.resolve_as_of(given) == expected


def test_default_as_of_last_month_end():
    assert demo.default_as_of(dt.date(2026, 12, 4)) == dt.date(2026, 11, 30)
    assert demo.default_as_of(dt.date(2026, 12, 31)) == dt.date(2026, 11, 30)


@pytest.mark.parametrize("bad", ["2026/11/30", "30-11-2026", "2022-06-30"])
def test_resolve_as_of_rejects(bad):
    with pytest.raises(demo.DemoError):
        demo.resolve_as_of(bad)


def test_rejects_non_positive_loans(tmp_path):
    with pytest.raises(demo.DemoError, match="positive"):
        demo.generate_demo(tmp_path / "d.duckdb", n_loans=0, seed=1, as_of=AS_OF)


def test_main_exit_codes(tmp_path, capsys):
    path = tmp_path / "cli.duckdb"
    assert demo.main(["--db", str(path), "--loans", "300", "--seed", "9",
                      "--as-of", AS_OF]) == 0
    assert "300 loans" in capsys.readouterr().out
    assert demo.main(["--db", str(path), "--loans", "0"]) == 2
    assert demo.main(["--db", str(path), "--as-of", "yesterday"]) == 2
    assert demo.main(["--loans", "many"]) == 2
    assert demo.main(["--help"]) == 0


# --- loan-tape contract on the shared demo -------------------------------------------------

def test_vintages_and_growth(demo_frames, demo_truth):
    loans = demo_frames["loans"]
    months = pd.to_datetime(loans["origination_date"]).dt.to_period("M")
    assert months.nunique() == 36
    assert str(months.min()) == "2023-12"
    assert str(months.max()) == "2026-11"  # the as-of month is the newest vintage
    counts = months.value_counts().sort_index()
    assert counts.iloc[-6:].sum() > 1.6 * counts.iloc[:6].sum()
    assert demo_truth["vintages"] == {"first": "2023-12", "last": "2026-11", "count": 36}


def test_as_of_month_vintage_has_mob0_rows(demo_frames):
    # Loans originated in the as-of month appear once, at the as-of month-end, as new
    # current loans with their full principal outstanding (hand-derived from the contract).
    loans = demo_frames["loans"]
    months = demo_frames["loan_months"]
    newest = loans[pd.to_datetime(loans["origination_date"]).dt.to_period("M")
                   == pd.Period("2026-11", "M")]
    assert len(newest) > 0.02 * len(loans)
    rows = months[months["loan_id"].isin(newest["loan_id"])].merge(
        newest[["loan_id", "principal"]], on="loan_id")
    assert len(rows) == len(newest)
    assert (pd.to_datetime(rows["snapshot_date"]) == pd.Timestamp("2026-11-30")).all()
    assert (rows["status"] == "active").all()
    assert (rows["dpd"] == 0).all()
    assert (rows["outstanding_principal"] == rows["principal"]).all()


def test_month_end_rows_per_loan(demo_frames):
    # Benchmark scale: summing min(age, term) + 1 over the vintage weights, term mix and
    # monthly prepayment by hand gives about 12.2 rows a loan before charge-offs, recovery
    # rows and extensions; 8.6 (the old short terms) or 16+ (more than the loans' age
    # allows) would mean a broken mix.
    per_loan = len(demo_frames["loan_months"]) / len(demo_frames["loans"])
    assert 11.5 < per_loan < 13.5


def test_oldest_allowed_as_of():
    # The oldest vintage of as-of 2022-07-31 is 2019-08, the first month with a 1-year LPR.
    assert demo.resolve_as_of("2022-07-31") == dt.date(2022, 7, 31)


def test_loan_attributes(demo_frames):
    loans = demo_frames["loans"]
    assert loans["loan_id"].is_unique
    assert loans["loan_id"].str.fullmatch(r"00\d{16}").all()
    assert loans["borrower_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert (loans["principal"] > 0).all()
    assert set(loans["term_months"]) <= {6, 12, 18, 24, 36}
    assert set(loans["product"]) == {"经营贷", "消费贷", "农户贷"}
    assert set(loans["channel"]) == {"线上", "线下", "助贷"}
    assert set(loans["grade"]) == set("ABCDE")
    assert set(loans["guarantee_type"]) == {"信用", "保证", "抵押", "质押", "联保"}
    assert set(loans["repayment_method"]) == set(demo_params.METHODS)
    assert set(loans["borrower_gender"]) == {"M", "F"}
    assert loans["borrower_age"].between(18, 70).all()
    assert (~loans["is_first_loan"]).sum() > 0.1 * len(loans)
    repeat_borrowers = loans.groupby("borrower_id")["loan_id"].count()
    assert (repeat_borrowers >= 2).sum() > 1000


def test_joint_liability_groups(demo_frames):
    loans = demo_frames["loans"]
    grouped = loans[loans["group_id"].notna()]
    assert (grouped["guarantee_type"] == "联保").all()
    assert loans.loc[loans["guarantee_type"] == "联保", "group_id"].notna().all()
    sizes = grouped.groupby("group_id").agg(
        members=("loan_id", "size"), cities=("city", "nunique"),
        dates=("origination_date", "nunique"), borrowers=("borrower_id", "nunique"))
    assert sizes["members"].between(3, 5).all()
    assert (sizes["cities"] == 1).all()
    assert (sizes["dates"] == 1).all()
    assert len(sizes) > 100


def test_regions_official_names_and_codes(demo_frames):
    loans = demo_frames["loans"]
    official = {p["name"]: p["code"] for p in demo_params.PROVINCES}
    assert set(loans["province"]) == set(official)
    assert loans["region_code"].str.fullmatch(r"\d{6}").all()
    prefix = loans["province"].map(lambda name: official[name][:2])
    assert (loans["region_code"].str[:2] == prefix).all()
    pairs = loans.groupby("city")["region_code"].nunique()
    assert (pairs == 1).all()
    # Spot checks against GB/T 2260.
    codes = dict(zip(loans["city"], loans["region_code"]))
    assert codes["广州市"] == "440100"
    assert codes["南宁市"] == "450100"
    assert codes["大理白族自治州"] == "532900"


def test_month_rows_follow_contract(demo_frames):
    months = demo_frames["loan_months"]
    loans = demo_frames["loans"].set_index("loan_id")
    snapshot = pd.to_datetime(months["snapshot_date"])
    assert snapshot.dt.is_month_end.all()
    assert snapshot.max() == pd.Timestamp(AS_OF)
    assert not months.duplicated(["loan_id", "snapshot_date"]).any()
    assert (months["dpd"] >= 0).all()
    assert (months["outstanding_principal"] >= 0).all()
    assert (months["overdue_principal"] >= 0).all()
    assert (months["overdue_interest"] >= 0).all()
    assert months["loan_id"].isin(loans.index).all()
    origination_month = pd.to_datetime(loans.loc[months["loan_id"], "origination_date"]
                                       .to_numpy()).to_period("M")
    assert (snapshot.dt.to_period("M").to_numpy() >= origination_month.to_numpy()).all()
    assert set(months["status"]) == {"active", "paid_off", "charged_off", "restructured",
                                     "extended"}


def test_no_rows_after_close_except_recoveries(demo_frames):
    months = demo_frames["loan_months"]
    closing = months[months["status"].isin(["paid_off", "charged_off"])]
    closed_at = closing.groupby("loan_id")["snapshot_date"].min().rename("closed_at")
    later = months.join(closed_at, on="loan_id")
    later = later[later["snapshot_date"] > later["closed_at"]]
    assert len(later) > 0
    assert (later["status"] == "charged_off").all()
    assert (later["outstanding_principal"] == 0).all()
    assert (later["recovered_amount"] > 0).all()
    first_close = months.join(closed_at, on="loan_id")
    first_close = first_close[first_close["snapshot_date"] == first_close["closed_at"]]
    assert first_close["recovered_amount"].isna().all()
    paid_off_loans = set(first_close.loc[first_close["status"] == "paid_off", "loan_id"])
    assert not paid_off_loans & set(later["loan_id"])


def test_dpd_ages_with_buckets(demo_frames):
    months = demo_frames["loan_months"].sort_values(["loan_id", "snapshot_date"])
    previous = months.groupby("loan_id")["dpd"].shift()
    step = months["dpd"] - previous
    bucket = np.minimum(np.ceil(months["dpd"] / 30), 7)
    previous_bucket = np.minimum(np.ceil(previous / 30), 7)
    open_rows = ~months["status"].isin(["paid_off", "charged_off"])
    both = open_rows & (previous > 0) & (months["dpd"] > 0)
    # Rolling one bucket ages the loan by one month; staying moves only the due-day offset.
    rolled = both & (bucket == previous_bucket + 1)
    assert rolled.sum() > 1000
    assert step[rolled].between(26, 33).all()
    stayed = both & (bucket == previous_bucket) & (bucket < 7)
    assert stayed.sum() > 100
    assert step[stayed].abs().le(3).all()
    assert not (both & (bucket > previous_bucket + 1)).any()
    current = months["dpd"] == 0
    assert (months.loc[current & open_rows, "overdue_principal"] == 0).all()
    overdue = open_rows & (months["dpd"] > 0)
    assert (months.loc[overdue, "overdue_principal"] + months.loc[overdue, "overdue_interest"]
            > 0).all()


def test_money_adds_up_to_the_fen(demo_frames):
    months = demo_frames["loan_months"].sort_values(["loan_id", "snapshot_date"])
    loans = demo_frames["loans"].set_index("loan_id")
    paid = months.groupby("loan_id")["principal_paid"].cumsum()
    written = months["charged_off_amount"].fillna(0).groupby(months["loan_id"]).cumsum()
    principal = loans.loc[months["loan_id"], "principal"].to_numpy()
    remaining = principal - paid.to_numpy() - written.to_numpy()
    # DuckDB hands DECIMAL to pandas as float64; equal to the fen means within half a fen.
    assert np.abs(remaining - months["outstanding_principal"].to_numpy()).max() < 0.005
    recovered = months["recovered_amount"].fillna(0).groupby(months["loan_id"]).sum()
    charged = months["charged_off_amount"].fillna(0).groupby(months["loan_id"]).sum()
    assert (recovered <= charged).all()


def test_action_rows(demo_frames, demo_truth):
    actions = demo_frames["collection_actions"]
    loans = set(demo_frames["loans"]["loan_id"])
    assert actions["loan_id"].isin(loans).all()
    assert list(actions["action_id"]) == list(range(1, len(actions) + 1))
    assert (actions["dpd_at_action"] >= 1).all()
    assert set(actions["contact_target"]) == {"borrower", "emergency_contact", "third_party"}
    assert set(actions["channel"]) <= {"sms", "ai_voice", "manual_call", "field_visit", "letter",
                                       "outsourced", "legal", "installment_plan", "restructure"}
    assert set(actions["strategy"]) == set(
        demo_params.EARLY_ARMS + demo_params.MIDDLE_ARMS + demo_params.LATE_ARMS)
    voice = actions["channel"].isin(["manual_call", "ai_voice"])
    assert actions.loc[voice, "connected"].notna().all()
    assert actions.loc[actions["channel"] == "sms", "connected"].isna().all()
    assert (actions["amount_collected"] >= 0).all()
    assert (actions["cost"] > 0).all()
    assert actions["agent_id"].str.fullmatch(r"(SYS|AIV|CA|WW|FW|WF)\d+").all()
    assert actions["team"].notna().all()
    assert len(actions) == demo_truth["rows"]["collection_actions"]


def test_cure_payments_match_month_rows(demo_frames):
    actions = demo_frames["collection_actions"]
    months = demo_frames["loan_months"]
    paid = actions[actions["outcome"] == "paid"].copy()
    paid["snapshot_date"] = (pd.to_datetime(paid["action_time"]).dt.to_period("M")
                             .dt.to_timestamp(how="end").dt.normalize())
    months = months.assign(snapshot_date=pd.to_datetime(months["snapshot_date"]))
    joined = paid.merge(months, on=["loan_id", "snapshot_date"], how="left")
    assert joined["dpd"].notna().all()
    assert (joined["dpd"] == 0).all()
    got = joined["amount_collected"].to_numpy()
    expected = (joined["principal_paid"] + joined["interest_paid"]).to_numpy()
    assert np.abs(got - expected).max() < 0.005


def test_rates_positive_and_bounded(demo_frames):
    rate = demo_frames["loans"]["annual_rate"]
    assert rate.between(0.06, 0.40).all()
    units = np.rint(rate * 10_000)
    assert np.allclose(rate * 10_000, units)
    assert (units == 2400).sum() > 0
    assert (units == 3600).sum() > 0


@pytest.mark.parametrize("n_loans", [1, 40])
def test_tiny_portfolios(tmp_path, n_loans):
    truth = demo.generate_demo(tmp_path / "tiny.duckdb", n_loans=n_loans, seed=11, as_of=AS_OF)
    assert truth["rows"]["loans"] == n_loans
    assert truth["rows"]["loan_months"] >= n_loans
    counts = truth["compliance"]["breach_counts"]
    assert counts["night_contacts"] >= 0
    assert truth["compliance"]["total_breach_rows"] == (
        counts["night_contacts"] + counts["voice_calls_over_daily_cap"]
        + counts["non_borrower_contacts"])


def test_module_command_dispatch(tmp_path):
    path = tmp_path / "cmd.duckdb"
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "demo", "--db", str(path), "--loans", "200",
         "--seed", "2", "--as-of", AS_OF],
        cwd=repo, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert path.with_name("demo_truth.json").exists()
    bad = subprocess.run([sys.executable, "-m", "ingest", "demo", "--loans", "-3",
                          "--db", str(path)], cwd=repo, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2
    assert "positive" in bad.stderr


def test_locked_database_exit_code(tmp_path):
    path = tmp_path / "locked.duckdb"
    demo.generate_demo(path, n_loans=50, seed=1, as_of=AS_OF)
    # Another process keeps the file open for writing, as a running import would.
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('open', flush=True); time.sleep(30)", str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        assert demo.main(["--db", str(path), "--loans", "50", "--as-of", AS_OF]) == 1
    finally:
        holder.kill()
        holder.wait()
    assert Path(path).exists()
