"""Simulation behind the demo portfolio: loan attributes, month-end states, collections.

Everything is vectorised over loans with numpy. The only Python loops run over months,
products and action-template slots, never over loans. Money is kept in integer
fen (1/100 yuan) so that balances, payments and write-offs add up exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from ingest import demo_params as P

N_VINTAGES = 36
VOLUME_GROWTH = 2.0  # newest vintage volume / oldest, before the seasonal factors
CHUNK_LOANS = 100_000  # loans simulated together; fixed so output does not depend on memory

STATUSES = ("active", "restructured", "extended", "paid_off", "charged_off")
ACTIVE, RESTRUCTURED, EXTENDED, PAID_OFF, CHARGED_OFF = range(5)

ACTION_CHANNELS = ("sms", "ai_voice", "manual_call", "installment_plan", "field_visit",
                   "letter", "outsourced", "legal", "restructure")
SMS, AI_VOICE, MANUAL_CALL, INSTALLMENT_PLAN, FIELD_VISIT, LETTER, OUTSOURCED, LEGAL, \
    RESTRUCTURE_ACTION = range(9)
VOICE_CHANNELS = (AI_VOICE, MANUAL_CALL)
STRATEGIES = P.EARLY_ARMS + P.MIDDLE_ARMS + P.LATE_ARMS
OUTCOMES = ("no_answer", "refused", "promise_to_pay", "partial_payment", "paid", "wrong_number")
NO_ANSWER, REFUSED, PROMISE_TO_PAY, PARTIAL_PAYMENT, PAID, WRONG_NUMBER = range(6)
TARGETS = ("borrower", "emergency_contact", "third_party")

# Collector and agency ids with their teams. Index in AGENTS is the agent code.
AGENTS: tuple[str, ...] = (
    ("SYS01", "AIV01", "AIV02", "SYS02")
    + tuple(f"CA{k:03d}" for k in range(1, 41))
    + tuple(f"WW{k:02d}" for k in range(1, 7))
    + tuple(f"FW{k:02d}" for k in range(1, 4))
    + tuple(f"WF{k:02d}" for k in range(1, 9))
)
TEAMS = ("早期催收组", "中期一组", "中期二组", "委外机构", "法务组", "外访组", "贷后管理组")


def _team_of(agent: str) -> int:
    if agent in ("SYS01", "AIV01", "AIV02"):
        return 0
    if agent == "SYS02":
        return 6
    if agent.startswith("CA"):
        number = int(agent[2:])
        if number <= 10:
            return 0
        if number <= 25:
            return 1
        return 2
    return {"WW": 3, "FW": 4, "WF": 5}[agent[:2]]


AGENT_TEAM = np.array([_team_of(agent) for agent in AGENTS], dtype=np.int8)
AGENT_CODE = {agent: code for code, agent in enumerate(AGENTS)}
POOL_SMS = np.array([AGENT_CODE["SYS01"]])
POOL_LETTER = np.array([AGENT_CODE["SYS02"]])
POOL_AI = np.array([AGENT_CODE["AIV01"], AGENT_CODE["AIV02"]])
POOL_EARLY = np.array([AGENT_CODE[f"CA{k:03d}"] for k in range(1, 11)])
POOL_MIDDLE = np.array([AGENT_CODE[f"CA{k:03d}"] for k in range(11, 41)])
POOL_AGENCY = np.array([AGENT_CODE[f"WW{k:02d}"] for k in range(1, 7)])
POOL_LEGAL = np.array([AGENT_CODE[f"FW{k:02d}"] for k in range(1, 4)])
POOL_FIELD = np.array([AGENT_CODE[f"WF{k:02d}"] for k in range(1, 9)])

# Action templates per strategy: one slot per (channel, probability), slots spread over the
# month so that one loan gets at most one template action a day. A restructuring adds one
# more action on the month's last day.
TEMPLATES = {
    0: ((SMS, 1.0), (SMS, 1.0), (AI_VOICE, 0.7), (SMS, 0.8), (MANUAL_CALL, 0.3)),
    1: ((SMS, 1.0), (AI_VOICE, 1.0), (AI_VOICE, 1.0), (AI_VOICE, 0.8), (MANUAL_CALL, 0.3)),
    2: ((SMS, 1.0), (MANUAL_CALL, 1.0), (MANUAL_CALL, 1.0), (MANUAL_CALL, 0.8), (SMS, 0.5)),
    3: ((SMS, 1.0), (MANUAL_CALL, 1.0), (INSTALLMENT_PLAN, 0.8), (MANUAL_CALL, 0.7)),
    4: ((OUTSOURCED, 1.0), (MANUAL_CALL, 1.0), (MANUAL_CALL, 0.7), (LETTER, 0.6), (SMS, 0.5)),
    5: ((LETTER, 1.0), (MANUAL_CALL, 0.8), (FIELD_VISIT, 0.6), (LEGAL, 0.5), (OUTSOURCED, 0.2)),
}


@dataclass
class MonthGrid:
    """Calendar months from the first vintage to the as-of month (index 0 .. 35).

    The newest vintage is the as-of month itself: its loans get their MOB 0 row at the
    as-of month-end."""

    as_of: dt.date
    month_labels: list[str]          # 'YYYY-MM'
    month_end_days: np.ndarray       # days since 1970-01-01 of each month-end
    days_in_month: np.ndarray

    @property
    def n_months(self) -> int:
        return len(self.month_labels)

    @classmethod
    def ending_at(cls, as_of: dt.date) -> "MonthGrid":
        first = np.datetime64(as_of.strftime("%Y-%m"), "M") - (N_VINTAGES - 1)
        months = first + np.arange(N_VINTAGES)
        starts = months.astype("datetime64[D]")
        ends = (months + 1).astype("datetime64[D]") - 1
        return cls(
            as_of=as_of,
            month_labels=[str(month) for month in months],
            month_end_days=ends.astype(np.int64),
            days_in_month=(ends - starts).astype(np.int64) + 1,
        )


@dataclass
class Portfolio:
    """Loan-level attributes; arrays sorted by origination date."""

    n: int
    vintage: np.ndarray          # calendar month index of origination, 0 .. 35
    day: np.ndarray              # day of month of origination, 1 .. 28
    loan_no: np.ndarray          # int64, the loan_id is '00' + this number
    borrower_no: np.ndarray      # int64 pseudonymous borrower number
    product: np.ndarray
    channel: np.ndarray
    grade: np.ndarray
    province: np.ndarray
    city: np.ndarray             # index into CITY_TABLE
    term: np.ndarray
    method: np.ndarray
    principal_fen: np.ndarray
    rate: np.ndarray             # annual, fraction, 4 decimals
    guarantee: np.ndarray
    group_id: np.ndarray         # object array, None where no group
    is_first: np.ndarray
    age: np.ndarray
    gender: np.ndarray           # 0 = M, 1 = F
    score: np.ndarray
    hazard: np.ndarray           # static C -> M1 hazard multiplier
    lpr_pct: np.ndarray          # 1-year LPR of the origination month, percent
    vintage_start_days: np.ndarray  # days since 1970-01-01 of the origination month's 1st


CITY_TABLE = tuple(
    (province_index, city, code, branch)
    for province_index, province in enumerate(P.PROVINCES)
    for city, code, branch in province["cities"]
)


def build_portfolio(n_loans: int, grid: MonthGrid, rng: np.random.Generator) -> Portfolio:
    """Draw the attributes of ``n_loans`` loans over the 36 vintages of ``grid``."""
    vintage = _draw_vintages(n_loans, grid, rng)
    day = rng.integers(1, 29, n_loans)
    product = _choice(rng, P.PRODUCT_WEIGHTS, n_loans)
    channel = _choice(rng, P.CHANNEL_WEIGHTS, n_loans)
    province = _choice(rng, [p["weight"] for p in P.PROVINCES], n_loans)
    city_offsets = np.cumsum([0] + [len(p["cities"]) for p in P.PROVINCES])
    city_counts = np.diff(city_offsets)
    city = city_offsets[province] + (rng.random(n_loans) * city_counts[province]).astype(int)
    guarantee = _draw_guarantees(product, channel, rng)
    group = _form_groups(guarantee, rng)
    # Members of a joint-liability group borrow together: the first member's origination
    # date and place apply to the whole group.
    leader = np.where(group >= 0, _group_leaders(group), np.arange(n_loans))
    vintage, day, province, city = vintage[leader], day[leader], province[leader], city[leader]
    guarantee = np.where((guarantee == 4) & (group < 0), 1, guarantee).astype(np.int8)

    order = np.lexsort((day, vintage))
    vintage, day, product, channel = vintage[order], day[order], product[order], channel[order]
    province, city, guarantee, group = province[order], city[order], guarantee[order], group[order]

    grade = _choice(rng, P.GRADE_WEIGHTS, n_loans)
    age = np.clip(np.rint(rng.normal(38, 9, n_loans)), 22, 60).astype(np.int16)
    gender = (rng.random(n_loans) < 0.38).astype(np.int8)
    term, method = _draw_terms(product, rng)
    principal_fen = _draw_principal(product, rng)

    # Repeat loans take the borrower, gender, age and place of an earlier first loan. A
    # repeat loan inside a joint-liability group keeps the group's place.
    is_first, borrower_no = _draw_borrowers(vintage, rng)
    source = _repeat_sources(vintage, is_first, rng)
    repeat = ~is_first
    borrower_no[repeat] = borrower_no[source[repeat]]
    gender[repeat] = gender[source[repeat]]
    age[repeat] = age[source[repeat]] + (vintage[repeat] - vintage[source[repeat]]) // 12
    moved = repeat & (group < 0)
    province[moved] = province[source[moved]]
    city[moved] = city[source[moved]]

    score = np.array([P.GRADE_SCORE_MEAN[g] for g in P.GRADES])[grade]
    score = np.clip(np.rint(score + rng.normal(0, P.GRADE_SCORE_SD, n_loans)), 300, 850)

    lpr_by_vintage = np.array([P.lpr_1y_pct(label) for label in grid.month_labels])
    lpr_pct = lpr_by_vintage[vintage]
    rate = _draw_rates(grade, channel, product, lpr_pct, rng)

    hazard = (
        np.array([P.GRADE_HAZARD[g] for g in P.GRADES])[grade]
        * np.array([P.PRODUCT_HAZARD[p] for p in P.PRODUCTS])[product]
        * np.array([P.CHANNEL_HAZARD[c] for c in P.CHANNELS])[channel]
        * np.array([p["hazard"] for p in P.PROVINCES])[province]
        * np.where(is_first, 1.0, P.REPEAT_LOAN_HAZARD)
    )
    loose_from, loose_to = P.LOOSE_VINTAGES
    loose = (vintage + 1 >= loose_from) & (vintage + 1 <= loose_to)
    hazard = hazard * np.where(loose, P.LOOSE_VINTAGE_HAZARD, 1.0)

    yyyymm = np.array([int(label.replace("-", "")) for label in grid.month_labels])
    loan_no = yyyymm[vintage].astype(np.int64) * 10**10 + np.arange(1, n_loans + 1)
    group_id = _group_labels(group, city, vintage, grid)

    return Portfolio(
        n=n_loans, vintage=vintage, day=day, loan_no=loan_no, borrower_no=borrower_no,
        product=product, channel=channel, grade=grade, province=province, city=city,
        term=term, method=method, principal_fen=principal_fen, rate=rate,
        guarantee=guarantee, group_id=group_id, is_first=is_first, age=age, gender=gender,
        score=score, hazard=hazard, lpr_pct=lpr_pct,
        vintage_start_days=(grid.month_end_days - grid.days_in_month + 1)[vintage],
    )


def _choice(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    cumulative = np.cumsum(weights / weights.sum())
    return np.minimum(np.searchsorted(cumulative, rng.random(size), side="right"),
                      len(weights) - 1).astype(np.int16)


def _draw_vintages(n_loans: int, grid: MonthGrid, rng: np.random.Generator) -> np.ndarray:
    # Volume doubles over the 36 months; Chinese New Year (Feb) is slow, December busy.
    growth = np.exp(np.log(VOLUME_GROWTH) * np.arange(N_VINTAGES) / (N_VINTAGES - 1))
    season = {"02": 0.70, "01": 0.90, "12": 1.10}
    factor = np.array([season.get(label[5:], 1.0) for label in grid.month_labels[:N_VINTAGES]])
    weights = growth * factor
    counts = rng.multinomial(n_loans, weights / weights.sum())
    return np.repeat(np.arange(N_VINTAGES), counts).astype(np.int16)


def _draw_terms(product: np.ndarray, rng: np.random.Generator):
    term = np.zeros(len(product), dtype=np.int16)
    method = np.zeros(len(product), dtype=np.int8)
    for code, name in enumerate(P.PRODUCTS):
        rows = np.nonzero(product == code)[0]
        terms, weights = P.PRODUCT_TERMS[name]
        term[rows] = np.array(terms)[_choice(rng, weights, len(rows))]
        method[rows] = _choice(rng, P.PRODUCT_METHODS[name], len(rows))
    # A bullet loan (到期一次还本付息) longer than 12 months becomes 先息后本.
    method[(method == P.BULLET) & (term > 12)] = P.INTEREST_ONLY
    return term, method


def _draw_principal(product: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    principal = np.zeros(len(product))
    for code, name in enumerate(P.PRODUCTS):
        rows = np.nonzero(product == code)[0]
        median, sigma, low, high, step = P.PRODUCT_PRINCIPAL[name]
        draw = np.clip(median * np.exp(sigma * rng.standard_normal(len(rows))), low, high)
        principal[rows] = np.maximum(np.rint(draw / step) * step, low)
    return (principal * 100).astype(np.int64)


def _draw_guarantees(product, channel, rng) -> np.ndarray:
    guarantee = np.zeros(len(product), dtype=np.int8)
    for code, name in enumerate(P.PRODUCTS):
        rows = np.nonzero(product == code)[0]
        guarantee[rows] = _choice(rng, P.PRODUCT_GUARANTEES[name], len(rows))
    offline = P.CHANNELS.index("线下")
    guarantee[(guarantee == 4) & (channel != offline)] = 1
    return guarantee


def _draw_borrowers(vintage, rng):
    n_loans = len(vintage)
    is_first = ~((vintage >= 3) & (rng.random(n_loans) < P.REPEAT_LOAN_SHARE))
    borrower_no = np.zeros(n_loans, dtype=np.int64)
    borrower_no[is_first] = np.arange(1, is_first.sum() + 1)
    return is_first, borrower_no


def _repeat_sources(vintage, is_first, rng) -> np.ndarray:
    """For each repeat loan, the index of an earlier first loan of the same borrower."""
    first_index = np.nonzero(is_first)[0]
    first_vintage = vintage[first_index]
    earlier = np.searchsorted(first_vintage, vintage, side="left")  # first loans of older vintages
    pick = (rng.random(len(vintage)) * np.maximum(earlier, 1)).astype(np.int64)
    source = first_index[np.minimum(pick, len(first_index) - 1)]
    return np.where(is_first, np.arange(len(vintage)), source)


def _draw_rates(grade, channel, product, lpr_pct, rng) -> np.ndarray:
    n_loans = len(grade)
    rate = (
        np.array([P.GRADE_RATE[g] for g in P.GRADES])[grade]
        + np.array([P.CHANNEL_RATE_ADD[c] for c in P.CHANNELS])[channel]
        + np.array([P.PRODUCT_RATE_ADD[p] for p in P.PRODUCTS])[product]
        + rng.normal(0, P.RATE_NOISE_SD, n_loans)
    )
    zhudai = channel == P.CHANNELS.index("助贷")
    fee_loaded = zhudai & (rng.random(n_loans) < P.FEE_LOADED_SHARE_OF_ZHUDAI)
    low, high = P.FEE_LOADED_RATE_RANGE
    rate = np.where(fee_loaded, rng.uniform(low, high, n_loans), rate)
    rate = np.clip(rate, *P.RATE_BOUNDS)
    # Rates in units of 0.0001 (one hundredth of a percentage point).
    units = np.rint(rate * 10_000).astype(np.int64)
    special = rng.random(n_loans)
    units = np.where(special < P.EXACT_24_SHARE, 2400, units)
    units = np.where((special >= P.EXACT_24_SHARE)
                     & (special < P.EXACT_24_SHARE + P.EXACT_36_SHARE), 3600, units)
    # Keep every rate off 4 x LPR exactly, so "exceeds 4 x LPR" has no ties to round.
    cap_units = np.rint(lpr_pct * 400).astype(np.int64)
    units = np.where(units == cap_units, units + np.where(rng.random(n_loans) < 0.5, -5, 5),
                     units)
    return units / 10_000


def _form_groups(guarantee: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut the 联保 loans, in random order, into groups of 3-5; return a group number per
    loan (-1 outside groups). Leftovers too few for a group get -1 (and become 保证)."""
    group = np.full(len(guarantee), -1, dtype=np.int64)
    candidates = rng.permutation(np.nonzero(guarantee == 4)[0])
    low, high = P.GROUP_SIZE_RANGE
    sizes = rng.integers(low, high + 1, len(candidates) // low + 1)
    ends = np.cumsum(sizes)
    ends = ends[ends <= len(candidates)]
    if len(ends) == 0:
        return group
    starts = np.r_[0, ends[:-1]]
    number = np.repeat(np.arange(len(ends)), ends - starts)
    group[candidates[:ends[-1]]] = number
    return group


def _group_leaders(group: np.ndarray) -> np.ndarray:
    """Index of the first loan (lowest index) of each loan's group, for grouped loans."""
    grouped = np.nonzero(group >= 0)[0]
    leader_of_group = np.full(group.max() + 1 if len(grouped) else 0, len(group), dtype=np.int64)
    np.minimum.at(leader_of_group, group[grouped], grouped)
    leaders = np.arange(len(group))
    leaders[grouped] = leader_of_group[group[grouped]]
    return leaders


def _group_labels(group: np.ndarray, city: np.ndarray, vintage: np.ndarray,
                  grid: MonthGrid) -> np.ndarray:
    """Group ids like 'LB440100202403000012': city code, origination month, serial."""
    labels = np.full(len(group), None, dtype=object)
    grouped = np.nonzero(group >= 0)[0]
    if len(grouped) == 0:
        return labels
    # Number groups in order of their first loan so ids follow origination order.
    _, first = np.unique(group[grouped], return_index=True)
    order = np.argsort(grouped[first])
    serial = np.empty(len(first), dtype=np.int64)
    serial[order] = np.arange(1, len(first) + 1)
    serial_of_loan = serial[np.searchsorted(np.unique(group[grouped]), group[grouped])]
    city_codes = np.array([entry[2] for entry in CITY_TABLE])[city[grouped]]
    months = np.array([label.replace("-", "") for label in grid.month_labels])[vintage[grouped]]
    text = np.char.add(np.char.add(np.char.add("LB", city_codes), months),
                       np.char.zfill(serial_of_loan.astype(str), 6))
    labels[grouped] = text.astype(object)
    return labels


# ----------------------------------------------------------------------------------------
# Repayment schedules in closed form. ``n`` is the number of instalments paid or due.

def schedule_balance_fen(principal, monthly_rate, term, method, n) -> np.ndarray:
    """Scheduled outstanding principal (fen) after ``n`` instalments."""
    n = np.minimum(n, term).astype(float)
    term = term.astype(float)
    balance = np.empty(len(principal))
    annuity = method == P.ANNUITY
    growth_full = (1 + monthly_rate[annuity]) ** term[annuity]
    growth_n = (1 + monthly_rate[annuity]) ** n[annuity]
    balance[annuity] = principal[annuity] * (growth_full - growth_n) / (growth_full - 1)
    equal = method == P.EQUAL_PRINCIPAL
    balance[equal] = principal[equal] * (1 - n[equal] / term[equal])
    bullet_like = (method == P.INTEREST_ONLY) | (method == P.BULLET)
    balance[bullet_like] = np.where(n[bullet_like] < term[bullet_like], principal[bullet_like], 0)
    return np.rint(balance * 100).astype(np.int64)


def schedule_interest_fen(principal, monthly_rate, term, method, n) -> np.ndarray:
    """Cumulative scheduled interest (fen) of the first ``n`` instalments."""
    n = np.minimum(n, term).astype(float)
    term = term.astype(float)
    interest = np.empty(len(principal))
    annuity = method == P.ANNUITY
    r = monthly_rate[annuity]
    growth_full = (1 + r) ** term[annuity]
    payment = principal[annuity] * r * growth_full / (growth_full - 1)
    balance = principal[annuity] * (growth_full - (1 + r) ** n[annuity]) / (growth_full - 1)
    interest[annuity] = n[annuity] * payment - (principal[annuity] - balance)
    equal = method == P.EQUAL_PRINCIPAL
    interest[equal] = monthly_rate[equal] * principal[equal] * (
        n[equal] - n[equal] * (n[equal] - 1) / (2 * term[equal]))
    io = method == P.INTEREST_ONLY
    interest[io] = n[io] * monthly_rate[io] * principal[io]
    bullet = method == P.BULLET
    interest[bullet] = np.where(n[bullet] >= term[bullet],
                                term[bullet] * monthly_rate[bullet] * principal[bullet], 0)
    return np.rint(interest * 100).astype(np.int64)


# ----------------------------------------------------------------------------------------
# Month-by-month simulation.

@dataclass
class Tally:
    """Expected and realised transition counts, summed over chunks, for the truth file."""

    c_rows_by_grade: np.ndarray = field(default_factory=lambda: np.zeros(5))
    c_to_m1_expected_by_grade: np.ndarray = field(default_factory=lambda: np.zeros(5))
    c_to_m1_realised_by_grade: np.ndarray = field(default_factory=lambda: np.zeros(5))
    c_rows_by_province: np.ndarray = field(
        default_factory=lambda: np.zeros(len(P.PROVINCES)))
    c_to_m1_expected_by_province: np.ndarray = field(
        default_factory=lambda: np.zeros(len(P.PROVINCES)))
    prepay_rows_by_product: np.ndarray = field(default_factory=lambda: np.zeros(3))
    prepay_realised_by_product: np.ndarray = field(default_factory=lambda: np.zeros(3))
    m1_start_rows_by_arm: np.ndarray = field(default_factory=lambda: np.zeros(2))
    m1_start_cured_by_arm: np.ndarray = field(default_factory=lambda: np.zeros(2))
    # from bucket (0..7) -> outcome (C, same, next, WO, PAID, restructure) realised counts
    transitions: np.ndarray = field(default_factory=lambda: np.zeros((8, 6)))
    # Outstanding principal (yuan) at the month-end an arm is assigned, by arm:
    # count, sum and sum of squares, for the standardised mean difference.
    middle_balance_moments: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))
    late_balance_moments: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))
    middle_high_risk_by_arm: np.ndarray = field(default_factory=lambda: np.zeros(2))
    restructured_loans: int = 0
    restructured_redefault_6m: int = 0
    restructured_observed_6m: int = 0
    extended_loans: int = 0
    charged_off_fen: int = 0
    recovered_fen: int = 0

    def add(self, other: "Tally") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def simulate_chunk(pf: Portfolio, lo: int, hi: int, grid: MonthGrid,
                   rng: np.random.Generator) -> tuple[dict, dict, Tally]:
    """Simulate loans ``lo:hi`` from origination to the as-of month.

    Returns the loan_months columns, the normal collection actions and the tally.
    """
    n = hi - lo
    tally = Tally()
    vintage = pf.vintage[lo:hi].astype(np.int64)
    product = pf.product[lo:hi]
    grade = pf.grade[lo:hi]
    province = pf.province[lo:hi]
    hazard = pf.hazard[lo:hi]
    guarantee = pf.guarantee[lo:hi]
    day = pf.day[lo:hi]
    prepay_probability = np.array([P.PREPAY_PROBABILITY[p] for p in P.PRODUCTS])[product]
    recovery_probability = np.array([P.RECOVERY_PROBABILITY[g] for g in P.GUARANTEES])[guarantee]
    extendable = ((pf.method[lo:hi] == P.INTEREST_ONLY)
                  & (product != P.PRODUCTS.index("消费贷")))
    high_middle = np.isin(grade, [3, 4])

    # Schedule, possibly replaced by a restructuring or lengthened by an extension.
    s_principal = pf.principal_fen[lo:hi] / 100.0
    s_rate = pf.rate[lo:hi] / 12.0
    s_term = pf.term[lo:hi].astype(np.int64)
    s_method = pf.method[lo:hi].astype(np.int8)
    s_start = np.zeros(n, dtype=np.int64)       # MOB at which the schedule starts

    bucket = np.zeros(n, dtype=np.int8)          # 0 = C, 1..7 = M1..M7+
    months_over = np.zeros(n, dtype=np.int64)    # whole months past due, unbounded
    status = np.zeros(n, dtype=np.int8)          # ACTIVE / RESTRUCTURED / EXTENDED
    closed = np.zeros(n, dtype=np.int8)          # 0 open, 1 paid off, 2 charged off
    paid_count = np.zeros(n, dtype=np.int64)     # instalments of the schedule paid
    outstanding = pf.principal_fen[lo:hi].copy()
    overdue_interest = np.zeros(n, dtype=np.int64)
    overdue_total = np.zeros(n, dtype=np.int64)  # overdue principal + interest at last month-end
    dpd_last = np.zeros(n, dtype=np.int64)
    early_arm = np.full(n, -1, dtype=np.int8)
    middle_arm = np.full(n, -1, dtype=np.int8)
    late_arm = np.full(n, -1, dtype=np.int8)
    episode_start = np.zeros(n, dtype=bool)      # M1 at last month-end, current before
    write_off_month = np.full(n, -1, dtype=np.int64)
    write_off_fen = np.zeros(n, dtype=np.int64)
    write_off_dpd = np.zeros(n, dtype=np.int64)
    recovered = np.zeros(n, dtype=np.int64)
    restructure_month = np.full(n, -1, dtype=np.int64)
    redefault_month = np.full(n, -1, dtype=np.int64)  # first M1 after the last restructuring

    rows = _RowBuffer()
    actions = _ActionBuffer()

    for month in range(int(vintage.min()), grid.n_months):
        mob = month - vintage
        end_day = grid.month_end_days[month]
        first_due_gap = np.clip(grid.days_in_month[month] - day, 1, 30).astype(np.int64)

        new = np.nonzero(mob == 0)[0]
        zeros = np.zeros(len(new), dtype=np.int64)
        rows.add(lo + new, end_day, zeros, outstanding[new], zeros, zeros,
                 np.full(len(new), ACTIVE), zeros, zeros, None, None)

        # Recoveries after charge-off.
        since = month - write_off_month
        rec = np.nonzero((closed == 2) & (since >= 1) & (since <= P.RECOVERY_MONTHS))[0]
        if len(rec):
            hit = rng.random(len(rec)) < recovery_probability[rec]
            share = rng.uniform(*P.RECOVERY_SHARE_RANGE, len(rec))
            amount = np.minimum(np.rint(share * write_off_fen[rec]).astype(np.int64),
                                write_off_fen[rec] - recovered[rec])
            hit &= amount > 0
            rec, amount = rec[hit], amount[hit]
            recovered[rec] += amount
            tally.recovered_fen += int(amount.sum())
            zeros = np.zeros(len(rec), dtype=np.int64)
            rows.add(lo + rec, end_day, write_off_dpd[rec] + 30 * since[rec], zeros, zeros,
                     zeros, np.full(len(rec), CHARGED_OFF), zeros, zeros, None, amount)

        live = np.nonzero((mob >= 1) & (closed == 0))[0]
        if len(live) == 0:
            continue
        i = live
        m = mob[i]
        prev_bucket = bucket[i].copy()
        prev_out = outstanding[i].copy()
        prev_dpd = dpd_last[i].copy()
        prev_overdue_total = overdue_total[i].copy()
        was_episode_start = episode_start[i].copy()
        n_due_prev = np.clip(m - 1 - s_start[i], 0, s_term[i])
        n_due = np.clip(m - s_start[i], 0, s_term[i])
        due_now = n_due > n_due_prev

        # --- from C ---------------------------------------------------------------
        is_c = prev_bucket == 0
        lam = P.BASE_HAZARD * P.mob_hazard_shape(m) * hazard[i]
        lam = np.where(status[i] == EXTENDED, lam * P.EXTENDED_HAZARD, lam)
        lam = np.where(status[i] == RESTRUCTURED, P.RESTRUCTURED_HAZARD, lam)
        bullet = s_method[i] == P.BULLET
        # A bullet loan has its only payment at maturity, so it can only fall behind then.
        lam = np.where(bullet, np.where(n_due >= s_term[i], P.BASE_HAZARD * s_term[i] * hazard[i],
                                        0.0), lam)
        lam = np.where(due_now, lam, 0.0)
        p_m1 = 1.0 - np.exp(-lam)
        final = n_due >= s_term[i]
        pp = np.where(final, 0.0, prepay_probability[i])
        u_prepay = rng.random(len(i))
        u_m1 = rng.random(len(i))
        prepay = is_c & (u_prepay < pp)
        to_m1 = is_c & ~prepay & (u_m1 < p_m1)

        c_grade = grade[i][is_c]
        expected_m1 = ((1 - pp) * p_m1)[is_c]
        tally.c_rows_by_grade += np.bincount(c_grade, minlength=5)
        tally.c_to_m1_expected_by_grade += np.bincount(c_grade, expected_m1, minlength=5)
        tally.c_to_m1_realised_by_grade += np.bincount(grade[i][to_m1], minlength=5)
        c_province = province[i][is_c]
        tally.c_rows_by_province += np.bincount(c_province, minlength=len(P.PROVINCES))
        tally.c_to_m1_expected_by_province += np.bincount(
            c_province, expected_m1, minlength=len(P.PROVINCES))
        eligible = is_c & ~final
        tally.prepay_rows_by_product += np.bincount(product[i][eligible], minlength=3)
        tally.prepay_realised_by_product += np.bincount(product[i][prepay & eligible],
                                                        minlength=3)

        extend = (is_c & ~prepay & ~to_m1 & final & extendable[i] & (status[i] == ACTIVE)
                  & (rng.random(len(i)) < P.EXTENSION_PROBABILITY))
        s_term[i[extend]] += P.EXTENSION_MONTHS
        status[i[extend]] = EXTENDED
        tally.extended_loans += int(extend.sum())
        n_due = np.clip(m - s_start[i], 0, s_term[i])

        # --- from M1 .. M7+ -----------------------------------------------------
        cure_p, stay_p, roll_p = _delinquent_probabilities(prev_bucket, early_arm[i])
        u = rng.random(len(i))
        delinquent = prev_bucket >= 1
        cure = delinquent & (u < cure_p)
        stay = delinquent & ~cure & (u < cure_p + stay_p)
        roll = delinquent & ~cure & ~stay & (u < cure_p + stay_p + roll_p)
        # Only M4-M6 can be restructured; elsewhere the row probabilities sum to 1 and any
        # rounding remainder rolls forward.
        leftover = delinquent & ~cure & ~stay & ~roll
        restructurable = (prev_bucket >= 4) & (prev_bucket <= 6)
        restructure = leftover & restructurable
        roll |= leftover & ~restructurable
        write_off = roll & (prev_bucket == 7)
        roll &= ~write_off

        start_rows = was_episode_start & (prev_bucket == 1)
        arms = early_arm[i][start_rows]
        tally.m1_start_rows_by_arm += np.bincount(arms, minlength=2)
        tally.m1_start_cured_by_arm += np.bincount(arms[cure[start_rows]], minlength=2)

        new_bucket = prev_bucket.copy()
        new_over = months_over[i].copy()
        new_bucket[to_m1] = 1
        new_over[to_m1] = 1
        new_bucket[cure] = 0
        new_over[cure] = 0
        new_over[stay & (prev_bucket == 7)] += 1
        new_bucket[roll] += 1
        new_over[roll | write_off] += 1

        # --- balances ------------------------------------------------------------
        missed = np.where(new_bucket == 0, 0, np.minimum(new_over, n_due))
        new_paid = np.maximum(paid_count[i], n_due - missed)
        sched = (s_principal[i], s_rate[i], s_term[i], s_method[i])
        balance_paid = schedule_balance_fen(*sched, new_paid)
        balance_due = schedule_balance_fen(*sched, n_due)
        interest_paid_cum = schedule_interest_fen(*sched, new_paid)
        interest_prev_cum = schedule_interest_fen(*sched, paid_count[i])
        interest_due_cum = schedule_interest_fen(*sched, n_due)

        new_out = balance_paid
        principal_paid = prev_out - balance_paid
        interest_paid = interest_paid_cum - interest_prev_cum
        overdue_p = balance_paid - balance_due
        overdue_i = interest_due_cum - interest_paid_cum

        # Prepayment: the whole balance plus one month's interest.
        new_out = np.where(prepay, 0, new_out)
        principal_paid = np.where(prepay, prev_out, principal_paid)
        interest_paid = np.where(prepay, np.rint(prev_out * s_rate[i]).astype(np.int64),
                                 interest_paid)
        # Charge-off and restructuring: nothing paid except arrears interest at restructuring.
        frozen = write_off | restructure
        new_out = np.where(frozen, prev_out, new_out)
        principal_paid = np.where(frozen, 0, principal_paid)
        interest_paid = np.where(write_off, 0, interest_paid)
        interest_paid = np.where(restructure, overdue_interest[i], interest_paid)
        closed_now = write_off | prepay | (new_out == 0)
        overdue_p = np.where(closed_now | restructure, 0, overdue_p)
        overdue_i = np.where(closed_now | restructure, 0, overdue_i)

        row_status = status[i].copy()
        row_status[restructure] = RESTRUCTURED
        paid_off = (prepay | (new_out == 0)) & ~write_off
        row_status[paid_off] = PAID_OFF
        row_status[write_off] = CHARGED_OFF
        dpd = np.where((new_bucket == 0) | restructure | paid_off, 0,
                       30 * (new_over - 1) + first_due_gap[i])
        written = np.where(write_off, prev_out, 0)
        rows.add(lo + i, end_day, dpd, np.where(write_off, 0, new_out), overdue_p, overdue_i,
                 row_status, principal_paid, interest_paid,
                 np.where(write_off, written, -1), None)

        # --- collection actions during this month for loans delinquent at last month-end
        if delinquent.any():
            outcome_kind = np.select([cure | paid_off, stay, restructure, write_off],
                                     [1, 2, 3, 4], 0)
            stage_arm = np.where(prev_bucket == 1, early_arm[i],
                                 np.where(prev_bucket <= 3, 2 + middle_arm[i], 4 + late_arm[i]))
            d = np.nonzero(delinquent)[0]
            actions.generate(
                rng, lo + i[d], pf.borrower_no[lo + i[d]], month, grid, prev_bucket[d],
                stage_arm[d], prev_dpd[d], outcome_kind[d],
                (principal_paid + interest_paid)[d],
            )

        # --- update state ---------------------------------------------------------
        tally.transitions += _transition_counts(prev_bucket, to_m1, cure, stay, roll,
                                                write_off, paid_off, restructure)
        redefault_rows = to_m1 & (status[i] == RESTRUCTURED) & (redefault_month[i] < 0)
        redefault_month[i[redefault_rows]] = month

        bucket[i] = np.where(restructure, 0, new_bucket)
        months_over[i] = np.where(restructure, 0, new_over)
        paid_count[i] = np.where(restructure, 0, new_paid)
        outstanding[i] = np.where(write_off | paid_off, 0, new_out)
        overdue_interest[i] = overdue_i
        overdue_total[i] = overdue_p + overdue_i
        dpd_last[i] = dpd
        status[i] = np.where(restructure, RESTRUCTURED, status[i])
        closed[i] = np.where(paid_off, 1, np.where(write_off, 2, closed[i]))

        r = i[restructure]
        s_principal[r] = prev_out[restructure] / 100.0
        s_start[r] = m[restructure]
        s_term[r] = P.RESTRUCTURE_TERM
        s_method[r] = P.ANNUITY
        restructure_month[r] = month
        redefault_month[r] = -1
        tally.restructured_loans += len(r)

        w = i[write_off]
        write_off_month[w] = month
        write_off_fen[w] = prev_out[write_off]
        write_off_dpd[w] = dpd[write_off]
        tally.charged_off_fen += int(prev_out[write_off].sum())

        # Episode arms: a new M1 episode gets a random early arm; M2 and M4 entries get
        # their (non-random) middle and late arms; a cure or restructuring ends the episode.
        episode_start[i] = to_m1
        early_arm[i[to_m1]] = (rng.random(int(to_m1.sum())) < 0.5).astype(np.int8)
        ended = cure | restructure | paid_off | write_off
        middle_arm[i[ended]] = -1
        late_arm[i[ended]] = -1
        early_arm[i[ended & ~to_m1]] = -1
        enter_m2 = roll & (new_bucket == 2)
        high = (new_out >= P.MIDDLE_RULE_BALANCE * 100) | high_middle[i]
        p_d = np.where(high, P.MIDDLE_RULE_PROBABILITY["high"], P.MIDDLE_RULE_PROBABILITY["low"])
        middle_arm[i[enter_m2]] = (rng.random(len(i))[enter_m2] < p_d[enter_m2]).astype(np.int8)
        _add_moments(tally.middle_balance_moments, middle_arm[i[enter_m2]],
                     new_out[enter_m2] / 100.0)
        tally.middle_high_risk_by_arm += np.bincount(
            middle_arm[i[enter_m2 & high]], minlength=2)
        enter_m4 = roll & (new_bucket == 4)
        high = new_out >= P.LATE_RULE_BALANCE * 100
        p_f = np.where(high, P.LATE_RULE_PROBABILITY["high"], P.LATE_RULE_PROBABILITY["low"])
        late_arm[i[enter_m4]] = (rng.random(len(i))[enter_m4] < p_f[enter_m4]).astype(np.int8)
        _add_moments(tally.late_balance_moments, late_arm[i[enter_m4]], new_out[enter_m4] / 100.0)
        # A loan restructured before any M2/M4 entry still needs arms when it rolls again.
        middle_arm[i[(new_bucket >= 2) & (middle_arm[i] < 0)]] = 0
        late_arm[i[(new_bucket >= 4) & (late_arm[i] < 0)]] = 0

    last = grid.n_months - 1
    observed = (restructure_month >= 0) & (last - restructure_month >= 6)
    tally.restructured_observed_6m = int(observed.sum())
    tally.restructured_redefault_6m = int(
        (observed & (redefault_month >= 0) & (redefault_month - restructure_month <= 6)).sum())
    return rows.finish(), actions.finish(), tally


