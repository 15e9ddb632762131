"""True parameters of the demo portfolio (see ``ingest.demo``).

Every number here is written to ``demo_truth.json`` so that tests and users can check
what the analyses recover. Hazard multipliers act on the continuous-time monthly hazard of
leaving the current state (C -> M1): the monthly probability is ``1 - exp(-hazard)``, so a
multiplier is exactly the hazard ratio of that transition.
"""

from __future__ import annotations

# Region list: province (official full name), its GB/T 2260 code, volume weight, hazard
# multiplier, and 2-4 prefecture-level cities with their codes and the branch that serves
# each city's offline loans. Codes checked against the adcode table of the cpca package 0.5.5.
PROVINCES: tuple[dict, ...] = (
    {"name": "广东省", "code": "440000", "weight": 0.13, "hazard": 1.00, "cities": (
        ("广州市", "440100", "广州营业部"), ("深圳市", "440300", "深圳营业部"),
        ("佛山市", "440600", "佛山营业部"), ("东莞市", "441900", "东莞营业部"))},
    {"name": "河南省", "code": "410000", "weight": 0.10, "hazard": 3.20, "cities": (
        ("郑州市", "410100", "郑州营业部"), ("洛阳市", "410300", "洛阳营业部"),
        ("南阳市", "411300", "南阳营业部"))},
    {"name": "山东省", "code": "370000", "weight": 0.09, "hazard": 1.50, "cities": (
        ("济南市", "370100", "济南营业部"), ("青岛市", "370200", "青岛营业部"),
        ("临沂市", "371300", "临沂营业部"))},
    {"name": "四川省", "code": "510000", "weight": 0.09, "hazard": 2.20, "cities": (
        ("成都市", "510100", "成都营业部"), ("绵阳市", "510700", "绵阳营业部"),
        ("南充市", "511300", "南充营业部"))},
    {"name": "江苏省", "code": "320000", "weight": 0.08, "hazard": 0.60, "cities": (
        ("南京市", "320100", "南京营业部"), ("苏州市", "320500", "苏州营业部"),
        ("徐州市", "320300", "徐州营业部"))},
    {"name": "广西壮族自治区", "code": "450000", "weight": 0.05, "hazard": 1.50, "cities": (
        ("南宁市", "450100", "南宁营业部"), ("柳州市", "450200", "柳州营业部"),
        ("桂林市", "450300", "桂林营业部"))},
    {"name": "湖南省", "code": "430000", "weight": 0.05, "hazard": 1.20, "cities": (
        ("长沙市", "430100", "长沙营业部"), ("衡阳市", "430400", "衡阳营业部"),
        ("常德市", "430700", "常德营业部"))},
    {"name": "湖北省", "code": "420000", "weight": 0.05, "hazard": 1.10, "cities": (
        ("武汉市", "420100", "武汉营业部"), ("襄阳市", "420600", "襄阳营业部"),
        ("宜昌市", "420500", "宜昌营业部"))},
    {"name": "浙江省", "code": "330000", "weight": 0.05, "hazard": 0.75, "cities": (
        ("杭州市", "330100", "杭州营业部"), ("宁波市", "330200", "宁波营业部"),
        ("温州市", "330300", "温州营业部"))},
    {"name": "河北省", "code": "130000", "weight": 0.04, "hazard": 1.25, "cities": (
        ("石家庄市", "130100", "石家庄营业部"), ("保定市", "130600", "保定营业部"),
        ("邯郸市", "130400", "邯郸营业部"))},
    {"name": "安徽省", "code": "340000", "weight": 0.04, "hazard": 1.10, "cities": (
        ("合肥市", "340100", "合肥营业部"), ("阜阳市", "341200", "阜阳营业部"),
        ("芜湖市", "340200", "芜湖营业部"))},
    {"name": "福建省", "code": "350000", "weight": 0.04, "hazard": 0.85, "cities": (
        ("福州市", "350100", "福州营业部"), ("厦门市", "350200", "厦门营业部"),
        ("泉州市", "350500", "泉州营业部"))},
    {"name": "江西省", "code": "360000", "weight": 0.03, "hazard": 1.20, "cities": (
        ("南昌市", "360100", "南昌营业部"), ("赣州市", "360700", "赣州营业部"),
        ("九江市", "360400", "九江营业部"))},
    {"name": "云南省", "code": "530000", "weight": 0.03, "hazard": 1.45, "cities": (
        ("昆明市", "530100", "昆明营业部"), ("曲靖市", "530300", "曲靖营业部"),
        ("大理白族自治州", "532900", "大理营业部"))},
    {"name": "贵州省", "code": "520000", "weight": 0.02, "hazard": 1.55, "cities": (
        ("贵阳市", "520100", "贵阳营业部"), ("遵义市", "520300", "遵义营业部"))},
    {"name": "陕西省", "code": "610000", "weight": 0.02, "hazard": 1.10, "cities": (
        ("西安市", "610100", "西安营业部"), ("宝鸡市", "610300", "宝鸡营业部"),
        ("咸阳市", "610400", "咸阳营业部"))},
    {"name": "山西省", "code": "140000", "weight": 0.02, "hazard": 1.20, "cities": (
        ("太原市", "140100", "太原营业部"), ("大同市", "140200", "大同营业部"))},
    {"name": "辽宁省", "code": "210000", "weight": 0.02, "hazard": 1.35, "cities": (
        ("沈阳市", "210100", "沈阳营业部"), ("大连市", "210200", "大连营业部"))},
    {"name": "黑龙江省", "code": "230000", "weight": 0.02, "hazard": 1.50, "cities": (
        ("哈尔滨市", "230100", "哈尔滨营业部"), ("齐齐哈尔市", "230200", "齐齐哈尔营业部"))},
    {"name": "内蒙古自治区", "code": "150000", "weight": 0.02, "hazard": 1.40, "cities": (
        ("呼和浩特市", "150100", "呼和浩特营业部"), ("包头市", "150200", "包头营业部"),
        ("赤峰市", "150400", "赤峰营业部"))},
    {"name": "吉林省", "code": "220000", "weight": 0.01, "hazard": 1.30, "cities": (
        ("长春市", "220100", "长春营业部"), ("吉林市", "220200", "吉林营业部"))},
)
REFERENCE_PROVINCE = "广东省"
# The five largest provinces by volume, from lowest to highest true risk. Each hazard
# multiplier is at least 45% above the previous one, so the order is recoverable from the
# M1+ rates of a 20,000-loan demo pooled over the last 13 month-ends.
LARGE_PROVINCE_RISK_ORDER = ("江苏省", "广东省", "山东省", "四川省", "河南省")

