"""``python -m ingest status``: row counts, months covered and the last loads."""

from __future__ import annotations

import messages
import queries
from queries import db

TABLE_NAMES = ("loans", "loan_attributes", "loan_months", "installments", "collection_actions",
               "rejects", "load_log")


def status_text(db_path=None, lang: str = "zh") -> str:
    """Return a plain-text status report of the database at ``db_path``."""
    path = db.resolve_db_path(db_path)
    con = db.connect(path, read_only=True)
    try:
        lines = [messages.t("ingest.status.database", lang, path=str(path))]
        for table in TABLE_NAMES:
            count = con.execute(f"select count(*) from {table}").fetchone()[0]
            lines.append(messages.t("ingest.status.table_rows", lang, table=table, rows=f"{count:,}"))
        months = queries.run(con, "ingest_status_months")
        row = months.iloc[0]
        if row["month_count"]:
            lines.append(messages.t(
                "ingest.status.months", lang, first=row["first_month"].strftime("%Y-%m"),
                last=row["last_month"].strftime("%Y-%m"), count=int(row["month_count"]),
                derived=int(row["derived_rows"]),
            ))
        loads = queries.run(con, "ingest_status_loads", {"limit": 10})
        if not loads.empty:
            lines.append(messages.t("ingest.status.last_loads", lang))
            for load in loads.itertuples():
                lines.append(
                    f"  #{load.load_id} {load.started_at:%Y-%m-%d %H:%M} {load.table_name} {load.file_name} "
                    f"{load.mode} {load.result} read={load.rows_read} loaded={load.rows_loaded} "
                    f"rejected={load.rows_rejected}"
                )
        return "\n".join(lines)
    finally:
        con.close()
