"""Compare LoanLens report tables with the plain pandas versions from the same run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# Key columns per report; the remaining shared numeric columns are compared.
KEYS = {
    "vintage": ["vintage", "mob"],
    "rollrate": ["from_bucket", "to_bucket"],
    "regions": ["region"],
    "kpis": ["month"],
}
RELATIVE_TOLERANCE = 1e-9
ABSOLUTE_TOLERANCE = 0.005  # half a fen, for sums of amounts


def _normalise(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for key in keys:
        if key == "month":
            frame[key] = pd.to_datetime(frame[key]).dt.strftime("%Y-%m")
        else:
            frame[key] = frame[key].astype(str)
    return frame.set_index(keys).sort_index()


def compare_frames(name: str, loanlens: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """Return {"equal": bool, "detail": str} for one report."""
    keys = KEYS[name]
    if name == "rollrate":
        # The pandas matrix lists only observed moves; LoanLens lists every cell of the grid.
        loanlens = loanlens[loanlens["loans"] > 0]
    left, right = _normalise(loanlens, keys), _normalise(reference, keys)
    if len(left.index.symmetric_difference(right.index)):
        missing = list(left.index.symmetric_difference(right.index))[:5]
        return {"equal": False, "detail": f"different rows, e.g. {missing}"}
    right = right.loc[left.index]
    columns = [c for c in right.columns if c in left.columns and pd.api.types.is_numeric_dtype(right[c])]
    for column in columns:
        a = left[column].astype(float).to_numpy()
        b = right[column].astype(float).to_numpy()
        if not np.allclose(a, b, rtol=RELATIVE_TOLERANCE, atol=ABSOLUTE_TOLERANCE, equal_nan=True):
            worst = int(np.nanargmax(np.abs(a - b)))
            return {"equal": False, "detail": f"{column} differs at {left.index[worst]}: {a[worst]} vs {b[worst]}"}
    return {"equal": True, "detail": f"{len(left)} rows, columns {', '.join(columns)}"}


def compare_outputs(work: Path, names: list[str]) -> dict:
    """Compare the saved LoanLens and pandas outputs of each named report."""
    results = {}
    for name in names:
        ours = work / f"loanlens_{name}.parquet"
        theirs = work / "parquet" / f"pandas_{name}.parquet"
        if not ours.exists() or not theirs.exists():
            results[name] = {"equal": False, "detail": "an output is missing (a step failed)"}
            continue
        results[name] = compare_frames(name, pd.read_parquet(ours), pd.read_parquet(theirs))
    return results
