-- name: rollrate_transitions
-- Moves of filtered loans between delinquency buckets from month-end t-1 to month-end t,
-- for every month t from $month_from to $month_to (month-end dates, none after $as_of).
-- Only loans active at t-1 count: their t-1 snapshot is neither paid_off nor charged_off.
-- $bucket_bounds (INTEGER[]) are the upper dpd bounds of M1, M2, ...; with n bounds, codes
-- are 0 = C, 1..n = M1..Mn, n+1 = the open-ended M(n+1)+, n+2 = PAID and n+3 = WO (as in
-- analysis/buckets.py). The state at t is the t-1 row's next_* columns in month_facts, so
-- no self-join is needed. Rows are aggregated by dpd before bucketing, so the bucket
-- lookup runs on few rows.
-- One row per (month, from_code, to_code). Columns:
--   month          DATE           month-end t
--   from_code      INTEGER        bucket code at t-1 (0..n+1)
--   to_code        INTEGER        state code at t (0..n+3); null when the loan has no
--                                 snapshot at t (or t is after $as_of)
--   loan_count     BIGINT         loans
--   balance        DECIMAL(38,2)  outstanding principal at t-1, yuan
--   next_balance   DECIMAL(38,2)  outstanding principal at t, yuan (0 without a snapshot)
with
previous as (
    select
        m.month_number,
        m.dpd,
        m.outstanding_principal,
        m.next_dpd,
        m.next_status,
        m.next_outstanding_principal
    from filtered_month_facts(
        $products, $channels, $provinces, $grades, $vintage_from, $vintage_to
    ) as m
    where m.origination_date <= $as_of
      and m.snapshot_date >= last_day($month_from::date - interval 1 month)
      and m.snapshot_date <= last_day($month_to::date - interval 1 month)
      and m.snapshot_date < $as_of::date
      and m.is_active
),

pairs_by_dpd as (
    select
        month_number + 1 as next_month_number,
        dpd as from_dpd,
        next_dpd as to_dpd,
        next_status as to_status,
        count(*) as loan_count,
        sum(outstanding_principal) as balance,
        coalesce(sum(next_outstanding_principal), 0) as next_balance
    from previous
    group by all
),

dated as (
    select
        -- month-end of month number k: the last day of make_date(k // 12, k % 12 + 1, 1)
        last_day(make_date(next_month_number // 12, next_month_number % 12 + 1, 1)) as month,
        from_dpd,
        to_dpd,
        to_status,
        loan_count,
        balance,
        next_balance
    from pairs_by_dpd
),

-- A snapshot at t after $as_of is not visible, so the loan counts as missing at t.
observed as (
    select
        month,
        from_dpd,
        case when month <= $as_of::date then to_dpd end as to_dpd,
        case when month <= $as_of::date then to_status end as to_status,
        loan_count,
        balance,
        case when month <= $as_of::date then next_balance else 0 end as next_balance
    from dated
),

coded as (
    select
        month,
        case
            when from_dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < from_dpd))
        end as from_code,
        case
            when to_status is null then null
            when to_status = 'paid_off' then len($bucket_bounds::integer[]) + 2
            when to_status = 'charged_off' then len($bucket_bounds::integer[]) + 3
            when to_dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < to_dpd))
        end as to_code,
        loan_count,
        balance,
        next_balance
    from observed
),

final as (
    select
        month,
        from_code::integer as from_code,
        to_code::integer as to_code,
        sum(loan_count)::bigint as loan_count,
        sum(balance) as balance,
        sum(next_balance) as next_balance
    from coded
    group by all
)

select * from final
order by month, from_code, to_code nulls last;


