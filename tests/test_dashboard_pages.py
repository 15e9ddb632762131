"""Every dashboard page through dashboard/app.py with Streamlit's AppTest.

Each page is rendered in Chinese and English on the demo portfolio (a random tape while
ingest.demo is absent) and on an empty database, and must not raise.
In English, no catalog key may show raw and no Chinese text may remain apart from data
values (names read from the database) and the language switch's own "中文" option.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from messages import load_catalog
from queries import db
from tests.fixtures_kpis import build_random_tape

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "dashboard" / "app.py")
PAGES = ("kpis", "vintage", "survival", "regions", "collections", "compliance",
         "data_import", "data_download")
# Pages of this area; the others are checked only for exceptions, because their owners
# may show deliberate st.error notices (a missing optional module, for example).
OWN_PAGES = ("kpis",)
HAN = re.compile(r"[\u3400-\u9fff\uff01-\uff5e\u3001-\u303f]")
# Text the English UI may show in Chinese: the name of the Chinese language option.
ALLOWED_CHINESE = ("中文",)
TEXT_ATTRIBUTES = ("value", "label", "body", "delta", "help", "placeholder", "delta_description")


@pytest.fixture(scope="module")
def random_db(tmp_path_factory) -> Path:
    return build_random_tape(tmp_path_factory.mktemp("pages") / "random.duckdb")


@pytest.fixture(scope="module")
def data_db(request) -> Path:
    """The demo portfolio (tests/conftest.py), or the random tape when ingest.demo is absent."""
    try:
        import ingest.demo  # noqa: F401
    except ImportError:
        return request.getfixturevalue("random_db")
    return request.getfixturevalue("demo_db")


def _render(db_file: Path, page: str, language: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("LOANLENS_DB", str(db_file))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["lang"] = language
    at.run()
    if page != "kpis":
        at.switch_page(f"views/{page}.py").run()
    return at


def _walk(node):
    yield node
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for child in children.values():
            yield from _walk(child)


def _visible_texts(at: AppTest) -> list[str]:
    """Collect labels, texts and options of every element; of tables only the headers."""
    texts: list[str] = []
    for root in (at.main, at.sidebar):
        for node in _walk(root):
            for attribute in TEXT_ATTRIBUTES:
                try:
                    value = getattr(node, attribute, None)
                except Exception:  # some elements compute properties lazily from protos
                    continue
                if isinstance(value, str):
                    texts.append(value)
                elif isinstance(value, pd.DataFrame):
                    texts.extend(str(column) for column in value.columns)
            options = getattr(node, "options", None)
            if isinstance(options, list):
                texts.extend(str(option) for option in options)
    return [text for text in texts if text]


def _data_values(db_file: Path) -> set[str]:
    """Every distinct text value stored in the database (names shown as data)."""
    con = db.connect(db_file, read_only=True)
    values: set[str] = set()
    columns = con.execute(
        "select table_name, column_name from information_schema.columns "
        "where data_type = 'VARCHAR' and table_name not in ('app_meta')"
    ).fetchall()
    for table, column in columns:
        rows = con.execute(f'select distinct "{column}" from "{table}" where "{column}" is not null').fetchall()
        values.update(str(row[0]) for row in rows)
    con.close()
    return {value for value in values if HAN.search(value)}


def _english_catalog_chinese() -> set[str]:
    """Chinese runs written on purpose into English catalog strings (e.g. 广东省 as an example)."""
    runs: set[str] = set()
    for texts in load_catalog().values():
        runs.update(re.findall(r"[\u3400-\u9fff\uff01-\uff5e\u3001-\u303f]+", texts["en"]))
    return runs


def _chinese_left(text: str, data_values: set[str]) -> bool:
    allowed = data_values | set(ALLOWED_CHINESE) | _english_catalog_chinese()
    for value in sorted(allowed, key=len, reverse=True):
        text = text.replace(value, "")
    return bool(HAN.search(text))


def _raw_keys(texts: list[str]) -> list[str]:
    keys = load_catalog().keys()
    return [text for text in texts for key in keys if key in text]


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_data(data_db, page, language, monkeypatch):
    at = _render(data_db, page, language, monkeypatch)
    assert not at.exception, [item.value for item in at.exception]
    if page in OWN_PAGES:
        assert not at.error, [item.value for item in at.error]
    assert at.sidebar.multiselect, "the shared filters are drawn on every page"
    if language == "en":
        texts = _visible_texts(at)
        assert _raw_keys(texts) == []
        data_values = _data_values(data_db)
        assert [text for text in texts if _chinese_left(text, data_values)] == []


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_on_empty_database(db_path, page, language, monkeypatch):
    at = _render(db_path, page, language, monkeypatch)
    assert not at.exception, [item.value for item in at.exception]


def test_chinese_kpis_page_texts(random_db, monkeypatch):
    at = _render(random_db, "kpis", "zh", monkeypatch)
    texts = _visible_texts(at)
    assert "经营概览" in [title.value for title in at.title]
    assert "本月要点" in [header.value for header in at.subheader]
    labels = [metric.label for metric in at.metric]
    assert labels[:2] == ["在贷余额", "在贷笔数"]  # cards fill rows left to right
    assert any("个百分点" in text for text in texts), "rate changes are in 个百分点"
    assert len(at.metric) == 10


def test_english_switch_changes_kpis_texts(random_db, monkeypatch):
    zh = _render(random_db, "kpis", "zh", monkeypatch)
    en = _render(random_db, "kpis", "en", monkeypatch)
    assert [m.label for m in en.metric] != [m.label for m in zh.metric]
    assert any(" pp" in (metric.delta or "") for metric in en.metric)
    assert [title.value for title in en.title] == ["Monthly KPIs"]


def test_kpis_page_matches_cli(random_db, tmp_path, monkeypatch):
    """The cards show the numbers `python -m analysis kpis` writes for the as-of month."""
    import subprocess
    import sys

    from messages import format as fmt

    out = tmp_path / "kpis.csv"
    result = subprocess.run(
        [sys.executable, "-m", "analysis", "kpis", "--db", str(random_db), "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    latest = pd.read_csv(out, encoding="utf-8-sig").iloc[-1]

    at = _render(random_db, "kpis", "zh", monkeypatch)
    shown = {metric.label: metric.value for metric in at.metric}
    assert shown["在贷余额"] == fmt.format_amount(latest["active_balance"], "zh", digits=1)
    assert shown["在贷笔数"] == fmt.format_count(latest["active_loans"], "zh")
    assert shown["新增放款金额"] == fmt.format_amount(latest["new_amount"], "zh", digits=1)
    assert shown["M1+逾期率（余额）"] == fmt.format_rate(latest["m1plus_balance_rate"])
    assert shown["PAR30"] == fmt.format_rate(latest["par30_rate"])
    assert shown["不良率"] == fmt.format_rate(latest["npl_rate"])
    assert shown["首逾率FPD30"] == fmt.format_rate(latest["fpd30_count_rate"])
    assert shown["核销金额"] == fmt.format_amount(latest["chargeoff_amount"], "zh", digits=1)
    assert shown["核销后回收"] == fmt.format_amount(latest["recovery_amount"], "zh", digits=1)


def test_kpis_page_follows_filters(random_db, monkeypatch):
    """Choosing a product changes the cards to that product's numbers (cache keyed by filters)."""
    import datetime as dt

    from analysis import kpis
    from analysis.filters import Filters
    from messages import format as fmt

    at = _render(random_db, "kpis", "zh", monkeypatch)
    at.sidebar.multiselect[0].select("车贷").run()
    at.sidebar.selectbox[0].select(dt.date(2025, 3, 31)).run()
    con = db.connect(random_db, read_only=True)
    expected = kpis.monthly_kpis(con, Filters(as_of=dt.date(2025, 3, 31), products=("车贷",)))
    con.close()
    shown = {metric.label: metric.value for metric in at.metric}
    assert shown["在贷余额"] == fmt.format_amount(expected["active_balance"].iloc[-1], "zh", digits=1)
    assert shown["PAR30"] == fmt.format_rate(expected["par30_rate"].iloc[-1])
