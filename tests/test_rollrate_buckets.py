"""Bucket boundaries: labels, codes, dpd ranges and parsing (expected values by hand)."""

from __future__ import annotations

import pytest

from analysis.buckets import DEFAULT_BUCKETS, Buckets, parse_buckets


def test_default_buckets_labels_and_codes():
    buckets = DEFAULT_BUCKETS
    assert buckets.labels == ("C", "M1", "M2", "M3", "M4", "M5", "M6", "M7+", "PAID", "WO")
    assert buckets.open_code == 7
    assert buckets.paid_code == 8
    assert buckets.wo_code == 9


@pytest.mark.parametrize(
    ("dpd", "label"),
    [(0, "C"), (1, "M1"), (30, "M1"), (31, "M2"), (90, "M3"), (91, "M4"), (180, "M6"), (181, "M7+"), (999, "M7+")],
)
def test_default_buckets_dpd_edges(dpd, label):
    assert DEFAULT_BUCKETS.label(DEFAULT_BUCKETS.code_of_dpd(dpd)) == label


def test_custom_bounds_shift_edges():
    buckets = parse_buckets("29,59,89")
    assert buckets.labels == ("C", "M1", "M2", "M3", "M4+", "PAID", "WO")
    assert buckets.label(buckets.code_of_dpd(29)) == "M1"
    assert buckets.label(buckets.code_of_dpd(30)) == "M2"
    assert buckets.label(buckets.code_of_dpd(90)) == "M4+"
    assert buckets.dpd_range(4) == (90, None)
    assert buckets.describe() == "C 0, M1 1-29, M2 30-59, M3 60-89, M4+ >89"


def test_first_code_above_threshold():
    assert DEFAULT_BUCKETS.first_code_above(0) == 1
    assert DEFAULT_BUCKETS.first_code_above(30) == 2
    assert DEFAULT_BUCKETS.first_code_above(90) == 4
    with pytest.raises(ValueError, match="not a bucket boundary"):
        DEFAULT_BUCKETS.first_code_above(45)


def test_parse_buckets_default_and_full_width_comma():
    assert parse_buckets(None) == DEFAULT_BUCKETS
    assert parse_buckets("  ") == DEFAULT_BUCKETS
    assert parse_buckets("30，60").upper_bounds == (30, 60)


@pytest.mark.parametrize(
    ("text", "message"),
    [("30,x", "whole days"), ("60,30", "strictly increasing"), ("0,30", ">= 1"), ("30,30", "strictly increasing")],
)
def test_parse_buckets_rejects_bad_bounds(text, message):
    with pytest.raises(ValueError, match=message):
        parse_buckets(text)


def test_buckets_rejects_empty_bounds():
    with pytest.raises(ValueError, match="at least one"):
        Buckets(())
