"""Tests of dashboard.chart_axes and the time and amount axes of the page charts.

Expected values are written out by hand: the months of a 13-month window ending
2026-11, and tick labels worked out for a 270m to 330m yuan range.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import chart_axes, region_charts

MONTH_ENDS = pd.date_range("2025-11-30", "2026-11-30", freq="ME")


def test_month_start_moves_month_ends():
    starts = chart_axes.month_start(MONTH_ENDS)
    assert starts.iloc[0] == pd.Timestamp("2025-11-01")
    assert starts.iloc[-1] == pd.Timestamp("2026-11-01")
    assert len(starts) == 13


def test_month_start_accepts_dates_and_strings():
    starts = chart_axes.month_start([dt.date(2026, 2, 28), "2026-03-31"])
    assert starts.tolist() == [pd.Timestamp("2026-02-01"), pd.Timestamp("2026-03-01")]


def test_region_trend_labels_months_as_they_are():
    """The QA case: 13 month-ends up to 2026-11-30 must plot as 2025-11 .. 2026-11."""
    trend = pd.DataFrame({
        "region": ["广东省"] * 13,
        "month": [month.date() for month in MONTH_ENDS],
        "rate": [0.01 * (index + 1) for index in range(13)],
        "loans": [100] * 13,
    })
    labels = {"rate": "M1+逾期率", "loans": "在贷笔数"}
    figure = region_charts.trend_figure(trend, labels)
    xs = pd.to_datetime(pd.Series(figure.data[0].x))
    assert xs.min() == pd.Timestamp("2025-11-01")
    assert xs.max() == pd.Timestamp("2026-11-01")
    assert (xs.dt.day == 1).all()
    assert figure.layout.xaxis.tickformat == "%Y-%m"
    assert figure.layout.xaxis.dtick == "M1"


def test_month_axis_uses_quarters_on_long_axes():
    figure = go.Figure()
    chart_axes.apply_month_axis(figure, pd.date_range("2023-01-01", periods=36, freq="MS"))
    assert figure.layout.xaxis.dtick == "M3"


def test_amount_ticks_chinese_yi_yuan():
    ticks, labels, unit = chart_axes.amount_ticks([270e6, 330e6], "zh")
    assert unit == "亿元"
    # Span 60m / 5 ticks = 12m, rounded up to a step of 20m: 2.6 亿 .. 3.4 亿.
    assert labels == ["2.6", "2.8", "3", "3.2", "3.4"]
    assert ticks[0] == pytest.approx(260e6)


def test_amount_ticks_chinese_wan_yuan():
    ticks, labels, unit = chart_axes.amount_ticks([0, 80_000], "zh")
    assert unit == "万元"
    assert labels == ["0", "2", "4", "6", "8"]


def test_amount_ticks_english_negative():
    labels = chart_axes.amount_ticks([-2e6, 2e6], "en")[1]
    assert labels[0] == "-¥2m"
    assert "¥0" in labels


def test_amount_ticks_english_millions():
    ticks, labels, unit = chart_axes.amount_ticks([270e6, 330e6], "en")
    assert unit == "m"
    assert labels[0] == "¥260m"
    assert labels[-1] == "¥340m"


def test_amount_ticks_english_billions_and_thousands():
    labels = chart_axes.amount_ticks([0, 2e9], "en")[1]
    assert labels[0] == "¥0"
    assert labels[-1] == "¥2bn"
    assert chart_axes.amount_ticks([0, 5_000], "en")[1][-1] == "¥5k"


def test_amount_ticks_constant_series():
    ticks, labels, unit = chart_axes.amount_ticks([5e6, 5e6], "zh")
    assert unit == "万元"
    assert min(ticks) <= 5e6 <= max(ticks)
    assert len(ticks) >= 2


def test_amount_ticks_empty():
    assert chart_axes.amount_ticks([], "zh") == ([], [], "")


def test_amount_axis_puts_unit_in_chinese_title():
    figure = go.Figure(go.Scatter(y=[270e6, 330e6]))
    chart_axes.apply_amount_axis(figure, [270e6, 330e6], "zh", "在贷余额")
    assert figure.layout.yaxis.title.text == "在贷余额（亿元）"
    assert list(figure.layout.yaxis.ticktext)[0] == "2.6"


def test_amount_axis_english_title_unchanged():
    figure = go.Figure(go.Scatter(y=[270e6, 330e6]))
    chart_axes.apply_amount_axis(figure, [270e6, 330e6], "en", "Active balance")
    assert figure.layout.yaxis.title.text == "Active balance"
    assert list(figure.layout.yaxis.ticktext)[0] == "¥260m"


def test_rate_axis_percent_format():
    figure = go.Figure(go.Bar(y=[0.1, 0.2]))
    chart_axes.apply_rate_axis(figure, "占比")
    assert figure.layout.yaxis.tickformat == ".1%"
    assert figure.layout.yaxis.title.text == "占比"


def _page_figures(demo_db, monkeypatch, lang: str) -> list[dict]:
    """Render the 经营概览 page on the demo portfolio and return its plotly figure specs."""
    import json
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LOANLENS_DB", str(demo_db))
    monkeypatch.setenv("LOANLENS_AUTO_DEMO", "0")
    app_path = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    at = AppTest.from_file(str(app_path), default_timeout=120)
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


@pytest.mark.parametrize(("lang", "title", "first_label"), [("zh", "在贷余额（亿元）", None), ("en", "Active balance", "¥")])
def test_kpis_trend_amount_axis(demo_db, monkeypatch, lang, title, first_label):
    figures = _page_figures(demo_db, monkeypatch, lang)
    trend = figures[0]["layout"]["yaxis"]
    assert trend["title"]["text"] == title
    labels = trend["ticktext"]
    assert labels, "the amount axis has explicit tick labels"
    if first_label:
        assert all(label.startswith(first_label) for label in labels)
    else:
        # 亿元 ticks of a balance of a few hundred million yuan are small plain numbers.
        assert all(float(label.replace(",", "")) < 100 for label in labels)