def _add_moments(moments: np.ndarray, arm: np.ndarray, value: np.ndarray) -> None:
    for k in (0, 1):
        chosen = value[arm == k]
        moments[k] += (len(chosen), chosen.sum(), (chosen ** 2).sum())


def _delinquent_probabilities(bucket, early_arm):
    names = ("M2", "M3", "M4", "M5", "M6", "M7+")
    cure = np.zeros(8)
    stay = np.zeros(8)
    roll = np.zeros(8)
    for index, name in enumerate(names, start=2):
        row = P.DELINQUENT_TRANSITIONS[name]
        cure[index], stay[index], roll[index] = row["cure"], row["stay"], row["roll"]
    arm_cure = np.array([P.EARLY_ARM_CURE[a] for a in P.EARLY_ARMS])
    m1 = bucket == 1
    cure_p = np.where(m1, arm_cure[np.maximum(early_arm, 0)], cure[bucket])
    stay_p = np.where(m1, P.M1_STAY, stay[bucket])
    roll_p = np.where(m1, 1 - cure_p - P.M1_STAY, roll[bucket])
    return cure_p, stay_p, roll_p


def _transition_counts(prev_bucket, to_m1, cure, stay, roll, write_off, paid_off, restructure):
    counts = np.zeros((8, 6))
    outcome = np.select(
        [paid_off, write_off, restructure, cure, to_m1 | roll, stay],
        [4, 3, 5, 0, 2, 1],
        1,  # C staying C
    )
    np.add.at(counts, (prev_bucket, outcome), 1)
    return counts


