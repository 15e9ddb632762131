"""The survival page in Streamlit's AppTest (both languages, simulated and empty database),
and the report commands ``python -m analysis survival`` and ``cox``.

Page checks compare what is drawn with the analysis functions called directly on the same
file. The commands are checked for their documented columns and against those tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analysis.cli import main
from analysis.filters import Filters
from analysis.survival import KM_COLUMNS, kaplan_meier
from analysis.survival_cox import COX_COLUMNS
from analysis.survival_data import load_survival_data
from queries import db
from tests.fixtures_survival import simulate_portfolio, write_portfolio

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def simulated_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("survival_page") / "simulated.duckdb"
    con = db.connect(path)
    loans, months = simulate_portfolio(n_loans=2500, seed=3)
    attributes = pd.DataFrame(
        {"loan_id": loans["loan_id"], "attribute": "职业", "value": ["工薪" if i % 3 else "农户" for i in range(len(loans))]}
    )
    write_portfolio(con, loans, months, attributes)
    con.close()
    return path


def _expected_km(path: Path):
    con = db.connect(path, read_only=True)
    try:
        return kaplan_meier(load_survival_data(con, Filters(), 90), "grade")
    finally:
        con.close()


def _survival_page(monkeypatch, path: Path, lang: str) -> AppTest:
    monkeypatch.setenv("LOANLENS_DB", str(path))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("views/survival.py").run()
    return at


def _fit_cox(at: AppTest) -> AppTest:
    at.button(key="survival_cox_run").click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("lang, title, not_reached", [("zh", "生存分析：违约时间", "未达到"), ("en", "Survival analysis: time to default", "not reached")])
def test_page_renders_curves_and_cox(monkeypatch, simulated_db, lang, title, not_reached):
    at = _survival_page(monkeypatch, simulated_db, lang)
    assert not at.exception, at.exception
    assert at.title[0].value == title
    # Three KM segments (grades A, B, C) by default; the page shows the log-rank verdict.
    markdown = " ".join(element.value for element in at.markdown)
    assert "log-rank" in markdown.lower()
    # Before the button: KM, summary and CIF downloads (CSV + Excel), no Cox table.
    assert len(at.get("download_button")) == 6
    assert len(at.dataframe) == 2
    _fit_cox(at)
    # Every chart's data can be downloaded: KM, summary, CIF, Cox, PH test (CSV + Excel).
    assert len(at.get("download_button")) == 10
    # The Cox table lists grade levels against the baseline, with hazard ratios.
    tables = [element.value for element in at.dataframe]
    cox_table = tables[-1]
    assert len(cox_table) >= 3
    summary_table = tables[1]
    expected = _expected_km(simulated_db)
    assert len(summary_table) == len(expected.summary)
    loans_column = summary_table.columns[1]
    assert [int(text.replace(",", "")) for text in summary_table[loans_column]] == expected.summary["loans"].tolist()
    assert not [error.value for error in at.error]


def test_page_switches_segment_and_threshold(monkeypatch, simulated_db):
    at = _survival_page(monkeypatch, simulated_db, "en")
    at.radio(key="survival_event_dpd").set_value(30).run()
    at.selectbox(key="survival_segment").set_value("attr:职业").run()
    assert not at.exception, at.exception
    summary = at.dataframe[1].value
    assert sorted(summary["Segment"]) == ["农户", "工薪"]
    at.selectbox(key="survival_segment").select_index(0).run()
    assert not at.exception
    assert list(at.dataframe[1].value["Segment"]) == ["All"]
    at.multiselect(key="survival_covariates").set_value([]).run()
    assert any("Choose at least one covariate" in element.value for element in at.info)


def test_cox_fits_on_button_only(monkeypatch, simulated_db):
    at = _survival_page(monkeypatch, simulated_db, "en")
    captions = " ".join(element.value for element in at.caption)
    assert "fitted only when you press" in captions
    assert at.button(key="survival_cox_run").label == "Fit the Cox model"
    assert not any("Hazard ratio" in str(list(element.value.columns)) for element in at.dataframe)

    _fit_cox(at)
    assert len(at.dataframe) == 3
    assert any("Concordance" in element.value or "concordance" in element.value for element in at.markdown)

    # The same choices are shown again on the next run without a click.
    at.radio(key="survival_event_dpd").set_value(90).run()
    assert len(at.dataframe) == 3
    assert len(at.get("download_button")) == 10

    # New covariates need the button again.
    at.multiselect(key="survival_covariates").set_value(["grade"]).run()
    assert len(at.dataframe) == 2
    assert len(at.get("download_button")) == 6
    _fit_cox(at)
    cox_table = at.dataframe[-1].value
    # Three simulated grades: two hazard ratios against the baseline grade.
    assert len(cox_table) == 2
    assert len(at.get("download_button")) == 10


@pytest.mark.parametrize("lang, text", [("zh", "没有可分析的贷款"), ("en", "No loans to analyse")])
def test_page_on_empty_database(monkeypatch, db_path, lang, text):
    at = _survival_page(monkeypatch, db_path, lang)
    assert not at.exception, at.exception
    assert any(text in element.value for element in at.info)


def _run_cli(capsys, *args) -> tuple[int, str]:
    """Run ``python -m analysis ARGS`` in this process; return (exit code, stderr + log)."""
    try:
        code = main(list(args))
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    return code, capsys.readouterr().err


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_survival_command_writes_km_table(simulated_db, tmp_path, capsys):
    # A handler on the module's logger itself: page tests earlier in the run may leave
    # logging configured so that records do not reach pytest's caplog.
    handler = _ListHandler()
    survival_logger = logging.getLogger("analysis.survival")
    previous_level = survival_logger.level
    survival_logger.addHandler(handler)
    survival_logger.setLevel(logging.INFO)
    out = tmp_path / "km.csv"
    try:
        code, _ = _run_cli(capsys, "survival", "--db", str(simulated_db), "--segment", "grade", "--out", str(out))
    finally:
        survival_logger.removeHandler(handler)
        survival_logger.setLevel(previous_level)
    assert code == 0
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert list(table.columns) == KM_COLUMNS
    expected = _expected_km(simulated_db).table
    pd.testing.assert_series_equal(table["survival"], expected["survival"].astype(float), check_names=False)
    assert any(message.startswith("Log-rank test") for message in handler.messages)


def test_cox_command_writes_hazard_ratios(simulated_db, tmp_path, capsys):
    out = tmp_path / "cox.csv"
    code, _ = _run_cli(
        capsys, "cox", "--db", str(simulated_db), "--covariates", "grade,principal", "--event-dpd", "90", "--out", str(out)
    )
    assert code == 0
    table = pd.read_csv(out, encoding="utf-8-sig")
    assert list(table.columns) == COX_COLUMNS
    assert set(table["covariate"]) >= {"principal_10k_yuan"}
    assert (table["ci_lower"] <= table["hazard_ratio"]).all()
    assert (table["hazard_ratio"] <= table["ci_upper"]).all()


@pytest.mark.parametrize(
    "args, code, message",
    [
        (("survival", "--segment", "salary"), 1, "--segment must be one of"),
        (("cox", "--covariates", "grade,salary"), 2, "unknown ['salary']"),
        (("survival", "--event-dpd", "45"), 2, "invalid choice"),
        (("survival", "--segment", "attr:收入"), 1, "extra attribute(s) ['收入'] not found; known attributes: 职业"),
        (("cox", "--covariates", "grade,attr:收入"), 1, "not found; known attributes: 职业"),
    ],
)
def test_commands_reject_bad_options(simulated_db, capsys, args, code, message):
    exit_code, stderr = _run_cli(capsys, *args, "--db", str(simulated_db))
    assert exit_code == code
    assert message in stderr


@pytest.mark.parametrize("lang, koujing", [("zh", "口径"), ("en", "Definition")])
def test_page_on_demo_portfolio(monkeypatch, demo_db, lang, koujing):
    at = _survival_page(monkeypatch, demo_db, lang)
    assert not at.exception, at.exception
    captions = " ".join(element.value for element in at.caption)
    assert koujing in captions
    # Grades A to E of the demo, one row each in the median and survival table.
    assert len(at.dataframe[1].value) == 5
    assert len(at.get("download_button")) == 6
    _fit_cox(at)
    assert len(at.get("download_button")) == 10