GRADES = ("A", "B", "C", "D", "E")
GRADE_WEIGHTS = (0.15, 0.25, 0.30, 0.20, 0.10)
GRADE_HAZARD = {"A": 0.35, "B": 0.60, "C": 1.00, "D": 1.60, "E": 2.60}
GRADE_SCORE_MEAN = {"A": 720.0, "B": 680.0, "C": 640.0, "D": 600.0, "E": 560.0}
GRADE_SCORE_SD = 20.0
REFERENCE_GRADE = "C"

PRODUCTS = ("经营贷", "消费贷", "农户贷")
PRODUCT_WEIGHTS = (0.35, 0.45, 0.20)
PRODUCT_HAZARD = {"经营贷": 0.80, "消费贷": 1.00, "农户贷": 1.25}
REFERENCE_PRODUCT = "消费贷"

CHANNELS = ("线上", "线下", "助贷")
CHANNEL_WEIGHTS = (0.40, 0.35, 0.25)
CHANNEL_HAZARD = {"线上": 1.30, "线下": 1.00, "助贷": 1.60}
REFERENCE_CHANNEL = "线下"
ONLINE_BRANCH = {"线上": "互联网金融部", "助贷": "助贷合作部"}

# Repeat borrowers (is_first_loan = false) carry a lower hazard.
REPEAT_LOAN_SHARE = 0.18
REPEAT_LOAN_HAZARD = 0.75

