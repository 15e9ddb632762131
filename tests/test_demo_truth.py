"""Demo truth recovered from the loaded tables by plain pandas code.

Each test recomputes a documented parameter of the 20,000-loan demo (``demo_db``) from the
stored rows, independently of the generator's code, and compares it with
``demo_truth.json``. Random figures are allowed 4 binomial standard errors; counts that
the generator fixes (compliance breaches, rate-cap shares) must match exactly.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from ingest import demo_params

SIGMAS = 4.0


@pytest.fixture(scope="module")
def frames(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        loans = con.execute("select * from loans").df()
        months = con.execute(
            "select loan_id, snapshot_date, dpd, status, outstanding_principal "
            "from loan_months order by loan_id, snapshot_date"
        ).df()
        actions = con.execute("select * from collection_actions").df()
    finally:
        con.close()
    return loans, months, actions


@pytest.fixture(scope="module")
def pairs(frames):
    """Consecutive month-end pairs (t-1 -> t) of each loan with the loan's attributes."""
    loans, months, _ = frames
    months = months.copy()
    months["snapshot_date"] = pd.to_datetime(months["snapshot_date"])
    grouped = months.groupby("loan_id")
    months["next_dpd"] = grouped["dpd"].shift(-1)
    months["next_status"] = grouped["status"].shift(-1)
    months["next_date"] = grouped["snapshot_date"].shift(-1)
    months["prev_dpd"] = grouped["dpd"].shift(1)
    pairs = months[months["next_dpd"].notna()].copy()
    # Only consecutive month-ends of open loans are transitions.
    pairs = pairs[~pairs["status"].isin(["paid_off", "charged_off"])]
    assert (month_number(pairs["next_date"]) - month_number(pairs["snapshot_date"]) == 1).all()
    attributes = loans.set_index("loan_id")[
        ["grade", "product", "province", "term_months", "origination_date"]]
    pairs = pairs.join(attributes, on="loan_id")
    pairs["next_mob"] = month_number(pairs["next_date"]) - month_number(pairs["origination_date"])
    return pairs


def month_number(dates: pd.Series) -> pd.Series:
    """Months since year 0 (so a difference is a count of calendar months)."""
    dates = pd.to_datetime(dates)
    return dates.dt.year * 12 + dates.dt.month


def within(observed: float, expected: float, n: int, sigmas: float = SIGMAS) -> bool:
    se = math.sqrt(max(expected * (1 - expected), 1e-12) / n)
    return abs(observed - expected) <= sigmas * se


def test_c_to_m1_by_grade(pairs, demo_truth):
    current = pairs[pairs["dpd"] == 0]
    entered = current["next_dpd"].between(1, 30)
    truth = demo_truth["c_to_m1"]["by_grade"]
    rates = {}
    for grade, rows in current.groupby("grade"):
        expected = truth[grade]
        assert len(rows) == expected["loan_months"], grade
        rate = entered[rows.index].mean()
        rates[grade] = rate
        assert within(rate, expected["expected_rate"], len(rows)), (grade, rate, expected)
    assert rates["A"] < rates["B"] < rates["C"] < rates["D"] < rates["E"]


@pytest.mark.parametrize(
    ("low", "high", "next_low", "next_high", "bucket"),
    [(31, 60, 61, 90, "M2"), (61, 90, 91, 120, "M3"), (91, 120, 121, 150, "M4"),
     (121, 150, 151, 180, "M5")],
)
def test_roll_rates(pairs, demo_truth, low, high, next_low, next_high, bucket):
    rows = pairs[pairs["dpd"].between(low, high)]
    nominal = demo_truth["transitions"]["nominal"][bucket]
    roll_target = {"M2": "M3", "M3": "M4", "M4": "M5", "M5": "M6"}[bucket]
    rolled = rows["next_dpd"].between(next_low, next_high).mean()
    cured = (rows["next_dpd"] == 0).mean()
    assert within(rolled, nominal[roll_target], len(rows)), (bucket, rolled)
    assert within(cured, nominal["C"] + nominal.get("restructured", 0), len(rows)), (bucket, cured)


def test_m1_roll_between_arms(pairs, demo_truth):
    rows = pairs[pairs["dpd"].between(1, 30)]
    rolled = rows["next_dpd"].between(31, 60).mean()
    arms = demo_truth["transitions"]["nominal"]["M1"]["M2"]
    assert min(arms.values()) - 0.03 < rolled < max(arms.values()) + 0.03


