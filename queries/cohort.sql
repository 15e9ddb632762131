-- name: cohort_selection
-- Loans matching the shared filters and the download filters, one row per loan, with
-- their state at the as-of month-end $as_of. Loan state comes from loan_facts, month_facts
-- and loan_history_facts, joined on the integer loan_key; the strategy and attribute
-- filters read collection_actions and loan_attributes. Download filters (a null value
-- means no filter): $cities VARCHAR[];
-- $bucket_codes INTEGER[] (state codes at $as_of as in analysis/buckets.py: 0 = C,
-- 1..n = M1..Mn for the n upper bounds $bucket_bounds, n+1 = M(n+1)+, n+2 = PAID,
-- n+3 = WO); $ever_dpd INTEGER (dpd above it at any month-end up to $as_of, or charged off
-- by then); $strategies VARCHAR[] (at least one collection action up to $as_of under one
-- of these strategies); $attribute_names and $attribute_values (VARCHAR[] of equal
-- length, pairs name = value; values of one name are alternatives, different names must
-- all match). $bucket_labels VARCHAR[] are the labels of the state codes, in code order.
-- Columns:
--   loan_key                 INTEGER        loan_facts key
--   loan_id, borrower_id, origination_date, principal, term_months, product, channel,
--   province, city, county, region_code, grade
--                                           as stored in loans (borrower_id is the keyed
--                                           hash; raw personal data is never stored)
--   vintage                  DATE           first day of the origination month
--   as_of_date               DATE           $as_of
--   mob                      INTEGER        months on book at $as_of (origination month = 0)
--   status_as_of             VARCHAR        status of the latest snapshot up to $as_of
--   dpd_as_of                INTEGER        dpd at $as_of; null without a snapshot at $as_of
--   bucket_as_of             VARCHAR        label of the state code at $as_of; null when the
--                                           loan has no snapshot at $as_of and did not close
--   outstanding_principal_as_of DECIMAL     yuan at $as_of; 0 once paid off or charged off
--   max_dpd                  INTEGER        highest dpd at any month-end up to $as_of
--   ever_charged_off         BOOLEAN        charged off at any month-end up to $as_of
--   months_observed          BIGINT         month-end snapshots up to $as_of
with
chosen_loans as (
    select
        *,
        -- True when the loan has month-end rows after $as_of, so loan_history_facts and
        -- last_status (over all rows) do not describe it at $as_of.
        last_month > year($as_of::date) * 12 + month($as_of::date) - 1 as has_rows_after_as_of
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where $cities is null
       or list_contains($cities::varchar[], city)
),

-- Aggregates over the rows up to $as_of, for the loans with rows after $as_of only.
partial_history as (
    select
        loan_key,
        max(dpd) as max_dpd,
        bool_or(status = 'charged_off') as ever_charged_off,
        count(*) as months_observed,
        arg_max(status, month_number) as last_status
    from month_facts
    where snapshot_date <= $as_of::date
      and loan_key in (
          select loan_key
          from chosen_loans
          where has_rows_after_as_of
      )
    group by
        loan_key
),

as_of_rows as (
    select
        loan_key,
        dpd as dpd_as_of,
        outstanding_principal as outstanding_principal_as_of
    from month_facts
    where snapshot_date = $as_of::date
),

-- Each loan's history up to $as_of: from loan_history_facts when all its rows lie on or
-- before $as_of, else from partial_history.
history as (
    select
        cl.*,
        case when cl.has_rows_after_as_of then ph.last_status else cl.last_status end as status_as_of,
        case when cl.has_rows_after_as_of then ph.max_dpd else hf.max_dpd end as history_max_dpd,
        coalesce(
            case when cl.has_rows_after_as_of then ph.ever_charged_off else hf.ever_charged_off end,
            false
        ) as history_ever_charged_off,
        coalesce(
            case when cl.has_rows_after_as_of then ph.months_observed else hf.months_observed end,
            0
        ) as history_months_observed
    from chosen_loans as cl
    left join loan_history_facts as hf
        on hf.loan_key = cl.loan_key
    left join partial_history as ph
        on ph.loan_key = cl.loan_key
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
        h.loan_key,
        h.loan_id,
        h.borrower_id,
        h.origination_date,
        h.vintage,
        h.principal,
        h.term_months,
        h.product,
        h.channel,
        h.province,
        h.city,
        h.county,
        h.region_code,
        h.grade,
        $as_of::date as as_of_date,
        (year($as_of::date) * 12 + month($as_of::date) - 1 - h.origination_month)::integer as mob,
        h.status_as_of,
        a.dpd_as_of,
        case
            when h.status_as_of in ('paid_off', 'charged_off') then 0.00
            else a.outstanding_principal_as_of
        end::decimal(18, 2) as outstanding_principal_as_of,
        case
            when h.status_as_of = 'paid_off' then len($bucket_bounds::integer[]) + 2
            when h.status_as_of = 'charged_off' then len($bucket_bounds::integer[]) + 3
            when a.dpd_as_of is null then null
            when a.dpd_as_of <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < a.dpd_as_of))
        end as bucket_code_as_of,
        h.history_max_dpd as max_dpd,
        h.history_ever_charged_off as ever_charged_off,
        h.history_months_observed as months_observed
    from history as h
    left join as_of_rows as a
        on a.loan_key = h.loan_key
),

