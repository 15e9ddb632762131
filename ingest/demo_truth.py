"""The demo portfolio's truth file: true parameters plus realised check figures.

"Expected" figures are what the simulation's probabilities imply for the loan-months that
actually occurred (sum of each row's probability over the rows); "realised" figures are
what the random draws produced. Tests compare recomputed rates with the expected ones.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from ingest import demo_params as P
from ingest import demo_sim as S

TRUTH_VERSION = 1


def build(pf: S.Portfolio, grid: S.MonthGrid, tally: S.Tally, breaches: dict, actions: dict,
          seed: int, n_loans: int, as_of: dt.date, downgraded_calls: int) -> dict:
    """Return the truth dictionary written to demo_truth.json."""
    return {
        "truth_version": TRUTH_VERSION,
        "seed": int(seed),
        "n_loans": int(n_loans),
        "as_of": as_of.isoformat(),
        "vintages": {"first": grid.month_labels[0], "last": grid.month_labels[-1],
                     "count": S.N_VINTAGES},
        "snapshot_months": {"first": grid.month_labels[0], "last": grid.month_labels[-1]},
        "buckets": {"C": "dpd 0", "M1": "1-30", "M2": "31-60", "M3": "61-90", "M4": "91-120",
                    "M5": "121-150", "M6": "151-180", "M7+": "> 180"},
        "dpd_rule": "dpd = 30 * (months past due - 1) + days from the monthly due day to the "
                    "month-end (clipped to 1..30), so dpd always lies in its bucket's range",
        "hazard_model": _hazard_model(),
        "c_to_m1": _c_to_m1(tally),
        "transitions": _transitions(tally),
        "prepayment": _prepayment(tally),
        "charge_off": {
            "rule": "a loan in M7+ (dpd > 180) at a month-end is charged off at the next "
                    "month-end with the M7+ 'roll' probability; the charge-off row has status "
                    "charged_off, outstanding_principal 0 and charged_off_amount = the "
                    "outstanding principal before the write-off",
            "charged_off_amount": round(tally.charged_off_fen / 100, 2),
        },
        "recoveries": _recoveries(tally),
        "restructuring": _restructuring(tally),
        "extension": {
            "rule": "先息后本 经营贷/农户贷 loans current at maturity are extended by "
                    f"{P.EXTENSION_MONTHS} months (status extended) with probability "
                    f"{P.EXTENSION_PROBABILITY}",
            "probability": P.EXTENSION_PROBABILITY,
            "months": P.EXTENSION_MONTHS,
            "hazard_multiplier_after_extension": P.EXTENDED_HAZARD,
            "extended_loans": tally.extended_loans,
        },
        "provinces": _provinces(tally),
        "collections": _collections(tally),
        "compliance": _compliance(breaches, downgraded_calls),
        "pricing": _pricing(pf, grid),
        "portfolio": _portfolio_mix(pf),
    }


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if denominator == 0 else float(numerator) / float(denominator)


def _hazard_model() -> dict:
    def relative(table: dict, reference) -> dict:
        return {str(k): v / table[reference] for k, v in table.items()}

    province_table = {p["name"]: p["hazard"] for p in P.PROVINCES}
    return {
        "description": (
            "monthly probability of C -> M1 = 1 - exp(-h), h = base_hazard * mob_shape(MOB) * "
            "grade * product * channel * province * first_loan * vintage multipliers. Only this "
            "transition depends on the loan's attributes; later rolls depend only on the "
            "bucket and the collection arm. The multipliers are hazard ratios of the "
            "continuous-time C -> M1 hazard, and so approximately of time to first dpd > 90."
        ),
        "base_hazard": P.BASE_HAZARD,
        "reference": {"grade": P.REFERENCE_GRADE, "product": P.REFERENCE_PRODUCT,
                      "channel": P.REFERENCE_CHANNEL, "province": P.REFERENCE_PROVINCE,
                      "is_first_loan": True},
        "mob_shape": {"1": 1.40, "2": 1.20, "3-6": 1.00, "7-12": P.MOB_HAZARD_SHAPE_7_12,
                      "13+": P.MOB_HAZARD_SHAPE_13_PLUS},
        "multipliers": {
            "grade": dict(P.GRADE_HAZARD),
            "product": dict(P.PRODUCT_HAZARD),
            "channel": dict(P.CHANNEL_HAZARD),
            "province": province_table,
            "is_first_loan": {"true": 1.0, "false": P.REPEAT_LOAN_HAZARD},
            "loose_vintages": {"vintage_numbers": list(P.LOOSE_VINTAGES),
                               "multiplier": P.LOOSE_VINTAGE_HAZARD},
        },
        "expected_hazard_ratio_time_to_90": {
            "grade": relative(P.GRADE_HAZARD, P.REFERENCE_GRADE),
            "product": relative(P.PRODUCT_HAZARD, P.REFERENCE_PRODUCT),
            "channel": relative(P.CHANNEL_HAZARD, P.REFERENCE_CHANNEL),
            "province": relative(province_table, P.REFERENCE_PROVINCE),
            "is_first_loan": {"true": 1.0, "false": P.REPEAT_LOAN_HAZARD},
        },
        "recoverable_by_cox": ["grade", "channel", "province", "is_first_loan"],
        "not_recoverable_by_cox": {
            "product": "the product fixes the term and repayment method (消费贷 6-24 months, "
                       "经营贷 and 农户贷 12-36, 到期一次还本付息 only in 农户贷). After "
                       "maturity only delinquent loans "
                       "stay in the risk set, so a Cox model of time to dpd > 90 without term "
                       "strata mixes the product multiplier with the term; compare C -> M1 "
                       "rates by product within one term instead",
        },
        "cox_attenuation": "at very large n, fitted Cox hazard ratios of time to first "
                           "dpd > 90 for the strongest effects lie up to about 10% closer to 1 "
                           "on the log scale than the multipliers (grade E about 2.40 for 2.6), "
                           "because the event lags M1 entry by three months, cured loans "
                           "re-enter C and omitted covariates act as frailty; at 20,000 loans "
                           "the multipliers lie inside the 95% CIs",
        "c_to_m1_probability_by_grade_reference_profile_mob_3_to_6": {
            grade: {
                "monthly_probability": 1 - math.exp(-P.BASE_HAZARD * multiplier),
                "probability_ratio_to_reference": (1 - math.exp(-P.BASE_HAZARD * multiplier))
                / (1 - math.exp(-P.BASE_HAZARD)),
                "hazard_ratio_minus_log_1_minus_p": math.log(
                    1 - (1 - math.exp(-P.BASE_HAZARD * multiplier)))
                / math.log(1 - (1 - math.exp(-P.BASE_HAZARD))),
            }
            for grade, multiplier in P.GRADE_HAZARD.items()
        },
        "bullet_loans": "到期一次还本付息 loans can only miss their single payment at maturity; "
                        "their hazard there is base_hazard * term * multipliers",
        "restructured_loans": f"after restructuring, h = {P.RESTRUCTURED_HAZARD} regardless "
                              f"of attributes",
        "extended_loans": f"after an extension, h is multiplied by {P.EXTENDED_HAZARD}",
    }


def _c_to_m1(tally: S.Tally) -> dict:
    by_grade = {}
    for k, grade in enumerate(P.GRADES):
        rows = tally.c_rows_by_grade[k]
        by_grade[grade] = {
            "loan_months": int(rows),
            "expected_rate": _ratio(tally.c_to_m1_expected_by_grade[k], rows),
            "realised_rate": _ratio(tally.c_to_m1_realised_by_grade[k], rows),
        }
    by_province = {}
    for k, province in enumerate(P.PROVINCES):
        rows = tally.c_rows_by_province[k]
        by_province[province["name"]] = {
            "loan_months": int(rows),
            "expected_rate": _ratio(tally.c_to_m1_expected_by_province[k], rows),
        }
    return {
        "definition": "loans with dpd 0 and status not paid_off/charged_off at month-end t-1 "
                      "that have 1 <= dpd <= 30 at t, by count",
        "by_grade": by_grade,
        "by_province": by_province,
        "overall_expected_rate": _ratio(tally.c_to_m1_expected_by_grade.sum(),
                                        tally.c_rows_by_grade.sum()),
    }


def _transitions(tally: S.Tally) -> dict:
    nominal = {
        "C": {"M1": "1 - exp(-h), see hazard_model",
              "PAID": "prepayment probability by product, see prepayment"},
        "M1": {"C": dict(P.EARLY_ARM_CURE), "M1": P.M1_STAY,
               "M2": {arm: round(1 - cure - P.M1_STAY, 6)
                      for arm, cure in P.EARLY_ARM_CURE.items()}},
    }
    next_bucket = {"M2": "M3", "M3": "M4", "M4": "M5", "M5": "M6", "M6": "M7+", "M7+": "WO"}
    for bucket, row in P.DELINQUENT_TRANSITIONS.items():
        entry = {"C": row["cure"], bucket: row["stay"], next_bucket[bucket]: row["roll"]}
        if row["restructure"]:
            entry["restructured"] = row["restructure"]
        nominal[bucket] = entry
    labels = ("C", "M1", "M2", "M3", "M4", "M5", "M6", "M7+")
    outcome_labels = ("C", "same", "next", "WO", "PAID", "restructured")
    realised = {}
    for k, label in enumerate(labels):
        total = tally.transitions[k].sum()
        realised[label] = {
            "loan_months": int(total),
            **{outcome: _ratio(tally.transitions[k, j], total)
               for j, outcome in enumerate(outcome_labels)},
        }
    return {
        "description": "monthly transition probabilities from the bucket at month-end t-1 to "
                       "the state at t; rows sum to 1. A cure at maturity, or a current loan "
                       "paying its last instalment, ends as paid_off with dpd 0.",
        "nominal": nominal,
        "realised_by_count": realised,
        "note": "realised 'next' from C is C -> M1; realised PAID from C includes maturity",
    }


def _prepayment(tally: S.Tally) -> dict:
    realised = {
        product: _ratio(tally.prepay_realised_by_product[k], tally.prepay_rows_by_product[k])
        for k, product in enumerate(P.PRODUCTS)
    }
    rows = {product: int(tally.prepay_rows_by_product[k]) for k, product in enumerate(P.PRODUCTS)}
    return {
        "definition": "a loan with dpd 0 (status not closed) at t-1 whose scheduled instalments "
                      "due by t do not complete the schedule, and that is paid_off at t",
        "monthly_probability": dict(P.PREPAY_PROBABILITY),
        "eligible_loan_months": rows,
        "realised_rate": realised,
    }


def _recoveries(tally: S.Tally) -> dict:
    low, high = P.RECOVERY_SHARE_RANGE
    mean_share = (low + high) / 2
    # Each recovery is a share of the original charged-off amount, so the expected
    # cumulative rate after k months is k * probability * mean share until the cap binds.
    expected = {
        guarantee: min(1.0, P.RECOVERY_MONTHS * probability * mean_share)
        for guarantee, probability in P.RECOVERY_PROBABILITY.items()
    }
    return {
        "rule": f"in each of the {P.RECOVERY_MONTHS} months after the write-off month, a "
                f"recovery happens with a probability by guarantee type, of a uniform "
                f"{low:.0%}-{high:.0%} share of the charged-off amount (capped at what is left); "
                f"rows only in months with a recovery: status charged_off, outstanding 0, "
                f"recovered_amount",
        "monthly_probability": dict(P.RECOVERY_PROBABILITY),
        "share_per_recovery": [low, high],
        "expected_24_month_recovery_rate": {k: round(v, 4) for k, v in expected.items()},
        "expected_cumulative_recovery_rate_by_months_since_charge_off": {
            guarantee: [round(min(1.0, months * probability * mean_share), 4)
                        for months in range(1, P.RECOVERY_MONTHS + 1)]
            for guarantee, probability in P.RECOVERY_PROBABILITY.items()
        },
        "expectation_note": "months * probability * mean share; exact unless the cap at the "
                            "charged-off amount binds, which is rare",
        "recovered_amount": round(tally.recovered_fen / 100, 2),
        "realised_recovery_rate": _ratio(tally.recovered_fen, tally.charged_off_fen),
    }


def _restructuring(tally: S.Tally) -> dict:
    hazard = P.RESTRUCTURED_HAZARD
    return {
        "rule": "loans in M4-M6 are restructured with the 'restructured' probability of their "
                "row: status restructured from then on, dpd 0, outstanding principal "
                f"re-amortised 等额本息 over {P.RESTRUCTURE_TERM} months",
        "redefault_hazard": hazard,
        "monthly_redefault_probability": 1 - math.exp(-hazard),
        "expected_redefault_within_6_months": 1 - math.exp(-6 * hazard),
        "restructurings": tally.restructured_loans,
        "redefault_definition": "back in M1 (dpd >= 1) within 6 month-ends of the last "
                                "restructuring, among loans observed for 6 month-ends after it",
        "restructured_loans_observed_6_months": tally.restructured_observed_6m,
        "redefaulted_within_6_months": tally.restructured_redefault_6m,
        "realised_redefault_rate_within_6_months": _ratio(tally.restructured_redefault_6m,
                                                          tally.restructured_observed_6m),
    }


def _provinces(tally: S.Tally) -> dict:
    return {
        "large_province_risk_order": list(P.LARGE_PROVINCE_RISK_ORDER),
        "order_meaning": "lowest to highest true C -> M1 hazard among the five largest "
                         "provinces; each multiplier is at least 45% above the previous",
        "volume_weights": {p["name"]: p["weight"] for p in P.PROVINCES},
        "hazard_multipliers": {p["name"]: p["hazard"] for p in P.PROVINCES},
        "codes": {p["name"]: p["code"] for p in P.PROVINCES},
        "cities": {p["name"]: {city: code for city, code, _ in p["cities"]}
                   for p in P.PROVINCES},
    }


def _smd(moments: np.ndarray) -> float | None:
    (n0, s0, q0), (n1, s1, q1) = moments
    if n0 < 2 or n1 < 2:
        return None
    mean0, mean1 = s0 / n0, s1 / n1
    var0 = (q0 - n0 * mean0**2) / (n0 - 1)
    var1 = (q1 - n1 * mean1**2) / (n1 - 1)
    pooled = math.sqrt((var0 + var1) / 2)
    return None if pooled == 0 else (mean1 - mean0) / pooled


def _collections(tally: S.Tally) -> dict:
    arms = P.EARLY_ARMS
    realised = {arm: _ratio(tally.m1_start_cured_by_arm[k], tally.m1_start_rows_by_arm[k])
                for k, arm in enumerate(arms)}
    episodes = {arm: int(tally.m1_start_rows_by_arm[k]) for k, arm in enumerate(arms)}
    cure_a, cure_b = (P.EARLY_ARM_CURE[arm] for arm in arms)
    middle = tally.middle_balance_moments
    late = tally.late_balance_moments
    return {
        "stages": {"early": "M1 (dpd 1-30): sms, ai_voice, some manual_call",
                   "middle": "M2-M3 (dpd 31-90): manual_call, installment_plan, sms",
                   "late": "M4+ (dpd > 90): outsourced, legal, field_visit, letter, "
                           "manual_call by agencies"},
        "early": {
            "arms": list(arms),
            "assignment": "random, 50/50, at the month-end a loan enters M1 from C "
                          "(an episode start); the arm is kept while the loan stays in M1",
            "cure_definition": "dpd 0 at the next month-end (status active, restructured, "
                               "extended or paid_off), among episodes starting in M1",
            "true_cure_probability": dict(P.EARLY_ARM_CURE),
            "true_lift": round(cure_b - cure_a, 6),
            "lift_direction": f"{arms[1]} minus {arms[0]}",
            "episodes_with_next_month_end": episodes,
            "realised_cure_rate": realised,
        },
        "middle": {
            "arms": list(P.MIDDLE_ARMS),
            "assignment": "NOT random: at the first M2 month-end of an episode, a loan with "
                          f"outstanding principal >= {P.MIDDLE_RULE_BALANCE:.0f} yuan or grade "
                          f"D/E goes to {P.MIDDLE_ARMS[1]} with probability "
                          f"{P.MIDDLE_RULE_PROBABILITY['high']}, other loans with probability "
                          f"{P.MIDDLE_RULE_PROBABILITY['low']}",
            "true_cure_probability": {"M2": P.DELINQUENT_TRANSITIONS["M2"]["cure"],
                                      "M3": P.DELINQUENT_TRANSITIONS["M3"]["cure"]},
            "true_effect": "none: both arms share the M2 and M3 rows of the transition matrix",
            "entries_by_arm": {arm: int(middle[k, 0]) for k, arm in enumerate(P.MIDDLE_ARMS)},
            "mean_balance_by_arm": {arm: _ratio(middle[k, 1], middle[k, 0])
                                    for k, arm in enumerate(P.MIDDLE_ARMS)},
            "smd_balance": _smd(middle),
            "smd_definition": "(mean D - mean C) / sqrt((var D + var C) / 2) of outstanding "
                              "principal at M2 entry",
        },
        "late": {
            "arms": list(P.LATE_ARMS),
            "assignment": f"NOT random: at the first M4 month-end, outstanding >= "
                          f"{P.LATE_RULE_BALANCE:.0f} yuan goes to {P.LATE_ARMS[1]} with "
                          f"probability {P.LATE_RULE_PROBABILITY['high']}, others "
                          f"{P.LATE_RULE_PROBABILITY['low']}",
            "true_effect": "none",
            "entries_by_arm": {arm: int(late[k, 0]) for k, arm in enumerate(P.LATE_ARMS)},
            "smd_balance": _smd(late),
        },
        "action_costs_yuan": dict(P.ACTION_COST),
        "connect_probability": dict(P.CONNECT_PROBABILITY),
        "amount_collected": "the 'paid' (cure) or 'partial_payment' action of a loan-month "
                            "carries that month's principal_paid + interest_paid",
    }


def _compliance(breaches: dict, downgraded_calls: int) -> dict:
    return {
        "rules": {
            "night_contacts": "action_time at 22:00:00 or later, or before 08:00:00 (local)",
            "voice_calls_over_daily_cap": "per borrower and calendar day, connected "
                                          "manual_call/ai_voice rows beyond the 3rd, all loans "
                                          "and agents together",
            "non_borrower_contacts": "contact_target emergency_contact or third_party",
        },
        "breach_counts": breaches,
        "total_breach_rows": breaches["night_contacts"]
        + breaches["voice_calls_over_daily_cap"] + breaches["non_borrower_contacts"],
        "breach_agents": {"night_contacts": list(P.NIGHT_AGENTS),
                          "voice_calls_over_daily_cap": list(P.OVERFLOW_AGENTS),
                          "non_borrower_contacts": list(P.THIRD_PARTY_AGENTS)},
        "each_breach_breaks_one_rule": True,
        "boundary_rows": "some normal contacts are at exactly 08:00:00 or 21:59:59 and are "
                         "not breaches",
        "normal_calls_downgraded_to_unanswered": downgraded_calls,
    }


def _pricing(pf: S.Portfolio, grid: S.MonthGrid) -> dict:
    units = np.rint(pf.rate * 10_000).astype(np.int64)
    cap_units = np.rint(pf.lpr_pct * 400).astype(np.int64)
    principal = pf.principal_fen.astype(float)
    masks = {"above_4x_lpr": units > cap_units, "above_24pct": units > 2400,
             "above_36pct": units > 3600}

    def shares(selection: np.ndarray) -> dict:
        total = principal[selection].sum()
        return {
            name: {"count": int((mask & selection).sum()),
                   "share_by_count": _ratio((mask & selection).sum(), selection.sum()),
                   "share_by_principal": _ratio(principal[mask & selection].sum(), total)}
            for name, mask in masks.items()
        }

    return {
        "rule": "annual_rate strictly greater than the cap; 4 x LPR uses the 1-year LPR "
                "announced in the origination month",
        "lpr_1y_pct_by_origination_month": {label: P.lpr_1y_pct(label)
                                            for label in grid.month_labels},
        "lpr_note": "months after 2026-08 reuse the 2026-08 value (3.00%)",
        "overall": shares(np.ones(pf.n, dtype=bool)),
        "by_product": {product: shares(pf.product == k)
                       for k, product in enumerate(P.PRODUCTS)},
        "exactly_24pct_loans": int((units == 2400).sum()),
        "exactly_36pct_loans": int((units == 3600).sum()),
        "exactly_4x_lpr_loans": int((units == cap_units).sum()),
    }


def _portfolio_mix(pf: S.Portfolio) -> dict:
    def shares(codes, names):
        counts = np.bincount(codes, minlength=len(names))
        return {name: _ratio(counts[k], pf.n) for k, name in enumerate(names)}

    borrowers = np.unique(pf.borrower_no)
    return {
        "products": shares(pf.product, P.PRODUCTS),
        "channels": shares(pf.channel, P.CHANNELS),
        "grades": shares(pf.grade, P.GRADES),
        "guarantees": shares(pf.guarantee, P.GUARANTEES),
        "repayment_methods": shares(pf.method, P.METHODS),
        "borrowers": int(len(borrowers)),
        "repeat_loans": int((~pf.is_first).sum()),
        "joint_liability_groups": int(len({g for g in pf.group_id if g is not None})),
        "principal_total": round(int(pf.principal_fen.sum()) / 100, 2),
    }