def test_charge_off_after_180(pairs):
    written = pairs[pairs["next_status"] == "charged_off"]
    assert len(written) > 50
    assert (written["dpd"] > 180).all()
    assert (written["next_dpd"] > 180).all()


def test_prepayment_by_product(pairs, demo_truth):
    # Eligible: current, plain status, and the next month-end is before the contractual end.
    eligible = pairs[(pairs["dpd"] == 0) & (pairs["status"] == "active")
                     & (pairs["next_mob"] < pairs["term_months"])]
    probabilities = demo_truth["prepayment"]["monthly_probability"]
    for product, rows in eligible.groupby("product"):
        rate = (rows["next_status"] == "paid_off").mean()
        assert within(rate, probabilities[product], len(rows)), (product, rate)


@pytest.fixture(scope="module")
def early_episodes(pairs, frames):
    """M1 episode starts (current before, M1 now) with a next month-end and their arm."""
    _, _, actions = frames
    starts = pairs[pairs["dpd"].between(1, 30)
                   & ((pairs["prev_dpd"] == 0) | pairs["prev_dpd"].isna())].copy()
    early = actions[actions["strategy"].isin(demo_params.EARLY_ARMS)].copy()
    early["month"] = pd.to_datetime(early["action_time"]).dt.to_period("M")
    arm = early.groupby(["loan_id", "month"])["strategy"].agg(lambda s: s.iloc[0])
    starts["month"] = starts["next_date"].dt.to_period("M")
    starts = starts.join(arm.rename("arm"), on=["loan_id", "month"])
    starts["cured"] = starts["next_dpd"] == 0
    return starts


def test_every_episode_has_one_early_arm(early_episodes, frames):
    assert early_episodes["arm"].notna().all()
    _, _, actions = frames
    early = actions[actions["strategy"].isin(demo_params.EARLY_ARMS)].copy()
    early["month"] = pd.to_datetime(early["action_time"]).dt.to_period("M")
    assert (early.groupby(["loan_id", "month"])["strategy"].nunique() == 1).all()


def test_early_cure_rates_and_lift(early_episodes, demo_truth):
    truth = demo_truth["collections"]["early"]
    arm_a, arm_b = truth["arms"]
    summary = early_episodes.groupby("arm")["cured"].agg(["mean", "size"])
    for arm in (arm_a, arm_b):
        assert summary.loc[arm, "size"] == truth["episodes_with_next_month_end"][arm]
        assert within(summary.loc[arm, "mean"], truth["true_cure_probability"][arm],
                      int(summary.loc[arm, "size"])), arm
    # Two-proportion z-test: the true lift lies in the 95% CI and the lift is significant.
    p_a, n_a = summary.loc[arm_a, "mean"], summary.loc[arm_a, "size"]
    p_b, n_b = summary.loc[arm_b, "mean"], summary.loc[arm_b, "size"]
    lift = p_b - p_a
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    assert lift - 1.96 * se <= truth["true_lift"] <= lift + 1.96 * se
    pooled = (p_a * n_a + p_b * n_b) / (n_a + n_b)
    z = lift / math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    assert z > 1.96


def test_early_arms_balanced(early_episodes, frames):
    loans = frames[0].set_index("loan_id")
    episodes = early_episodes.join(loans[["principal"]], on="loan_id")
    shares = episodes["arm"].value_counts(normalize=True)
    assert shares.between(0.45, 0.55).all()
    means = episodes.groupby("arm")["principal"].agg(["mean", "var"])
    smd = (means["mean"].iloc[1] - means["mean"].iloc[0]) / math.sqrt(means["var"].mean())
    assert abs(smd) < 0.1


def test_middle_assignment_not_random(pairs, frames, demo_truth):
    _, _, actions = frames
    truth = demo_truth["collections"]["middle"]
    entries = pairs[pairs["next_dpd"].between(31, 60) & pairs["dpd"].between(1, 30)].copy()
    middle = actions[actions["strategy"].isin(demo_params.MIDDLE_ARMS)].copy()
    middle["month"] = pd.to_datetime(middle["action_time"]).dt.to_period("M")
    arm = middle.groupby(["loan_id", "month"])["strategy"].agg(lambda s: s.iloc[0])
    entries["month"] = entries["next_date"].dt.to_period("M") + 1
    entries = entries.join(arm.rename("arm"), on=["loan_id", "month"]).dropna(subset=["arm"])
    # Balance at M2 entry is the outstanding principal at that month-end.
    balance = pairs.set_index(["loan_id", "snapshot_date"])["outstanding_principal"]
    entries["balance"] = balance.reindex(
        list(zip(entries["loan_id"], entries["next_date"]))).to_numpy()
    entries = entries.dropna(subset=["balance"])
    stats = entries.groupby("arm")["balance"].agg(["mean", "var", "size"])
    arm_c, arm_d = truth["arms"]
    smd = (stats.loc[arm_d, "mean"] - stats.loc[arm_c, "mean"]) / math.sqrt(
        (stats.loc[arm_d, "var"] + stats.loc[arm_c, "var"]) / 2)
    assert smd > 0.1
    assert truth["smd_balance"] > 0.1
    assert abs(smd - truth["smd_balance"]) < 0.15


