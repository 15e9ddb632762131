"""Cox model on awkward real-tape columns: each case gives a note and partial results.

The portfolio is simulated (tests/fixtures_survival.py) with extra attributes added the way
the import keeps unmatched columns: as text in loan_attributes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.filters import Filters
from analysis.survival_cox import build_design, fit_cox
from analysis.survival_data import load_survival_data
from queries import db
from tests.fixtures_survival import simulate_portfolio, write_portfolio

ATTRIBUTES = ("合同金额", "职业", "客户编码")


@pytest.fixture(scope="module")
def attribute_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("cox_edges") / "edges.duckdb"
    loans, months = simulate_portfolio(n_loans=3000, seed=5)
    rng = np.random.default_rng(3)
    jobs = rng.choice(["个体工商户", "农户", "工薪", "自由职业"], size=len(loans))
    attributes = pd.concat(
        [
            # Contract amount: the principal again, as text, in another column.
            pd.DataFrame({"loan_id": loans["loan_id"], "attribute": "合同金额", "value": loans["principal"].map("{:.2f}".format)}),
            pd.DataFrame({"loan_id": loans["loan_id"], "attribute": "职业", "value": jobs}),
            # One value per loan: an identifier, not a covariate.
            pd.DataFrame({"loan_id": loans["loan_id"], "attribute": "客户编码", "value": [f"C{i:07d}" for i in range(len(loans))]}),
        ]
    )
    con = db.connect(path)
    write_portfolio(con, loans, months, attributes)
    data = load_survival_data(con, Filters(), 90, ATTRIBUTES)
    con.close()
    return data


def _codes(result) -> dict:
    return {note.code: note for note in result.notes}


def test_constant_column_dropped_by_name(attribute_data):
    # guarantee_type is 信用 for every simulated loan.
    result = fit_cox(attribute_data, ["grade", "guarantee_type"])
    assert result.fitted
    assert result.dropped["guarantee_type"] == "constant"
    note = _codes(result)["dropped_constant"]
    assert note.params["column"] == "guarantee_type"
    assert "guarantee_type" in note.text("en")
    assert not result.table["variable"].eq("guarantee_type").any()


def test_collinear_amount_columns_dropped_by_name(attribute_data):
    result = fit_cox(attribute_data, ["principal", "attr:合同金额", "grade"])
    assert result.fitted
    note = _codes(result)["dropped_collinear"]
    assert note.params["column"] == "attr:合同金额"
    assert note.params["with"] == "principal_10k_yuan"
    assert "attr:合同金额" in note.text("zh")
    assert set(result.table["covariate"]) >= {"principal_10k_yuan"}
    assert "attr:合同金额" not in set(result.table["covariate"])


def test_text_covariate_becomes_levels(attribute_data):
    result = fit_cox(attribute_data, ["attr:职业"])
    assert result.fitted
    baseline = result.baselines["attr:职业"]
    levels = set(result.table["level"])
    assert levels == {"个体工商户", "农户", "工薪", "自由职业"} - {baseline}
    # The simulated hazard does not depend on the job, so the point estimates stay near 1.
    assert result.table["hazard_ratio"].between(0.6, 1.6).all()


def test_identifier_like_text_levels_merged(attribute_data):
    result = fit_cox(attribute_data, ["attr:客户编码"], max_levels=8)
    note = _codes(result)["levels_merged"]
    assert note.params["levels"] == attribute_data.n_loans
    assert note.params["max"] == 8
    assert len(result.table) <= 7


def test_level_without_defaults_left_out(attribute_data):
    records = attribute_data.records.copy()
    # A channel value given only to loans that never defaulted: separation.
    safe = records.index[~records["event"]][:200]
    records.loc[safe, "channel"] = "银行自营"
    data = type(attribute_data)(records, attribute_data.excluded, 90, None)
    result = fit_cox(data, ["channel", "grade"])
    assert result.fitted
    note = _codes(result)["level_no_events"]
    assert note.params["levels"] == "银行自营"
    assert result.n_loans == len(records) - 200
    assert "银行自营" not in set(result.table["level"].dropna())


def test_too_few_events_warns_but_fits(attribute_data):
    records = attribute_data.records.copy()
    # Keep only 6 defaults.
    events = records.index[records["event"]]
    records = records.drop(events[6:])
    data = type(attribute_data)(records.reset_index(drop=True), attribute_data.excluded, 90, None)
    result = fit_cox(data, ["principal"])
    assert result.n_events == 6
    assert "cox_few_events" in _codes(result)
    assert result.fitted


def test_perfect_predictor_penalized_not_crash(attribute_data):
    records = attribute_data.records.copy()
    # A numeric column that is larger for every default than for any other loan.
    records["score"] = np.where(records["event"], 900.0, 300.0) + np.arange(len(records)) * 1e-3
    data = type(attribute_data)(records, attribute_data.excluded, 90, None)
    result = fit_cox(data, ["score", "grade"])
    codes = _codes(result)
    assert "cox_penalized" in codes or "cox_failed" in codes
    if result.fitted:
        assert np.isfinite(result.table["hazard_ratio"]).all()


def test_unknown_column_rejected_with_choices(attribute_data):
    with pytest.raises(ValueError, match="unknown column 'salary'"):
        build_design(attribute_data.records, ["salary"])


def test_no_covariates_is_a_note(attribute_data):
    result = fit_cox(attribute_data, [])
    assert not result.fitted
    assert "cox_no_covariates" in _codes(result)


def test_empty_text_covariate_dropped(attribute_data):
    records = attribute_data.records.assign(**{"attr:备注": None})
    data = type(attribute_data)(records, attribute_data.excluded, 90, None)
    result = fit_cox(data, ["grade", "attr:备注"])
    assert result.fitted
    assert result.dropped["attr:备注"] == "all_missing"
    assert "dropped_all_missing" in _codes(result)
