"""The named-query runner and the shared filter macro, on a real DuckDB file."""

import datetime as dt

import pytest

import queries
from analysis.filters import FILTERED_LOANS_SQL, Filters, parse_month


def _insert_loans(con):
    con.execute(
        """
        insert into loans (loan_id, origination_date, principal, product, channel, province, grade, load_id)
        values ('001', '2024-01-05', 1000, '消费贷', '线上', '广东省', 'A', 1),
               ('002', '2024-02-10', 2000, '经营贷', '线下', '浙江省', 'B', 1),
               ('003', '2024-03-31', 3000, '消费贷', '助贷', '广东省', 'C', 1)
        """
    )


def _filtered_ids(con, filters: Filters) -> list[str]:
    sql = f"select loan_id from {FILTERED_LOANS_SQL} order by loan_id"
    return queries.run_sql(con, sql, filters.params())["loan_id"].tolist()


def test_filtered_loans_by_product_and_vintage(con):
    _insert_loans(con)
    assert _filtered_ids(con, Filters()) == ["001", "002", "003"]
    assert _filtered_ids(con, Filters(products=("消费贷",))) == ["001", "003"]
    assert _filtered_ids(con, Filters(vintage_from=dt.date(2024, 2, 1))) == ["002", "003"]
    # vintage_to names a month: the whole of March 2024 is included.
    assert _filtered_ids(con, Filters(vintage_to=dt.date(2024, 3, 1))) == ["001", "002", "003"]
    assert _filtered_ids(con, Filters(vintage_to=dt.date(2024, 2, 1))) == ["001", "002"]


def test_filtered_loans_injection_text_matches_nothing(con):
    _insert_loans(con)
    hostile = ("消费贷' or '1'='1", "x; drop table loans; --", "select")
    assert _filtered_ids(con, Filters(products=hostile)) == []
    assert con.execute("select count(*) from loans").fetchone()[0] == 3


def test_parse_month_rejects_bad_text():
    assert parse_month("2026-02") == dt.date(2026, 2, 28)
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month("2026/02")


def test_query_names_are_unique_and_documented():
    for name, query in queries.load_queries().items():
        assert query.doc, f"query {name} ({query.source}) has no comment saying what it returns"


def test_bind_parameters_reports_missing():
    query = queries.Query("q", "select $a, $b", frozenset({"a", "b"}), "x.sql:1", "doc")
    assert queries.bind_parameters(query, {"a": 1, "b": 2, "c": 3}) == {"a": 1, "b": 2}
    with pytest.raises(KeyError, match="needs parameters"):
        queries.bind_parameters(query, {"a": 1})