def test_compliance_breach_counts_exact(frames, demo_truth):
    loans, _, actions = frames
    actions = actions.join(loans.set_index("loan_id")["borrower_id"], on="loan_id")
    time = pd.to_datetime(actions["action_time"])
    seconds = time.dt.hour * 3600 + time.dt.minute * 60 + time.dt.second
    night = ((seconds >= 22 * 3600) | (seconds < 8 * 3600)).sum()

    voice = actions[actions["channel"].isin(["manual_call", "ai_voice"])
                    & actions["connected"].fillna(False).astype(bool)]
    per_day = voice.groupby([voice["borrower_id"], pd.to_datetime(voice["action_time"]).dt.date]
                            ).size()
    over_cap = (per_day - 3).clip(lower=0).sum()
    days_over = (per_day > 3).sum()

    non_borrower = actions["contact_target"].isin(["emergency_contact", "third_party"])
    counts = demo_truth["compliance"]["breach_counts"]
    assert night == counts["night_contacts"]
    assert over_cap == counts["voice_calls_over_daily_cap"]
    assert days_over == counts["borrower_days_over_daily_cap"]
    assert non_borrower.sum() == counts["non_borrower_contacts"]
    assert (actions["contact_target"] == "emergency_contact").sum() == counts["emergency_contact"]
    assert night > 0
    assert over_cap > 0
    assert non_borrower.sum() > 0


def test_compliance_window_edges_not_breaches(frames):
    _, _, actions = frames
    clock = pd.to_datetime(actions["action_time"]).dt.strftime("%H:%M:%S")
    assert (clock == "08:00:00").sum() > 0
    assert (clock == "21:59:59").sum() > 0
    assert (clock == "22:00:00").sum() > 0
    assert (clock == "07:59:59").sum() > 0


def test_rate_cap_shares_exact(frames, demo_truth, realdata):
    loans, _, _ = frames
    lpr = pd.read_csv(realdata / "china-lpr" / "lpr_monthly.csv")
    lpr["month"] = pd.to_datetime(lpr["date"]).dt.to_period("M")
    by_month = lpr.set_index("month")["lpr_1y_pct"]
    months = pd.to_datetime(loans["origination_date"]).dt.to_period("M")
    # Months after the last announcement reuse its value.
    full = by_month.reindex(pd.period_range(by_month.index.min(), months.max(), freq="M")).ffill()
    cap = full.reindex(months).to_numpy() * 4 / 100
    rate = loans["annual_rate"].to_numpy()
    principal = loans["principal"].to_numpy()
    truth = demo_truth["pricing"]["overall"]
    for name, mask in {"above_4x_lpr": rate > cap + 1e-9, "above_24pct": rate > 0.24 + 1e-9,
                       "above_36pct": rate > 0.36 + 1e-9}.items():
        assert mask.sum() == truth[name]["count"], name
        assert principal[mask].sum() / principal.sum() == pytest.approx(
            truth[name]["share_by_principal"], rel=1e-9), name
    assert 0.05 < truth["above_4x_lpr"]["share_by_count"] < 0.6
    assert truth["above_36pct"]["count"] > 0
    # Loans at exactly 24% do not exceed 24%.
    assert demo_truth["pricing"]["exactly_24pct_loans"] > 0


def test_large_province_order(pairs, demo_truth):
    order = demo_truth["provinces"]["large_province_risk_order"]
    current = pairs[(pairs["dpd"] == 0) & pairs["province"].isin(order)]
    rates = current.groupby("province")["next_dpd"].apply(lambda s: s.between(1, 30).mean())
    assert rates.sort_values().index.tolist() == order


def test_recoveries_and_write_offs(demo_db, demo_truth):
    con = duckdb.connect(str(demo_db), read_only=True)
    charged, recovered = con.execute(
        "select sum(charged_off_amount)::double, sum(recovered_amount)::double from loan_months"
    ).fetchall()[0]
    con.close()
    assert charged == pytest.approx(demo_truth["charge_off"]["charged_off_amount"], abs=0.005)
    assert recovered == pytest.approx(demo_truth["recoveries"]["recovered_amount"], abs=0.005)
    assert 0 < recovered / charged < 0.4


