"""The loan-tape contract: target columns per table, their kinds, and header aliases.

Header matching ignores case, spaces, underscores, hyphens, full-width/half-width
differences and a trailing unit in brackets (``放款金额(元)``, ``贷款余额（万元）``). A ``万元``
unit multiplies the column's amounts by 10,000.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

TABLES = ("loans", "loan_months", "installments", "collection_actions")


@dataclass(frozen=True)
class Column:
    """One contract column: its name, value kind, whether it is required, and header aliases.

    ``kind`` decides the parser: text, id, date, timestamp, amount, integer, rate, double,
    boolean, status, channel, contact_target, outcome, gender, province, city, county,
    region_code, hash (pseudonymised with HMAC).
    """

    name: str
    kind: str
    required: bool = False
    aliases: tuple[str, ...] = field(default_factory=tuple)


_LOAN_ID_ALIASES = ("借据号", "借据编号", "借据id", "贷款编号", "贷款账号", "合同号", "合同编号",
                    "listingid", "loanid", "loan_no", "借款编号", "标的编号")

CONTRACT: dict[str, tuple[Column, ...]] = {
    "loans": (
        Column("loan_id", "id", True, _LOAN_ID_ALIASES),
        Column("borrower_id", "hash", False, ("客户号", "客户编号", "客户id", "借款人编号", "借款人id",
                                              "customerid", "borrowerid", "userid", "用户id")),
        Column("origination_date", "date", True, ("放款日期", "发放日期", "借款成功日期", "放款时间",
                                                  "起息日", "起息日期", "loandate", "issuedate")),
        Column("principal", "amount", True, ("放款金额", "借款金额", "贷款金额", "合同金额", "发放金额",
                                             "放款本金", "amount", "loanamount")),
        Column("term_months", "integer", False, ("期数", "借款期限", "贷款期限", "期限", "总期数", "term")),
        Column("annual_rate", "rate", False, ("年利率", "借款利率", "执行利率", "年化利率", "利率",
                                              "interestrate", "rate")),
        Column("repayment_method", "text", False, ("还款方式", "repaymenttype")),
        Column("product", "text", False, ("产品", "产品名称", "产品类型", "借款类型", "产品代码")),
        Column("channel", "text", False, ("渠道", "获客渠道", "进件渠道", "渠道名称")),
        Column("branch", "text", False, ("网点", "机构", "分支机构", "营业网点", "所属机构")),
        Column("province", "province", False, ("省份", "所属省份", "省", "省名称")),
        Column("city", "city", False, ("城市", "地市", "市", "所属城市")),
        Column("county", "county", False, ("区县", "县区", "区/县", "所属区县")),
        Column("region_code", "region_code", False, ("行政区划代码", "地区编码", "区划代码", "地区代码")),
        Column("grade", "text", False, ("初始评级", "风险等级", "评级", "信用等级", "客户等级")),
        Column("score", "double", False, ("评分", "信用评分", "风险评分", "creditscore")),
        Column("guarantee_type", "text", False, ("担保方式", "担保类型")),
        Column("group_id", "text", False, ("联保小组", "小组编号", "联保小组编号")),
        Column("is_first_loan", "boolean", False, ("是否首贷", "是否首标", "首贷标识", "firstloan")),
        Column("borrower_age", "integer", False, ("年龄", "借款人年龄", "age")),
        Column("borrower_gender", "gender", False, ("性别", "借款人性别", "gender", "sex")),
    ),
    "loan_months": (
        Column("loan_id", "id", True, _LOAN_ID_ALIASES),
        Column("snapshot_date", "date", True, ("统计日期", "数据日期", "快照日期", "报表日期", "统计月份",
                                               "数据月份", "月份", "snapshotdate", "asofdate")),
        Column("dpd", "integer", True, ("逾期天数", "当前逾期天数", "daysPastDue", "dayspastdue")),
        Column("outstanding_principal", "amount", True, ("贷款余额", "剩余本金", "在贷余额", "本金余额",
                                                         "outstandingprincipal", "balance")),
        Column("overdue_principal", "amount", False, ("逾期本金",)),
        Column("overdue_interest", "amount", False, ("逾期利息",)),
        Column("status", "status", False, ("贷款状态", "状态", "借据状态", "账户状态")),
        Column("principal_paid", "amount", False, ("当月实还本金", "本月实还本金")),
        Column("interest_paid", "amount", False, ("当月实还利息", "本月实还利息")),
        Column("charged_off_amount", "amount", False, ("核销金额", "当月核销金额")),
        Column("recovered_amount", "amount", False, ("核销后回收", "核销后回收金额", "回收金额")),
    ),
    "installments": (
        Column("loan_id", "id", True, _LOAN_ID_ALIASES),
        Column("installment_no", "integer", True, ("期数", "期次", "期号", "还款期数", "当前期数")),
        Column("due_date", "date", True, ("应还日期", "到期日期", "到期日", "应还款日期", "duedate")),
        Column("principal_due", "amount", True, ("应还本金",)),
        Column("interest_due", "amount", False, ("应还利息",)),
        Column("paid_date", "date", False, ("还款日期", "实还日期", "实际还款日期", "paiddate")),
        Column("principal_paid", "amount", False, ("实还本金", "已还本金")),
        Column("interest_paid", "amount", False, ("实还利息", "已还利息")),
        Column("as_of_date", "date", False, ("recorddate", "数据日期", "提取日期", "数据提取日期")),
    ),
    "collection_actions": (
        Column("loan_id", "id", True, _LOAN_ID_ALIASES),
        Column("action_time", "timestamp", True, ("催收时间", "联系时间", "催记时间", "actiontime")),
        Column("channel", "channel", True, ("催收方式", "催收渠道", "联系方式")),
        Column("strategy", "text", False, ("催收策略", "策略", "方案")),
        Column("dpd_at_action", "integer", False, ("逾期天数", "催收时逾期天数")),
        Column("contact_target", "contact_target", False, ("联系对象", "催收对象")),
        Column("connected", "boolean", False, ("是否接通", "接通")),
        Column("outcome", "outcome", False, ("催收结果", "结果")),
        Column("amount_collected", "amount", False, ("回款金额", "催回金额")),
        Column("cost", "amount", False, ("成本", "催收成本", "费用")),
        Column("agent_id", "text", False, ("催收员", "催收机构", "催收员编号", "坐席")),
        Column("team", "text", False, ("催收组", "催收团队", "小组")),
    ),
}

# Columns that are summed into the load log's amount_totals and checked against the file.
AMOUNT_KINDS = ("amount",)

# Value maps for coded columns (keys compared after lowercasing and trimming).
STATUS_VALUES = {
    "active": "active", "正常": "active", "逾期": "active", "正常还款中": "active", "还款中": "active",
    "关注": "active", "overdue": "active", "current": "active",
    "paid_off": "paid_off", "结清": "paid_off", "已结清": "paid_off", "正常结清": "paid_off",
    "提前结清": "paid_off", "逾期结清": "paid_off", "paidoff": "paid_off", "paid off": "paid_off",
    "closed": "paid_off",
    "charged_off": "charged_off", "核销": "charged_off", "已核销": "charged_off",
    "chargedoff": "charged_off", "charged off": "charged_off", "written_off": "charged_off",
    "restructured": "restructured", "重组": "restructured", "已重组": "restructured",
    "extended": "extended", "展期": "extended", "已展期": "extended",
}
CHANNEL_VALUES = {
    "sms": "sms", "短信": "sms", "短信催收": "sms",
    "ai_voice": "ai_voice", "智能语音": "ai_voice", "ai外呼": "ai_voice", "机器人外呼": "ai_voice",
    "语音机器人": "ai_voice", "ivr": "ai_voice",
    "manual_call": "manual_call", "人工电话": "manual_call", "电催": "manual_call", "电话催收": "manual_call",
    "人工外呼": "manual_call",
    "field_visit": "field_visit", "外访": "field_visit", "上门": "field_visit", "上门催收": "field_visit",
    "letter": "letter", "信函": "letter", "律师函": "letter",
    "outsourced": "outsourced", "委外": "outsourced", "委外催收": "outsourced",
    "legal": "legal", "诉讼": "legal", "法务": "legal", "仲裁": "legal",
    "installment_plan": "installment_plan", "分期": "installment_plan", "协商还款": "installment_plan",
    "分期还款": "installment_plan",
    "extension": "extension", "展期": "extension",
    "restructure": "restructure", "债务重组": "restructure", "重组": "restructure",
}
CONTACT_TARGET_VALUES = {
    "borrower": "borrower", "本人": "borrower", "借款人": "borrower",
    "emergency_contact": "emergency_contact", "紧急联系人": "emergency_contact", "联系人": "emergency_contact",
    "third_party": "third_party", "第三方": "third_party", "其他": "third_party",
}
OUTCOME_VALUES = {
    "no_answer": "no_answer", "无人接听": "no_answer", "未接通": "no_answer", "未接听": "no_answer",
    "refused": "refused", "拒绝还款": "refused", "拒付": "refused", "拒绝": "refused",
    "promise_to_pay": "promise_to_pay", "承诺还款": "promise_to_pay", "ptp": "promise_to_pay",
    "partial_payment": "partial_payment", "部分还款": "partial_payment",
    "paid": "paid", "已还款": "paid", "全额还款": "paid", "还清": "paid",
    "wrong_number": "wrong_number", "错号": "wrong_number", "空号": "wrong_number", "号码错误": "wrong_number",
}
GENDER_VALUES = {"m": "M", "male": "M", "男": "M", "1": "M", "f": "F", "female": "F", "女": "F", "2": "F"}
BOOLEAN_VALUES = {
    "是": True, "否": False, "y": True, "n": False, "yes": True, "no": False, "1": True, "0": False,
    "true": True, "false": False, "t": True, "f": False, "首标": True, "非首标": False,
    "已接通": True, "未接通": False, "接通": True,
}
CODED_VALUES = {
    "status": STATUS_VALUES,
    "channel": CHANNEL_VALUES,
    "contact_target": CONTACT_TARGET_VALUES,
    "outcome": OUTCOME_VALUES,
    "gender": GENDER_VALUES,
}

_UNIT = re.compile(r"[(\[]([^()\[\]]*)[)\]]\s*$")


def normalise_header(header: str) -> tuple[str, str | None]:
    """Return (matching key, unit) for a source header.

    The key is NFKC-folded (full-width to half-width), lowercased, without spaces,
    underscores, hyphens and a trailing bracketed unit; the unit is the bracket text.
    """
    text = unicodedata.normalize("NFKC", str(header)).strip().lstrip("\ufeff")
    unit = None
    match = _UNIT.search(text)
    if match and match.start() > 0:
        unit = match.group(1).strip().lower()
        text = text[: match.start()]
    key = re.sub(r"[\s_\-]+", "", text.lower())
    return key, unit


def unit_multiplier(unit: str | None) -> int:
    """Return the amount multiplier a header unit implies: 10,000 for 万元 / 万, else 1."""
    if unit and unit.replace(" ", "") in ("万元", "万", "万元人民币"):
        return 10_000
    return 1


def alias_index(table: str) -> dict[str, str]:
    """Return normalised alias -> contract column for one table (column names included)."""
    index: dict[str, str] = {}
    for column in CONTRACT[table]:
        for alias in (column.name, *column.aliases):
            index.setdefault(normalise_header(alias)[0], column.name)
    return index


def column_spec(table: str, name: str) -> Column:
    """Return the contract column ``name`` of ``table``."""
    for column in CONTRACT[table]:
        if column.name == name:
            return column
    raise KeyError(f"table {table!r} has no contract column {name!r}")


def required_columns(table: str) -> list[str]:
    """Return the names of the required contract columns of ``table``."""
    return [column.name for column in CONTRACT[table] if column.required]