# Hazard of entering M1 from C per month, for the reference loan (grade C, 消费贷, 线下,
# 广东省, first loan), by months on book. Continuous-time hazard, not a probability.
BASE_HAZARD = 0.010
MOB_HAZARD_SHAPE = {1: 1.40, 2: 1.20, 3: 1.00, 4: 1.00, 5: 1.00, 6: 1.00}  # later MOBs: below
MOB_HAZARD_SHAPE_7_12 = 0.85
MOB_HAZARD_SHAPE_13_PLUS = 0.70
# Vintages 13-18 of the 36 (counted from the oldest) were underwritten more loosely: every
# loan in them carries this extra multiplier. Grade, product, channel and province mixes are
# the same in every vintage, so the vintage effect does not bias their hazard ratios.
LOOSE_VINTAGES = (13, 18)
LOOSE_VINTAGE_HAZARD = 1.25

# Repayment methods and the terms each product uses.
METHODS = ("等额本息", "等额本金", "先息后本", "到期一次还本付息")
ANNUITY, EQUAL_PRINCIPAL, INTEREST_ONLY, BULLET = range(4)
# Terms follow Chinese microlending practice: 经营贷 and 农户贷 mostly 12-24 months (some
# 36), 消费贷 6, 12 or 24 instalments. Longer terms keep loans on book for longer, so a
# 1,000,000-loan demo has enough month-end rows for benchmarks.
PRODUCT_TERMS = {
    "经营贷": ((12, 18, 24, 36), (0.25, 0.15, 0.40, 0.20)),
    "消费贷": ((6, 12, 24), (0.15, 0.45, 0.40)),
    "农户贷": ((12, 24, 36), (0.35, 0.45, 0.20)),
}
PRODUCT_METHODS = {
    "经营贷": (0.45, 0.20, 0.35, 0.00),
    "消费贷": (0.85, 0.05, 0.10, 0.00),
    "农户贷": (0.40, 0.00, 0.35, 0.25),
}
# Principal: lognormal median and sigma, clipped, rounded to a multiple (yuan).
PRODUCT_PRINCIPAL = {
    "经营贷": (60_000.0, 0.60, 10_000.0, 300_000.0, 1_000.0),
    "消费贷": (8_000.0, 0.70, 1_000.0, 50_000.0, 100.0),
    "农户贷": (30_000.0, 0.50, 5_000.0, 200_000.0, 1_000.0),
}

GUARANTEES = ("信用", "保证", "抵押", "质押", "联保")
PRODUCT_GUARANTEES = {
    "经营贷": (0.35, 0.25, 0.20, 0.08, 0.12),
    "消费贷": (0.90, 0.10, 0.00, 0.00, 0.00),
    "农户贷": (0.25, 0.25, 0.05, 0.02, 0.43),
}
# Joint-liability groups exist only for offline loans; an online 联保 draw becomes 保证.
GROUP_SIZE_RANGE = (3, 5)

# Annual rate: grade base + channel + product add-ons + normal noise, in fractions.
GRADE_RATE = {"A": 0.07, "B": 0.09, "C": 0.105, "D": 0.13, "E": 0.16}
CHANNEL_RATE_ADD = {"线上": 0.015, "线下": 0.0, "助贷": 0.045}
PRODUCT_RATE_ADD = {"经营贷": -0.005, "消费贷": 0.0, "农户贷": -0.015}
RATE_NOISE_SD = 0.012
RATE_BOUNDS = (0.06, 0.40)
# Some 助贷 loans are priced by total cost including fees, far above the usual caps.
FEE_LOADED_SHARE_OF_ZHUDAI = 0.03
FEE_LOADED_RATE_RANGE = (0.30, 0.40)
# Loans priced exactly at 24% or 36%: "exceeds" must not count them.
EXACT_24_SHARE = 0.005
EXACT_36_SHARE = 0.002