-- name: rollrate_bucket_balances
-- Active filtered loans by delinquency bucket at every month-end from $month_from to
-- $month_to (none after $as_of). Active means the snapshot's status is neither paid_off
-- nor charged_off. Codes as in rollrate_transitions: 0 = C, 1..n+1 = M1..M(n+1)+ for the
-- n upper bounds in $bucket_bounds. One row per (month, code) that contains loans. Columns:
--   month          DATE           month-end
--   code           INTEGER        bucket code (0..n+1)
--   loan_count     BIGINT         active loans in the bucket
--   balance        DECIMAL(38,2)  their outstanding principal, yuan
with
active_by_dpd as (
    select
        m.snapshot_date as month,
        m.dpd,
        count(*) as loan_count,
        sum(m.outstanding_principal) as balance
    from filtered_month_facts(
        $products, $channels, $provinces, $grades, $vintage_from, $vintage_to
    ) as m
    where m.origination_date <= $as_of
      and m.snapshot_date >= $month_from::date
      and m.snapshot_date <= $month_to::date
      and m.snapshot_date <= $as_of::date
      and m.is_active
    group by all
),

coded as (
    select
        month,
        case
            when dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < dpd))
        end as code,
        loan_count,
        balance
    from active_by_dpd
),

final as (
    select
        month,
        code::integer as code,
        sum(loan_count)::bigint as loan_count,
        sum(balance) as balance
    from coded
    group by all
)

select * from final
order by month, code;


-- name: rollrate_month_range
-- The first and last snapshot month-ends of filtered loans, none after $as_of. Columns:
--   first_month    DATE  earliest month-end (null when there are no snapshots)
--   last_month     DATE  latest month-end, at most $as_of
with
final as (
    select
        min(m.snapshot_date) as first_month,
        max(m.snapshot_date) as last_month
    from filtered_month_facts(
        $products, $channels, $provinces, $grades, $vintage_from, $vintage_to
    ) as m
    where m.origination_date <= $as_of
      and m.snapshot_date <= $as_of::date
)

select * from final;


-- name: rollrate_flow_links
-- The two links of the flow-rate chain that need each loan's state at t-1 and t, for every
-- month t from $month_from to $month_to (month-ends, none after $as_of), among filtered
-- loans. $bucket_bounds (INTEGER[]) are the upper dpd bounds of M1, M2, ...; the last
-- bucket (dpd > the last bound) is open-ended. Each active t-1 row carries its state at t
-- (month_facts next_*), so only the rows that arrive in the open bucket or are charged off
-- at t are kept. One row per month t with such arrivals. Columns:
--   month                  DATE           month-end t
--   open_roll_in_balance   DECIMAL(38,2)  outstanding principal at t of active loans in the
--                                         open bucket at t that were active in the bucket
--                                         before it at t-1, yuan
--   write_off_balance      DECIMAL(38,2)  outstanding principal at t-1 of loans active at
--                                         t-1 and charged off at t, yuan
with
arrivals as (
    select
        m.month_number + 1 as next_month_number,
        m.next_status = 'charged_off' as is_write_off,
        m.dpd as previous_dpd,
        m.outstanding_principal as balance,
        m.next_outstanding_principal as next_balance
    from filtered_month_facts(
        $products, $channels, $provinces, $grades, $vintage_from, $vintage_to
    ) as m
    where m.origination_date <= $as_of
      and m.snapshot_date >= last_day($month_from::date - interval 1 month)
      and m.snapshot_date <= last_day($month_to::date - interval 1 month)
      and m.is_active
      and (
            m.next_status = 'charged_off'
            or (m.next_status <> 'paid_off' and m.next_dpd > list_last($bucket_bounds::integer[]))
      )
),

dated as (
    select
        last_day(make_date(next_month_number // 12, next_month_number % 12 + 1, 1)) as month,
        is_write_off,
        previous_dpd,
        balance,
        next_balance
    from arrivals
),

final as (
    select
        month,
        -- The bucket before the open one contains dpd above the second-to-last bound (or
        -- above 0 with a single bound) up to the last bound.
        coalesce(
            sum(next_balance) filter (
                where not is_write_off
                  and previous_dpd > coalesce(($bucket_bounds::integer[])[-2], 0)
                  and previous_dpd <= list_last($bucket_bounds::integer[])
            ),
            0
        )::decimal(38, 2) as open_roll_in_balance,
        coalesce(sum(balance) filter (where is_write_off), 0)::decimal(38, 2)
            as write_off_balance
    from dated
    where month <= $as_of::date
    group by month
)

select * from final
order by month;