class _RowBuffer:
    """Collects loan_months columns month by month."""

    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, loan_index, end_day, dpd, outstanding, overdue_p, overdue_i, status,
            principal_paid, interest_paid, charged_off, recovered_amount):
        size = len(loan_index)
        if size == 0:
            return
        missing = np.full(size, -1, dtype=np.int64)
        self.parts.append((
            np.asarray(loan_index, dtype=np.int64),
            np.full(size, end_day, dtype=np.int32),
            np.asarray(dpd, dtype=np.int32),
            np.asarray(outstanding, dtype=np.int64),
            np.asarray(overdue_p, dtype=np.int64),
            np.asarray(overdue_i, dtype=np.int64),
            np.asarray(status, dtype=np.int8),
            np.asarray(principal_paid, dtype=np.int64),
            np.asarray(interest_paid, dtype=np.int64),
            missing if charged_off is None else np.asarray(charged_off, dtype=np.int64),
            missing if recovered_amount is None else np.asarray(recovered_amount, dtype=np.int64),
        ))

    def finish(self) -> dict:
        names = ("loan_index", "snapshot_day", "dpd", "outstanding_fen", "overdue_principal_fen",
                 "overdue_interest_fen", "status", "principal_paid_fen", "interest_paid_fen",
                 "charged_off_fen", "recovered_fen")
        if not self.parts:
            return {name: np.zeros(0, dtype=np.int64) for name in names}
        return {name: np.concatenate([part[k] for part in self.parts])
                for k, name in enumerate(names)}