# Prepayment: monthly probability for a current loan before its last instalment month.
PREPAY_PROBABILITY = {"经营贷": 0.005, "消费贷": 0.008, "农户贷": 0.004}

# Monthly transition probabilities out of each delinquency bucket (rows sum to 1).
# 'cure' = back to C (dpd 0), 'stay' = same bucket, 'roll' = next bucket (from M7+: WO),
# 'restructure' = debt restructuring (status restructured, dpd 0, new 12-month schedule).
# M1 cure depends on the early-stage collection arm, see EARLY_ARMS.
DELINQUENT_TRANSITIONS = {
    "M2": {"cure": 0.25, "stay": 0.07, "roll": 0.68, "restructure": 0.0},
    "M3": {"cure": 0.15, "stay": 0.07, "roll": 0.78, "restructure": 0.0},
    "M4": {"cure": 0.07, "stay": 0.05, "roll": 0.80, "restructure": 0.08},
    "M5": {"cure": 0.05, "stay": 0.05, "roll": 0.82, "restructure": 0.08},
    "M6": {"cure": 0.03, "stay": 0.04, "roll": 0.85, "restructure": 0.08},
    "M7+": {"cure": 0.02, "stay": 0.13, "roll": 0.85, "restructure": 0.0},
}
M1_STAY = 0.05

# Early stage (M1): strategy assigned at random (50/50) at episode start; the cure
# probability (M1 -> C at the next month-end) differs by arm.
EARLY_ARMS = ("A_短信优先", "B_智能语音优先")
EARLY_ARM_CURE = {"A_短信优先": 0.50, "B_智能语音优先": 0.58}
# Middle stage (M2-M3): assigned when a loan first enters M2 in an episode, NOT at random.
MIDDLE_ARMS = ("C_人工电催", "D_协商分期")
MIDDLE_RULE_BALANCE = 20_000.0  # yuan, outstanding principal at M2 entry
MIDDLE_RULE_PROBABILITY = {"high": 0.80, "low": 0.25}  # P(D) for high-risk / other loans
# Late stage (M4+): assigned at first M4 entry, NOT at random.
LATE_ARMS = ("E_委外催收", "F_诉讼保全")
LATE_RULE_BALANCE = 50_000.0
LATE_RULE_PROBABILITY = {"high": 0.70, "low": 0.15}  # P(F)

# Restructured loans get a new 12-month 等额本息 schedule and a fixed re-default hazard
# (continuous-time, per month) regardless of grade and other multipliers.
RESTRUCTURE_TERM = 12
RESTRUCTURED_HAZARD = 0.10
# 先息后本 经营贷/农户贷 loans that are current at maturity are extended by 6 months with
# this probability; their C -> M1 hazard is multiplied afterwards.
EXTENSION_PROBABILITY = 0.20
EXTENSION_MONTHS = 6
EXTENDED_HAZARD = 1.50

# Recoveries after charge-off: in each of the 24 months after the write-off month, a
# recovery happens with this probability, of a uniform share of the charged-off amount.
RECOVERY_MONTHS = 24
RECOVERY_PROBABILITY = {"信用": 0.08, "保证": 0.12, "抵押": 0.20, "质押": 0.20, "联保": 0.12}
RECOVERY_SHARE_RANGE = (0.03, 0.12)

# Collection costs per action, yuan.
ACTION_COST = {
    "sms": 0.05, "ai_voice": 0.30, "manual_call": 2.50, "installment_plan": 5.00,
    "field_visit": 120.00, "letter": 8.00, "outsourced": 30.00, "legal": 800.00,
    "restructure": 50.00,
}
CONNECT_PROBABILITY = {"ai_voice": 0.45, "manual_call": 0.55, "field_visit": 0.70}

