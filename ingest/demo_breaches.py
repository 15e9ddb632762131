"""Compliance breaches in the demo collection actions: injection, clean-up and counting.

Normal traffic is built to stay inside the rules: contacts between 08:00:00 and 21:59:59,
only the borrower contacted, and one template action per loan per day. Borrowers with
several delinquent loans can still collect more than three connected calls on one day, so
``cap_voice_calls`` downgrades the excess normal calls to unanswered ones. Breaches are then
added on purpose, each breaking exactly one rule, and ``count_breaches`` applies the rules
to the final rows, so the truth file states what the rules find.
"""

from __future__ import annotations

import logging

import numpy as np

from ingest import demo_params as P
from ingest import demo_sim as S

logger = logging.getLogger(__name__)

NIGHT, OVERFLOW, THIRD_PARTY = 1, 2, 3
# Night contact times (seconds after midnight), used in turn: the window edges are included.
NIGHT_SECONDS = (22 * 3600, 22 * 3600 + 1815, 23 * 3600 + 2700, 1800, 6 * 3600 + 3000,
                 8 * 3600 - 1)
DAY_US = 86_400 * 1_000_000
VOICE = np.array(S.VOICE_CHANNELS)


def breach_totals(n_loans: int) -> dict[str, int]:
    """Return how many night contacts, overflow days and third-party contacts to inject."""
    def total(per_1000: float) -> int:
        return max(P.BREACH_MINIMUM, int(round(n_loans * per_1000 / 1000)))

    return {
        "night": total(P.NIGHT_CONTACTS_PER_1000),
        "overflow_days": total(P.OVERFLOW_DAYS_PER_1000),
        "third_party": total(P.THIRD_PARTY_CONTACTS_PER_1000),
    }


def split_totals(totals: dict[str, int], chunk_sizes: list[int]) -> list[dict[str, int]]:
    """Split the totals over chunks in proportion to their loans, summing exactly."""
    cumulative = np.cumsum([0] + list(chunk_sizes)) / max(sum(chunk_sizes), 1)
    shares = []
    per_key = {key: np.diff(np.floor(value * cumulative + 1e-9)).astype(int)
               for key, value in totals.items()}
    for index in range(len(chunk_sizes)):
        shares.append({key: int(values[index]) for key, values in per_key.items()})
    return shares


def inject(actions: dict, counts: dict[str, int], single_loan_borrower: np.ndarray,
           rng: np.random.Generator) -> dict:
    """Append the injected breach rows to one chunk's normal actions.

    Candidates are normal middle- or late-stage manual calls. Night and third-party
    contacts go to borrowers with odd numbers, overflow days to borrowers with even numbers
    and a single loan, so no borrower-day mixes two kinds.
    """
    base = (actions["channel"] == S.MANUAL_CALL) & (actions["strategy"] >= 2) \
        & (actions["injected"] == 0)
    odd = actions["borrower_no"] % 2 == 1
    night_pool = np.nonzero(base & odd)[0]
    third_pool = night_pool
    overflow_pool = np.nonzero(base & ~odd & single_loan_borrower[actions["borrower_no"]])[0]
    new_parts = [actions]

    if counts["night"] and len(night_pool):
        picks = rng.choice(night_pool, size=min(counts["night"], len(night_pool)), replace=False)
        rows = _clone(actions, np.sort(picks))
        k = np.arange(len(picks))
        midnight = rows["time_us"] - rows["time_us"] % DAY_US
        seconds = np.array(NIGHT_SECONDS)[k % len(NIGHT_SECONDS)]
        rows["time_us"] = midnight + seconds * 1_000_000
        style = k % 3  # 0: call not connected, 1: SMS, 2: connected call
        rows["channel"] = np.where(style == 1, S.SMS, S.MANUAL_CALL).astype(np.int8)
        rows["connected"] = np.select([style == 0, style == 1], [0, -1], 1).astype(np.int8)
        rows["outcome"] = np.select([style == 0, style == 1], [S.NO_ANSWER, -1],
                                    S.PROMISE_TO_PAY).astype(np.int8)
        rows["cost_fen"] = np.where(style == 1, 5, 250).astype(np.int64)
        rows["agent"] = _agents(P.NIGHT_AGENTS, k)
        rows["injected"][:] = NIGHT
        new_parts.append(rows)

    if counts["overflow_days"] and len(overflow_pool):
        day_key = actions["borrower_no"][overflow_pool] * 100_000 \
            + actions["time_us"][overflow_pool] // DAY_US
        _, first = np.unique(day_key, return_index=True)
        pool = overflow_pool[first]
        picks = np.sort(rng.choice(pool, size=min(counts["overflow_days"], len(pool)),
                                   replace=False))
        extra = 1 + np.arange(len(picks)) % 3           # breaches on that day: 1, 2, 3, 1, ...
        calls = 3 + extra
        source = np.repeat(picks, calls)
        rows = _clone(actions, source)
        position = np.concatenate([np.arange(c) for c in calls])
        midnight = rows["time_us"] - rows["time_us"] % DAY_US
        rows["time_us"] = midnight + (9 * 3600 + 300 + position * 5820) * 1_000_000
        rows["channel"][:] = S.MANUAL_CALL
        rows["connected"][:] = 1
        rows["outcome"] = np.where(position % 2 == 0, S.PROMISE_TO_PAY, S.REFUSED).astype(np.int8)
        rows["amount_fen"][:] = 0
        rows["cost_fen"][:] = 250
        rows["agent"] = _agents(P.OVERFLOW_AGENTS, position)
        rows["injected"][:] = OVERFLOW
        new_parts.append(rows)

    if counts["third_party"] and len(third_pool):
        picks = rng.choice(third_pool, size=min(counts["third_party"], len(third_pool)),
                           replace=False)
        rows = _clone(actions, np.sort(picks))
        k = np.arange(len(picks))
        midnight = rows["time_us"] - rows["time_us"] % DAY_US
        rows["time_us"] = midnight + (14 * 3600 + 20 * 60 + k % 600) * 1_000_000
        rows["channel"][:] = S.MANUAL_CALL
        rows["target"] = np.where(k % 3 == 2, 2, 1).astype(np.int8)
        rows["connected"][:] = 1
        rows["outcome"][:] = S.PROMISE_TO_PAY
        rows["amount_fen"][:] = 0
        rows["cost_fen"][:] = 250
        rows["agent"] = _agents(P.THIRD_PARTY_AGENTS, k)
        rows["injected"][:] = THIRD_PARTY
        new_parts.append(rows)

    return {name: np.concatenate([part[name] for part in new_parts]) for name in actions}