class _ActionBuffer:
    """Builds the normal collection actions, vectorised over delinquent loan-months."""

    def __init__(self):
        self.parts: list[dict] = []

    def generate(self, rng, loan_index, borrower_no, month, grid, prev_bucket, strategy,
                 prev_dpd, outcome_kind, paid_fen):
        days = int(grid.days_in_month[month])
        month_start = int(grid.month_end_days[month]) - days + 1
        strategy = np.maximum(strategy, 0)
        for code, template in TEMPLATES.items():
            sel = np.nonzero(strategy == code)[0]
            if len(sel) == 0:
                continue
            slots = len(template)
            cured = (outcome_kind[sel] == 1) | (outcome_kind[sel] == 2)
            allowed = np.where(cured, rng.integers(1, slots + 1, len(sel)), slots)
            last_slot = np.full(len(sel), -1)
            pieces = []
            for k, (channel, probability) in enumerate(template):
                take = (k < allowed) & ((rng.random(len(sel)) < probability) | (k == 0))
                rows = sel[take]
                low = k * days // slots + 1
                high = (k + 1) * days // slots
                action_day = low + (rng.random(len(rows)) * (high - low + 1)).astype(np.int64)
                last_slot[take] = k
                pieces.append((k, channel, rows, action_day, np.nonzero(take)[0]))
            for k, channel, rows, action_day, local in pieces:
                self._add_rows(rng, channel, code, rows, local, k == last_slot[local],
                               loan_index, borrower_no, month_start, action_day, prev_bucket,
                               prev_dpd, outcome_kind, paid_fen)
        restructured = np.nonzero(outcome_kind == 3)[0]
        if len(restructured):
            self._add_rows(rng, RESTRUCTURE_ACTION, None, restructured,
                           np.arange(len(restructured)), np.ones(len(restructured), bool),
                           loan_index, borrower_no, month_start,
                           np.full(len(restructured), days), prev_bucket, prev_dpd,
                           outcome_kind, paid_fen, strategy_override=strategy[restructured])

    def _add_rows(self, rng, channel, code, rows, local, is_last, loan_index, borrower_no,
                  month_start, action_day, prev_bucket, prev_dpd, outcome_kind, paid_fen,
                  strategy_override=None):
        size = len(rows)
        if size == 0:
            return
        seconds = 9 * 3600 + rng.integers(0, 12 * 3600, size)
        if channel == FIELD_VISIT:
            seconds = 9 * 3600 + rng.integers(0, 9 * 3600, size)
        # A few contacts exactly at the edges of the allowed window: not breaches.
        edge = rng.random(size)
        seconds = np.where(edge < 0.003, 8 * 3600, seconds)
        seconds = np.where((edge >= 0.003) & (edge < 0.006), 22 * 3600 - 1, seconds)
        time_us = ((month_start + action_day - 1) * 86400 + seconds) * 1_000_000

        kind = outcome_kind[rows]
        paying = is_last & ((kind == 1) | (kind == 2))
        amount = np.where(paying, paid_fen[rows], 0)
        outcome = np.full(size, -1, dtype=np.int8)
        connected = np.full(size, -1, dtype=np.int8)  # -1 = not applicable (null)
        if channel in (AI_VOICE, MANUAL_CALL, FIELD_VISIT):
            reached = rng.random(size) < P.CONNECT_PROBABILITY[ACTION_CHANNELS[channel]]
            reached |= paying
            connected = reached.astype(np.int8)
            u = rng.random(size)
            outcome = np.where(reached, np.where(u < 0.6, PROMISE_TO_PAY, REFUSED),
                               np.where(u < 0.9, NO_ANSWER, WRONG_NUMBER)).astype(np.int8)
        elif channel == INSTALLMENT_PLAN:
            outcome = np.full(size, PROMISE_TO_PAY, dtype=np.int8)
        outcome = np.where(paying & (kind == 1), PAID, outcome)
        outcome = np.where(paying & (kind == 2), PARTIAL_PAYMENT, outcome).astype(np.int8)

        bucket = prev_bucket[rows]
        stage = np.where(bucket == 1, 0, np.where(bucket <= 3, 1, 2))
        pick = rng.random(size)
        if channel == SMS:
            agent = POOL_SMS[np.zeros(size, dtype=int)]
        elif channel == LETTER:
            agent = POOL_LETTER[np.zeros(size, dtype=int)]
        elif channel == AI_VOICE:
            agent = POOL_AI[(pick * len(POOL_AI)).astype(int)]
        elif channel in (MANUAL_CALL, INSTALLMENT_PLAN, RESTRUCTURE_ACTION):
            agent = np.select(
                [stage == 0, stage == 1],
                [POOL_EARLY[(pick * len(POOL_EARLY)).astype(int)],
                 POOL_MIDDLE[(pick * len(POOL_MIDDLE)).astype(int)]],
                POOL_AGENCY[(pick * len(POOL_AGENCY)).astype(int)])
            if channel != MANUAL_CALL:
                agent = POOL_MIDDLE[(pick * len(POOL_MIDDLE)).astype(int)]
        elif channel == OUTSOURCED:
            agent = POOL_AGENCY[(pick * len(POOL_AGENCY)).astype(int)]
        elif channel == LEGAL:
            agent = POOL_LEGAL[(pick * len(POOL_LEGAL)).astype(int)]
        else:
            agent = POOL_FIELD[(pick * len(POOL_FIELD)).astype(int)]
        strategy = (np.full(size, code) if strategy_override is None
                    else strategy_override[local])
        cost = np.full(size, int(round(P.ACTION_COST[ACTION_CHANNELS[channel]] * 100)))
        self.parts.append({
            "loan_index": loan_index[rows],
            "borrower_no": borrower_no[rows],
            "time_us": time_us.astype(np.int64),
            "channel": np.full(size, channel, dtype=np.int8),
            "strategy": np.asarray(strategy, dtype=np.int8),
            "dpd": (prev_dpd[rows] + action_day).astype(np.int32),
            "target": np.zeros(size, dtype=np.int8),
            "connected": connected,
            "outcome": outcome,
            "amount_fen": amount.astype(np.int64),
            "cost_fen": cost.astype(np.int64),
            "agent": agent.astype(np.int16),
            "injected": np.zeros(size, dtype=np.int8),
        })

    def finish(self) -> dict:
        if not self.parts:
            return empty_actions()
        return {name: np.concatenate([part[name] for part in self.parts])
                for name in self.parts[0]}


def empty_actions() -> dict:
    """Return an empty action column set with the right dtypes."""
    dtypes = {"loan_index": np.int64, "borrower_no": np.int64, "time_us": np.int64,
              "channel": np.int8, "strategy": np.int8, "dpd": np.int32, "target": np.int8,
              "connected": np.int8, "outcome": np.int8, "amount_fen": np.int64,
              "cost_fen": np.int64, "agent": np.int16, "injected": np.int8}
    return {name: np.zeros(0, dtype=dtype) for name, dtype in dtypes.items()}