# Injected compliance breaches, per 1,000 loans (each at least the minimum).
NIGHT_CONTACTS_PER_1000 = 4.0
OVERFLOW_DAYS_PER_1000 = 1.0
THIRD_PARTY_CONTACTS_PER_1000 = 3.0
BREACH_MINIMUM = 3
NIGHT_AGENTS = ("WW03", "CA017")
OVERFLOW_AGENTS = ("CA017", "WW05", "CA021", "WW03")
THIRD_PARTY_AGENTS = ("WW03", "WW05")

# 1-year LPR (percent) by announcement month; months after the last entry reuse it.
LPR_1Y_PCT = {
    "2019-08": 4.25, "2019-09": 4.20, "2019-10": 4.20, "2019-11": 4.15, "2019-12": 4.15,
    "2020-01": 4.15, "2020-02": 4.05, "2020-03": 4.05, "2020-04": 3.85, "2020-05": 3.85,
    "2020-06": 3.85, "2020-07": 3.85, "2020-08": 3.85, "2020-09": 3.85, "2020-10": 3.85,
    "2020-11": 3.85, "2020-12": 3.85, "2021-01": 3.85, "2021-02": 3.85, "2021-03": 3.85,
    "2021-04": 3.85, "2021-05": 3.85, "2021-06": 3.85, "2021-07": 3.85, "2021-08": 3.85,
    "2021-09": 3.85, "2021-10": 3.85, "2021-11": 3.85, "2021-12": 3.80, "2022-01": 3.70,
    "2022-02": 3.70, "2022-03": 3.70, "2022-04": 3.70, "2022-05": 3.70, "2022-06": 3.70,
    "2022-07": 3.70, "2022-08": 3.65, "2022-09": 3.65, "2022-10": 3.65, "2022-11": 3.65,
    "2022-12": 3.65, "2023-01": 3.65, "2023-02": 3.65, "2023-03": 3.65, "2023-04": 3.65,
    "2023-05": 3.65, "2023-06": 3.55, "2023-07": 3.55, "2023-08": 3.45, "2023-09": 3.45,
    "2023-10": 3.45, "2023-11": 3.45, "2023-12": 3.45, "2024-01": 3.45, "2024-02": 3.45,
    "2024-03": 3.45, "2024-04": 3.45, "2024-05": 3.45, "2024-06": 3.45, "2024-07": 3.35,
    "2024-08": 3.35, "2024-09": 3.35, "2024-10": 3.10, "2024-11": 3.10, "2024-12": 3.10,
    "2025-01": 3.10, "2025-02": 3.10, "2025-03": 3.10, "2025-04": 3.10, "2025-05": 3.00,
    "2025-06": 3.00, "2025-07": 3.00, "2025-08": 3.00, "2025-09": 3.00, "2025-10": 3.00,
    "2025-11": 3.00, "2025-12": 3.00, "2026-01": 3.00, "2026-02": 3.00, "2026-03": 3.00,
    "2026-04": 3.00, "2026-05": 3.00, "2026-06": 3.00, "2026-07": 3.00, "2026-08": 3.00,
}


def lpr_1y_pct(month: str) -> float:
    """Return the 1-year LPR (percent) announced in ``month`` ('YYYY-MM').

    Months after the last known announcement reuse the last value. Months before the
    2019-08 reform raise ValueError because no LPR exists for them.
    """
    if month in LPR_1Y_PCT:
        return LPR_1Y_PCT[month]
    last = max(LPR_1Y_PCT)
    if month > last:
        return LPR_1Y_PCT[last]
    raise ValueError(f"no 1-year LPR before 2019-08; got origination month {month}")


def mob_hazard_shape(mob):
    """Return the baseline hazard shape for months on book (numpy array in, array out)."""
    import numpy as np

    mob = np.asarray(mob)
    shape = np.where(mob >= 13, MOB_HAZARD_SHAPE_13_PLUS, MOB_HAZARD_SHAPE_7_12)
    for month, value in MOB_HAZARD_SHAPE.items():
        shape = np.where(mob == month, value, shape)
    return shape