def _clone(actions: dict, index: np.ndarray) -> dict:
    rows = {name: values[index].copy() for name, values in actions.items()}
    rows["amount_fen"][:] = 0
    return rows


def _agents(names: tuple[str, ...], k: np.ndarray) -> np.ndarray:
    codes = np.array([S.AGENT_CODE[name] for name in names], dtype=np.int16)
    return codes[k % len(codes)]


def cap_voice_calls(actions: dict) -> int:
    """Downgrade normal connected calls so that only injected overflow days break the cap.

    On a borrower-day with an injected overflow, every normal connected call becomes
    unanswered. On other days injected calls count first, and normal calls beyond the third
    are downgraded, paying calls last. Returns how many rows were changed.
    """
    voice = np.nonzero(np.isin(actions["channel"], VOICE) & (actions["connected"] == 1))[0]
    if len(voice) == 0:
        return 0
    key = actions["borrower_no"][voice] * 100_000 + actions["time_us"][voice] // DAY_US
    injected = actions["injected"][voice]
    paying = actions["amount_fen"][voice] > 0
    priority = np.where(injected > 0, 0, np.where(paying, 1, 2))
    order = np.lexsort((actions["time_us"][voice], priority, key))
    voice, key, injected = voice[order], key[order], injected[order]
    starts = np.r_[True, key[1:] != key[:-1]]
    group = np.cumsum(starts) - 1
    rank = np.arange(len(voice)) - np.flatnonzero(starts)[group]
    overflow_group = np.bincount(group, weights=(injected == OVERFLOW)) > 0
    downgrade = (injected == 0) & (overflow_group[group] | (rank >= 3))
    rows = voice[downgrade]
    lost = int((actions["amount_fen"][rows] > 0).sum())
    if lost:
        logger.debug("capping voice calls removed %d payments recorded on calls", lost)
    actions["connected"][rows] = 0
    actions["outcome"][rows] = S.NO_ANSWER
    actions["amount_fen"][rows] = 0
    return len(rows)


def count_breaches(actions: dict) -> dict[str, int]:
    """Apply the three compliance rules to the final actions and count breaches."""
    seconds = (actions["time_us"] % DAY_US) // 1_000_000
    night = int(((seconds >= 22 * 3600) | (seconds < 8 * 3600)).sum())

    voice = np.isin(actions["channel"], VOICE) & (actions["connected"] == 1)
    key = actions["borrower_no"][voice] * 100_000 + actions["time_us"][voice] // DAY_US
    _, per_day = np.unique(key, return_counts=True)
    overflow = int(np.maximum(per_day - 3, 0).sum())
    overflow_days = int((per_day > 3).sum())

    third_party = int((actions["target"] != 0).sum())
    return {
        "night_contacts": night,
        "voice_calls_over_daily_cap": overflow,
        "borrower_days_over_daily_cap": overflow_days,
        "non_borrower_contacts": third_party,
        "emergency_contact": int((actions["target"] == 1).sum()),
        "third_party": int((actions["target"] == 2).sum()),
    }


def injected_breaches(actions: dict) -> dict[str, int]:
    """Count the injected rows by rule (the expected result of ``count_breaches``)."""
    injected = actions["injected"]
    overflow_rows = int((injected == OVERFLOW).sum())
    overflow_days = len(np.unique(
        actions["borrower_no"][injected == OVERFLOW] * 100_000
        + actions["time_us"][injected == OVERFLOW] // DAY_US))
    return {
        "night_contacts": int((injected == NIGHT).sum()),
        "voice_calls_over_daily_cap": overflow_rows - 3 * overflow_days,
        "borrower_days_over_daily_cap": overflow_days,
        "non_borrower_contacts": int((injected == THIRD_PARTY).sum()),
    }
