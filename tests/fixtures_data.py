"""A small hand-made portfolio for the data-page tests (import, download, cohort CLI).

Rows are inserted with plain SQL, so these tests do not depend on the import code. Every
expected count in the tests is worked out by hand from the rows below.
"""

from __future__ import annotations

from pathlib import Path

from ingest import facts
from queries import db

# 18-digit id and a code with leading zeros: both must survive every download format.
LONG_LOAN_ID = "900000000000001234"
LEADING_ZERO_CODE = "000123"

# loan_id, origination_date, principal, product, channel, province, city, grade
LOANS = [
    (LONG_LOAN_ID, "2026-06-15", 10000.00, "消费贷", "线上", "广东省", "深圳市", "A"),
    ("L0002", "2026-06-20", 5000.00, "消费贷", "线下", "广东省", "广州市", "B"),
    ("L0003", "2026-07-03", 8000.00, "经营贷", "线上", "浙江省", "杭州市", "A"),
    ("L0004", "2026-07-10", 2000.00, "经营贷", "线下", "浙江省", "杭州市", "C"),
    ("L0005", "2026-08-01", 3000.00, "消费贷", "线上", "四川省", "成都市", "B"),
]

# loan_id, snapshot_date, dpd, outstanding_principal, status
LOAN_MONTHS = [
    (LONG_LOAN_ID, "2026-07-31", 0, 9000.00, "active"),
    (LONG_LOAN_ID, "2026-08-31", 15, 8500.00, "active"),
    (LONG_LOAN_ID, "2026-09-30", 45, 8500.00, "active"),
    ("L0002", "2026-07-31", 0, 4500.00, "active"),
    ("L0002", "2026-08-31", 0, 0.00, "paid_off"),
    ("L0003", "2026-07-31", 0, 8000.00, "active"),
    ("L0003", "2026-08-31", 0, 7500.00, "active"),
    ("L0003", "2026-09-30", 0, 7000.00, "active"),
    ("L0004", "2026-07-31", 0, 2000.00, "active"),
    ("L0004", "2026-08-31", 40, 2000.00, "active"),
    ("L0004", "2026-09-30", 70, 0.00, "charged_off"),
    ("L0005", "2026-08-31", 0, 3000.00, "active"),
    ("L0005", "2026-09-30", 5, 2900.00, "active"),
]

# loan_id, attribute, value
ATTRIBUTES = [
    (LONG_LOAN_ID, "网点代码", LEADING_ZERO_CODE),
    ("L0002", "网点代码", "000456"),
    ("L0003", "网点代码", LEADING_ZERO_CODE),
    (LONG_LOAN_ID, "客户类型", "新客"),
    ("L0003", "客户类型", "老客"),
    ("L0005", "客户类型", "新客"),
]

# action_id, loan_id, action_time, channel, strategy
ACTIONS = [
    (1, LONG_LOAN_ID, "2026-08-20 10:00:00", "sms", "champion"),
    (2, "L0004", "2026-08-21 11:00:00", "manual_call", "challenger"),
    (3, "L0005", "2026-10-02 09:00:00", "sms", "challenger"),  # after the as-of month
]

AS_OF = "2026-09-30"


def build_portfolio(path: Path) -> Path:
    """Create a database at ``path`` holding the rows above, as one load; return ``path``."""
    con = db.connect(path)
    try:
        con.execute(
            "insert into load_log (load_id, table_name, file_name, file_sha256, mode, "
            "started_at, finished_at, rows_read, rows_loaded, result) values "
            "(1, 'loans', 'loans.csv', 'x', 'strict', now(), now(), 5, 5, 'loaded')"
        )
        con.executemany(
            "insert into loans (loan_id, origination_date, principal, product, channel, "
            "province, city, grade, load_id) values (?, ?, ?, ?, ?, ?, ?, ?, 1)",
            LOANS,
        )
        con.executemany(
            "insert into loan_months (loan_id, snapshot_date, dpd, outstanding_principal, "
            "status, load_id) values (?, ?, ?, ?, ?, 1)",
            LOAN_MONTHS,
        )
        con.executemany("insert into loan_attributes values (?, ?, ?, 1)", ATTRIBUTES)
        con.executemany(
            "insert into collection_actions (action_id, loan_id, action_time, channel, strategy, "
            "load_id) values (?, ?, ?, ?, ?, 1)",
            ACTIONS,
        )
        # Rows inserted by hand bypass the import, which would rebuild the fact tables.
        facts.rebuild(con)
    finally:
        con.close()
    return path
