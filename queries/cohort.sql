-- name: cohort_loans
-- Loans matching the shared filters and the download filters, one row per loan, with
-- their state at the as-of month-end $as_of. Download filters (a null value means no
-- filter): $cities VARCHAR[]; $bucket_codes INTEGER[] (state codes at $as_of as in
-- analysis/buckets.py: 0 = C, 1..n = M1..Mn for the n upper bounds $bucket_bounds,
-- n+1 = M(n+1)+, n+2 = PAID, n+3 = WO); $ever_dpd INTEGER (dpd above it at any
-- month-end up to $as_of, or charged off by then); $strategies VARCHAR[] (at least one collection action up to
-- $as_of under one of these strategies); $attribute_names and $attribute_values
-- (VARCHAR[] of equal length, pairs name = value; values of one name are alternatives,
-- different names must all match). Columns:
--   loan_id ... borrower_gender   the stored loans columns except load_id (borrower_id is
--                                 the keyed hash; raw personal data is never stored)
--   vintage                  DATE           first day of the origination month
--   as_of_date               DATE           $as_of
--   mob                      INTEGER        months on book at $as_of (origination month = 0)
--   status_as_of             VARCHAR        status of the latest snapshot up to $as_of
--   dpd_as_of                INTEGER        dpd at $as_of; null without a snapshot at $as_of
--   outstanding_principal_as_of DECIMAL     yuan at $as_of; 0 once paid off or charged off
--   bucket_code_as_of        INTEGER        state code at $as_of; null when the loan has no
--                                           snapshot at $as_of and did not close before
--   max_dpd                  INTEGER        highest dpd at any month-end up to $as_of
--   ever_charged_off         BOOLEAN        charged off at any month-end up to $as_of
--   months_observed          BIGINT         month-end snapshots up to $as_of
with
chosen_loans as (
    select
        *
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where $cities is null
       or list_contains($cities::varchar[], city)
),

snapshots as (
    select
        lm.loan_id,
        lm.snapshot_date,
        lm.dpd,
        lm.outstanding_principal,
        lm.status
    from loan_months as lm
    inner join chosen_loans as cl
        on cl.loan_id = lm.loan_id
    where lm.snapshot_date <= $as_of::date
),

history as (
    select
        loan_id,
        max(dpd) as max_dpd,
        bool_or(status = 'charged_off') as ever_charged_off,
        count(*) as months_observed,
        arg_max(status, snapshot_date) as last_status,
        max(snapshot_date) as last_snapshot_date
    from snapshots
    group by loan_id
),

as_of_snapshot as (
    select
        loan_id,
        dpd,
        outstanding_principal
    from snapshots
    where snapshot_date = $as_of::date
),

strategy_loans as (
    select distinct
        loan_id
    from collection_actions
    where list_contains($strategies::varchar[], strategy)
      and action_time < $as_of::date + interval 1 day
),

attribute_pairs as (
    select
        unnest($attribute_names::varchar[]) as attribute,
        unnest($attribute_values::varchar[]) as value
),

attribute_loans as (
    select
        la.loan_id
    from loan_attributes as la
    inner join attribute_pairs as ap
        on ap.attribute = la.attribute
       and ap.value = la.value
    group by la.loan_id
    having count(distinct la.attribute) = len(list_distinct($attribute_names::varchar[]))
),

loan_state as (
    select
        cl.* exclude (load_id),
        date_trunc('month', cl.origination_date)::date as vintage,
        $as_of::date as as_of_date,
        date_diff('month', date_trunc('month', cl.origination_date), $as_of::date)::integer as mob,
        h.last_status as status_as_of,
        s.dpd as dpd_as_of,
        case
            when h.last_status in ('paid_off', 'charged_off') then 0.00
            else s.outstanding_principal
        end::decimal(18, 2) as outstanding_principal_as_of,
        case
            when h.last_status = 'paid_off' then len($bucket_bounds::integer[]) + 2
            when h.last_status = 'charged_off' then len($bucket_bounds::integer[]) + 3
            when s.dpd is null then null
            when s.dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < s.dpd))
        end as bucket_code_as_of,
        h.max_dpd,
        coalesce(h.ever_charged_off, false) as ever_charged_off,
        coalesce(h.months_observed, 0) as months_observed
    from chosen_loans as cl
    left join history as h
        on h.loan_id = cl.loan_id
    left join as_of_snapshot as s
        on s.loan_id = cl.loan_id
),

final as (
    select
        *
    from loan_state
    where ($bucket_codes is null or list_contains($bucket_codes::integer[], bucket_code_as_of))
      and ($ever_dpd is null or max_dpd > $ever_dpd::integer or ever_charged_off)
      and ($strategies is null or loan_id in (select loan_id from strategy_loans))
      and ($attribute_names is null or loan_id in (select loan_id from attribute_loans))
)