def test_restructured_redefault(pairs, demo_truth):
    truth = demo_truth["restructuring"]
    assert truth["restructurings"] > 20
    restructured = pairs[(pairs["status"] == "restructured") & (pairs["dpd"] == 0)]
    rate = restructured["next_dpd"].between(1, 30).mean()
    assert within(rate, truth["monthly_redefault_probability"], len(restructured))


def test_cox_hazard_ratios_cover_truth(frames, demo_truth):
    """Cox model of time to first dpd > 90 (lifelines) on the demo: every true hazard ratio
    of a recoverable covariate lies inside its fitted 95% CI."""
    from lifelines import CoxPHFitter

    loans, months, _ = frames
    months = months.join(loans.set_index("loan_id")["origination_date"], on="loan_id")
    months["mob"] = month_number(months["snapshot_date"]) - month_number(
        months["origination_date"])
    event_rows = months[(months["dpd"] > 90) | (months["status"] == "charged_off")]
    event_mob = event_rows.groupby("loan_id")["mob"].min()
    paid_mob = months[months["status"] == "paid_off"].groupby("loan_id")["mob"].min()
    last_mob = months.groupby("loan_id")["mob"].max()
    data = loans.set_index("loan_id")[["grade", "channel", "province", "is_first_loan",
                                       "product"]].copy()
    data["event"] = data.index.isin(event_mob.index)
    data["duration"] = event_mob.reindex(data.index).fillna(
        paid_mob.reindex(data.index)).fillna(last_mob.reindex(data.index))
    data = data[data["duration"] > 0]

    hazard = demo_truth["hazard_model"]
    reference = hazard["reference"]
    large = demo_truth["provinces"]["large_province_risk_order"]
    design = pd.DataFrame(index=data.index)
    for column in ("grade", "channel", "product"):
        for level in sorted(set(data[column]) - {reference[column]}):
            design[f"{column}={level}"] = (data[column] == level).astype(float)
    for province in large:
        if province != reference["province"]:
            design[f"province={province}"] = (data["province"] == province).astype(float)
    design["province=other"] = (~data["province"].isin(large)).astype(float)
    design["is_first_loan=false"] = (~data["is_first_loan"]).astype(float)
    design["duration"] = data["duration"]
    design["event"] = data["event"]
    fitted = CoxPHFitter().fit(design, "duration", "event").summary

    expected = hazard["expected_hazard_ratio_time_to_90"]
    checks = {f"grade={g}": expected["grade"][g] for g in "ABDE"}
    checks.update({f"channel={c}": expected["channel"][c] for c in ("线上", "助贷")})
    checks.update({f"province={p}": expected["province"][p] for p in large
                   if p != reference["province"]})
    checks["is_first_loan=false"] = expected["is_first_loan"]["false"]
    for name, true_ratio in checks.items():
        low = fitted.loc[name, "exp(coef) lower 95%"]
        high = fitted.loc[name, "exp(coef) upper 95%"]
        assert low <= true_ratio <= high, (name, true_ratio, low, high)


def test_recovery_expectation(demo_db, demo_truth):
    """Recovered amounts against the expectation months * probability * mean share."""
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        rows = con.execute(
            """
            select m.loan_id, m.snapshot_date, m.charged_off_amount::double as charged,
                m.recovered_amount::double as recovered, l.guarantee_type
            from loan_months m
            join loans l using (loan_id)
            where m.status = 'charged_off'
            """
        ).df()
    finally:
        con.close()
    truth = demo_truth["recoveries"]
    low, high = truth["share_per_recovery"]
    mean_share = (low + high) / 2
    second_moment = (low**2 + low * high + high**2) / 3

    write_offs = rows[rows["charged"].notna()].set_index("loan_id")
    months_after = np.minimum(
        month_number(pd.Series(pd.Timestamp(demo_truth["as_of"]), index=write_offs.index))
        - month_number(write_offs["snapshot_date"]), 24)
    probability = write_offs["guarantee_type"].map(truth["monthly_probability"])
    charged = write_offs["charged"]
    expected = (charged * months_after * probability * mean_share).sum()
    variance = (charged**2 * months_after
                * (probability * second_moment - (probability * mean_share) ** 2)).sum()
    recovered = rows["recovered"].sum()
    assert recovered > 0
    assert abs(recovered - expected) <= SIGMAS * math.sqrt(variance), (recovered, expected)
