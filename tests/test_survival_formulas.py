"""Formulas that replace library calls on the survival page's path: the chi-square tail
of the log-rank test (checked against scipy) and the Kaplan–Meier note for a segment whose
survival reaches 0 before later loans enter (checked by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.survival import chi2_sf, kaplan_meier
from analysis.survival_data import SurvivalData


@pytest.mark.parametrize("df", range(1, 13))
def test_chi2_sf_matches_scipy(df):
    statistics = np.array([1e-6, 0.01, 0.5, 1.0, 3.84, 10.0, 25.0, 80.0, 300.0, 2000.0])
    ours = np.array([chi2_sf(value, df) for value in statistics])
    expected = stats.chi2.sf(statistics, df)
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-300)


def test_chi2_sf_at_zero_is_one():
    assert chi2_sf(0.0, 3) == 1.0


@pytest.mark.parametrize("df", [0, -1, 2.5])
def test_chi2_sf_rejects_bad_df(df):
    with pytest.raises(ValueError, match="degrees of freedom"):
        chi2_sf(4.0, df)


def _records(entry, duration, event_type) -> SurvivalData:
    frame = pd.DataFrame(
        {
            "loan_id": [f"L{i}" for i in range(len(duration))],
            "entry_mob": np.asarray(entry, dtype=np.int64),
            "duration_mob": np.asarray(duration, dtype=np.int64),
            "event_type": np.asarray(event_type, dtype=np.int64),
        }
    )
    frame["event"] = frame["event_type"] == 1
    return SurvivalData(frame, pd.DataFrame(columns=["loan_id", "record_status"]), 90, None)


def test_km_zero_before_later_entry_noted():
    # Two loans from MOB 0 both default at MOB 2; a third enters at MOB 3 and is censored
    # at MOB 6. By hand: S = 1 at MOB 1, 0 from MOB 2 on, and a note names the segment.
    result = kaplan_meier(_records([0, 0, 3], [2, 2, 6], [1, 1, 0]))
    table = result.table.set_index("timeline")
    assert table.loc[1, "survival"] == 1.0
    assert (table.loc[2:, "survival"] == 0.0).all()
    assert table.loc[4, "at_risk"] == 1
    assert [note.code for note in result.notes] == ["km_reached_zero"]


def test_km_zero_at_end_not_noted():
    # Every loan defaults and no loan enters later: S reaches 0 with no note.
    result = kaplan_meier(_records([0, 0], [2, 3], [1, 1]))
    assert result.table["survival"].iloc[-1] == 0.0
    assert "km_reached_zero" not in [note.code for note in result.notes]