select
    *
from final
order by
    loan_id;


-- name: cohort_loan_months
-- Month-end snapshots up to $as_of of the loans in the relation cohort_selection (one
-- column loan_id), which the caller registers from the result of cohort_loans. One row
-- per (loan, month-end). Columns:
--   loan_id                  VARCHAR
--   snapshot_date            DATE           month-end
--   mob                      INTEGER        months on book at snapshot_date
--   dpd                      INTEGER        days past due
--   bucket_code              INTEGER        state code as in cohort_loans
--   outstanding_principal, overdue_principal, overdue_interest,
--   principal_paid, interest_paid, charged_off_amount, recovered_amount
--                            DECIMAL(18,2)  yuan
--   status                   VARCHAR        active / paid_off / charged_off / restructured / extended
--   is_derived               BOOLEAN        built from installments
with
selection as (
    select
        loan_id
    from cohort_selection
),

snapshots as (
    select
        lm.*,
        l.origination_date
    from loan_months as lm
    inner join selection as s
        on s.loan_id = lm.loan_id
    inner join loans as l
        on l.loan_id = lm.loan_id
    where lm.snapshot_date <= $as_of::date
),

final as (
    select
        loan_id,
        snapshot_date,
        date_diff('month', date_trunc('month', origination_date), snapshot_date)::integer as mob,
        dpd,
        case
            when status = 'paid_off' then len($bucket_bounds::integer[]) + 2
            when status = 'charged_off' then len($bucket_bounds::integer[]) + 3
            when dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < dpd))
        end as bucket_code,
        outstanding_principal,
        overdue_principal,
        overdue_interest,
        status,
        principal_paid,
        interest_paid,
        charged_off_amount,
        recovered_amount,
        is_derived
    from snapshots
)

select
    *
from final
order by
    loan_id,
    snapshot_date;


-- name: cohort_attributes
-- Extra attributes (loan_attributes) of the loans in cohort_selection, restricted to the
-- attribute names in $attribute_columns (VARCHAR[]). One row per (loan, attribute). Columns:
--   loan_id VARCHAR; attribute VARCHAR (header as written in the source file); value VARCHAR
with
final as (
    select
        la.loan_id,
        la.attribute,
        la.value
    from loan_attributes as la
    inner join cohort_selection as s
        on s.loan_id = la.loan_id
    where list_contains($attribute_columns::varchar[], la.attribute)
)

select
    *
from final;


-- name: cohort_filter_options
-- Distinct values offered by the download filters. One row per (field, value). Columns:
--   field VARCHAR: product / channel / province / grade / city / strategy /
--                  attribute:<name> (an extra attribute of loan_attributes)
--   value VARCHAR: a value; null for an attribute with more than $max_values distinct
--                  values, which the page offers as free text instead of a list
with
loan_values as (
    select distinct
        unnest(['product', 'channel', 'province', 'grade', 'city']) as field,
        unnest([product, channel, province, grade, city]) as value
    from loans
),

strategies as (
    select distinct
        'strategy' as field,
        strategy as value
    from collection_actions
),

attribute_sizes as (
    select
        attribute,
        count(distinct value) as value_count
    from loan_attributes
    group by attribute
),

attributes as (
    select distinct
        'attribute:' || la.attribute as field,
        case when s.value_count > $max_values then null else la.value end as value
    from loan_attributes as la
    inner join attribute_sizes as s
        on s.attribute = la.attribute
),

final as (
    select field, value from loan_values where value is not null
    union all
    select field, value from strategies where value is not null
    union all
    select field, value from attributes
)

select
    *
from final
order by
    field,
    value;


-- name: download_audit_insert
-- Appends one row to download_audit (a statement; returns nothing).
insert into download_audit (
    downloaded_at,
    user_name,
    filters,
    grain,
    columns,
    file_format,
    row_count,
    file_sha256
)
values (
    $downloaded_at,
    $user_name,
    $filters,
    $grain,
    $columns,
    $file_format,
    $row_count,
    $file_sha256
);


-- name: download_audit_list
-- Recorded downloads, newest first, at most $limit rows. Columns as in download_audit:
--   downloaded_at TIMESTAMP (UTC), user_name, filters (JSON), grain, columns, file_format,
--   row_count BIGINT, file_sha256 VARCHAR
select
    downloaded_at,
    user_name,
    filters,
    grain,
    columns,
    file_format,
    row_count,
    file_sha256
from download_audit
order by
    downloaded_at desc
limit $limit;
