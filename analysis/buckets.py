"""Delinquency buckets (C, M1 ... M7+) and the terminal states PAID and WO.

A bucket set is defined by the upper dpd bounds of M1, M2, ...: the default
``(30, 60, 90, 120, 150, 180)`` gives C = dpd 0, M1 = 1-30, M2 = 31-60, ..., M6 = 151-180
and M7+ = dpd > 180. ``(29, 59, 89)`` gives C = 0, M1 = 1-29, M2 = 30-59, M3 = 60-89 and
M4+ = dpd >= 90. C is always dpd 0.

With n bounds there are n + 2 active buckets, numbered by codes: 0 is C, 1 .. n are M1 ..
Mn, n + 1 is the open-ended M(n+1)+, n + 2 is PAID and n + 3 is WO. SQL receives the bounds
as the bound parameter ``$bucket_bounds`` (INTEGER[]) and returns codes; Python turns
codes into labels.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_UPPER_BOUNDS: tuple[int, ...] = (30, 60, 90, 120, 150, 180)
MAX_BOUNDS = 24


@dataclass(frozen=True)
class Buckets:
    """A delinquency bucket set given by the upper dpd bounds of M1, M2, ...

    Raises
    ------
    ValueError
        If the bounds are empty, not positive integers or not strictly increasing.
    """

    upper_bounds: tuple[int, ...] = DEFAULT_UPPER_BOUNDS

    def __post_init__(self) -> None:
        bounds = tuple(self.upper_bounds)
        if not bounds:
            raise ValueError("bucket bounds must list at least one upper dpd bound, e.g. 30,60,90")
        if len(bounds) > MAX_BOUNDS:
            raise ValueError(f"at most {MAX_BOUNDS} bucket bounds are supported; got {len(bounds)}")
        for bound in bounds:
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
                raise ValueError(f"bucket bounds must be whole days >= 1; got {bound!r}")
        if any(later <= earlier for earlier, later in zip(bounds, bounds[1:])):
            raise ValueError(f"bucket bounds must be strictly increasing; got {list(bounds)}")
        object.__setattr__(self, "upper_bounds", bounds)

    @property
    def open_code(self) -> int:
        """Code of the last, open-ended delinquent bucket (M7+ by default)."""
        return len(self.upper_bounds) + 1

    @property
    def paid_code(self) -> int:
        """Code of the terminal state PAID (paid off or matured)."""
        return len(self.upper_bounds) + 2

    @property
    def wo_code(self) -> int:
        """Code of the terminal state WO (charged off, 核销)."""
        return len(self.upper_bounds) + 3

    @property
    def delinquency_labels(self) -> tuple[str, ...]:
        """Labels of the active buckets: C, M1, ..., and the open one with a '+'."""
        n = len(self.upper_bounds)
        return ("C", *(f"M{k}" for k in range(1, n + 1)), f"M{n + 1}+")

    @property
    def labels(self) -> tuple[str, ...]:
        """Labels of every state in code order: the active buckets, PAID, WO."""
        return (*self.delinquency_labels, "PAID", "WO")

    def label(self, code: int) -> str:
        """Return the label of a bucket code."""
        return self.labels[int(code)]

    def code_of_dpd(self, dpd: int) -> int:
        """Return the code of the active bucket holding ``dpd`` days past due."""
        if dpd <= 0:
            return 0
        return 1 + sum(1 for bound in self.upper_bounds if dpd > bound)

    def dpd_range(self, code: int) -> tuple[int, int | None]:
        """Return the (lowest, highest) dpd of an active bucket; highest is None when open."""
        if code == 0:
            return (0, 0)
        if not 1 <= code <= self.open_code:
            raise ValueError(f"bucket code {code} is not an active bucket (0..{self.open_code})")
        low = (self.upper_bounds[code - 2] if code >= 2 else 0) + 1
        high = self.upper_bounds[code - 1] if code < self.open_code else None
        return (low, high)

    def first_code_above(self, threshold: int) -> int:
        """Return the first bucket code whose every dpd exceeds ``threshold`` days.

        Raises
        ------
        ValueError
            If ``threshold`` is not 0 or one of the upper bounds, because then "dpd >
            threshold" splits a bucket, so bucket codes alone cannot decide it.
        """
        if threshold == 0:
            return 1
        if threshold not in self.upper_bounds:
            raise ValueError(
                f"threshold {threshold} days is not a bucket boundary; use 0 or one of "
                f"{list(self.upper_bounds)}, or change the bucket bounds"
            )
        return self.upper_bounds.index(threshold) + 2

    def params(self) -> dict:
        """Return the DuckDB parameter ``bucket_bounds``."""
        return {"bucket_bounds": list(self.upper_bounds)}

    def describe(self, lang: str = "en") -> str:
        """Return the bucket ranges as text, e.g. 'C 0, M1 1-30, ..., M7+ >180'."""
        parts = []
        for code, label in enumerate(self.delinquency_labels):
            low, high = self.dpd_range(code)
            if high is None:
                parts.append(f"{label} >{low - 1}")
            elif low == high:
                parts.append(f"{label} {low}")
            else:
                parts.append(f"{label} {low}-{high}")
        return ("，" if lang == "zh" else ", ").join(parts)


DEFAULT_BUCKETS = Buckets()


def parse_buckets(text: str | None) -> Buckets:
    """Parse comma-separated upper bounds such as '30,60,90,120,150,180' into Buckets.

    An empty or None value returns the default buckets.

    Raises
    ------
    ValueError
        If a value is not a whole number or the bounds are not valid buckets.
    """
    if text is None or not str(text).strip():
        return DEFAULT_BUCKETS
    parts = [part.strip() for part in str(text).replace("，", ",").split(",") if part.strip()]
    try:
        bounds = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"bucket bounds must be comma-separated whole days, e.g. 30,60,90; got {text!r}"
        ) from None
    return Buckets(bounds)
