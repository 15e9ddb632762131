-- name: ingest_status_months
-- Returns one row: first_month DATE and last_month DATE (month-ends in loan_months),
-- month_count BIGINT (distinct month-ends), derived_rows BIGINT (rows built from installments).
select
    min(snapshot_date) as first_month,
    max(snapshot_date) as last_month,
    count(distinct snapshot_date) as month_count,
    count(*) filter (where is_derived) as derived_rows
from loan_months;

-- name: ingest_status_loads
-- Returns the newest $limit load_log rows: load_id, started_at TIMESTAMP, table_name,
-- file_name, mode, result, rows_read, rows_loaded, rows_rejected (row counts).
select
    load_id,
    started_at,
    table_name,
    file_name,
    mode,
    result,
    rows_read,
    rows_loaded,
    rows_rejected
from load_log
order by started_at desc, load_id desc
limit $limit;