final as (
    select
        * exclude (bucket_code_as_of),
        list_extract($bucket_labels::varchar[], bucket_code_as_of + 1) as bucket_as_of
    from loan_state
    where ($bucket_codes is null or list_contains($bucket_codes::integer[], bucket_code_as_of))
      and ($ever_dpd is null or max_dpd > $ever_dpd::integer or ever_charged_off)
      and ($strategies is null or loan_id in (select loan_id from strategy_loans))
      and ($attribute_names is null or loan_id in (select loan_id from attribute_loans))
)

select
    *
from final;


-- name: cohort_loan_details
-- Columns of the loans table that loan_facts lacks, for the loans in the relation
-- cohort_selection (the result of the query cohort_selection, which the caller defines
-- as a CTE). One row per loan. Columns: loan_key INTEGER, then annual_rate DOUBLE
-- (fraction), repayment_method, branch VARCHAR, score DOUBLE, guarantee_type, group_id
-- VARCHAR, is_first_loan BOOLEAN, borrower_age INTEGER (years), borrower_gender VARCHAR,
-- all as stored in loans.
select
    s.loan_key,
    l.annual_rate,
    l.repayment_method,
    l.branch,
    l.score,
    l.guarantee_type,
    l.group_id,
    l.is_first_loan,
    l.borrower_age,
    l.borrower_gender
from cohort_selection as s
inner join loans as l
    on l.loan_id = s.loan_id;


-- name: cohort_loan_months
-- Month-end snapshots up to $as_of of the loans in the relation cohort_selection (see
-- cohort_loan_details), from month_facts. One row per (loan, month-end). Columns:
--   loan_key                 INTEGER
--   snapshot_date            DATE           month-end
--   mob                      INTEGER        months on book at snapshot_date
--   dpd                      INTEGER        days past due
--   bucket                   VARCHAR        label ($bucket_labels) of the state code, codes
--                                           as in cohort_selection
--   outstanding_principal, overdue_principal, principal_paid, interest_paid,
--   charged_off_amount, recovered_amount
--                            DECIMAL(18,2)  yuan
--   status                   VARCHAR        active / paid_off / charged_off / restructured / extended
select
    mf.loan_key,
    mf.snapshot_date,
    mf.mob,
    mf.dpd,
    list_extract(
        $bucket_labels::varchar[],
        case
            when mf.status = 'paid_off' then len($bucket_bounds::integer[]) + 2
            when mf.status = 'charged_off' then len($bucket_bounds::integer[]) + 3
            when mf.dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < mf.dpd))
        end + 1
    ) as bucket,
    mf.outstanding_principal,
    mf.overdue_principal,
    mf.status,
    mf.principal_paid,
    mf.interest_paid,
    mf.charged_off_amount,
    mf.recovered_amount
from month_facts as mf
where mf.snapshot_date <= $as_of::date
  and mf.loan_key in (select loan_key from cohort_selection);


-- name: cohort_month_sources
-- Columns of loan_months that month_facts lacks, for the month-end rows up to $as_of of
-- the loans in the relation cohort_selection (see cohort_loan_details). One row per
-- (loan, month-end). Columns: loan_id VARCHAR, snapshot_date DATE, overdue_interest
-- DECIMAL(18,2) yuan, is_derived BOOLEAN (built from installments).
select
    lm.loan_id,
    lm.snapshot_date,
    lm.overdue_interest,
    lm.is_derived
from loan_months as lm
where lm.snapshot_date <= $as_of::date
  and lm.loan_id in (select loan_id from cohort_selection);


-- name: cohort_filter_options
-- Distinct values offered by the download filters. One row per (field, value). Columns:
--   field VARCHAR: product / channel / province / grade / city / strategy /
--                  attribute:<name> (an extra attribute of loan_attributes)
--   value VARCHAR: a value; null for an attribute with more than $max_values distinct
--                  values, which the page offers as free text instead of a list
with
-- One grouped scan per column of loan_facts, which DuckDB runs much faster than a distinct
-- over an unnested list of the five columns of loans.
loan_values as (
    select
        'product' as field,
        product as value
    from loan_facts
    group by
        product
    union all
    select
        'channel' as field,
        channel as value
    from loan_facts
    group by
        channel
    union all
    select
        'province' as field,
        province as value
    from loan_facts
    group by
        province
    union all
    select
        'grade' as field,
        grade as value
    from loan_facts
    group by
        grade
    union all
    select
        'city' as field,
        city as value
    from loan_facts
    group by
        city
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
