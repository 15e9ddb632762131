-- name: vintage_cells
-- Vintage table of filtered loans originated up to $as_of: one row per (vintage, mob) the
-- cohort has reached. A vintage is the origination month, or the quarter when $quarterly
-- is true. MOB counts whole months from a loan's own origination month (MOB 0). A cohort
-- has reached MOB k when its last origination month plus k months is not after $as_of,
-- so cells it has not reached are absent, never zero. "Bad" means dpd > $threshold.
-- Columns:
--   vintage               DATE           first day of the origination month or quarter
--   mob                   INTEGER        months on book
--   loan_count            BIGINT         loans in the cohort
--   principal             DECIMAL(38,2)  their disbursed principal, yuan
--   ever_bad_count        BIGINT         loans bad at some month-end up to MOB mob, or
--                                        charged off by then
--   ever_bad_principal    DECIMAL(38,2)  disbursed principal of those loans, yuan
--   current_bad_count     BIGINT         loans bad at MOB mob and still active (status
--                                        neither paid_off nor charged_off)
--   current_bad_balance   DECIMAL(38,2)  their outstanding principal at MOB mob, yuan
with
cohort_loans as (
    select
        loan_id,
        principal,
        date_trunc('month', origination_date)::date as origination_month,
        case
            when $quarterly then date_trunc('quarter', origination_date)::date
            else date_trunc('month', origination_date)::date
        end as vintage
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where origination_date <= $as_of::date
),

cohorts as (
    select
        vintage,
        count(*) as loan_count,
        sum(principal) as principal,
        datediff(
            'month',
            vintage + to_months(case when $quarterly then 2 else 0 end),
            date_trunc('month', $as_of::date)
        ) as reached_mob
    from cohort_loans
    group by vintage
),

bad_snapshots as (
    select
        l.vintage,
        l.loan_id,
        l.principal,
        datediff('month', l.origination_month, m.snapshot_date) as mob,
        m.status,
        m.dpd,
        m.outstanding_principal
    from loan_months as m
    join cohort_loans as l using (loan_id)
    where m.snapshot_date <= $as_of::date
      and (m.dpd > $threshold or m.status = 'charged_off')
),

first_bad as (
    select
        vintage,
        loan_id,
        any_value(principal) as principal,
        min(mob) as first_bad_mob
    from bad_snapshots
    group by vintage, loan_id
),

ever_new as (
    select
        vintage,
        first_bad_mob as mob,
        count(*) as bad_count,
        sum(principal) as bad_principal
    from first_bad
    group by all
),

current_bad as (
    select
        vintage,
        mob,
        count(*) as bad_count,
        sum(outstanding_principal) as bad_balance
    from bad_snapshots
    where dpd > $threshold
      and status not in ('paid_off', 'charged_off')
    group by all
),

grid as (
    select
        vintage,
        loan_count,
        principal,
        unnest(range(0, reached_mob + 1)) as mob
    from cohorts
    where reached_mob >= 0
),

final as (
    select
        g.vintage,
        g.mob::integer as mob,
        g.loan_count::bigint as loan_count,
        g.principal,
        sum(coalesce(e.bad_count, 0)) over cumulative as ever_bad_count,
        sum(coalesce(e.bad_principal, 0)) over cumulative as ever_bad_principal,
        coalesce(c.bad_count, 0)::bigint as current_bad_count,
        coalesce(c.bad_balance, 0) as current_bad_balance
    from grid as g
    left join ever_new as e
        on e.vintage = g.vintage
       and e.mob = g.mob
    left join current_bad as c
        on c.vintage = g.vintage
       and c.mob = g.mob
    window cumulative as (
        partition by g.vintage
        order by g.mob
        rows between unbounded preceding and current row
    )
)

select
    vintage,
    mob,
    loan_count,
    principal,
    ever_bad_count::bigint as ever_bad_count,
    ever_bad_principal::decimal(38, 2) as ever_bad_principal,
    current_bad_count,
    current_bad_balance::decimal(38, 2) as current_bad_balance
from final
order by vintage, mob;


-- name: vintage_state_mix
-- State of every filtered loan at its cohort's latest reached MOB k (see vintage_cells),
-- taken at the loan's own MOB k, for the Markov forecast of ever-bad rates. Cohorts and
-- MOB as in vintage_cells; "bad" means dpd > $threshold or charged off. $bucket_bounds
-- (INTEGER[]) are the upper dpd bounds of M1, M2, ... With n bounds the state codes are
-- 0..n+1 for the buckets C..M(n+1)+, n+2 for PAID and n+4 for ever bad by MOB k. WO (n+3)
-- does not occur because charged-off loans count as ever bad. A loan that is not closed
-- and has no snapshot at MOB k gets null.
-- One row per (vintage, state_code). Columns:
--   vintage        DATE           first day of the origination month or quarter
--   mob            INTEGER        the cohort's latest reached MOB k
--   state_code     INTEGER        state at MOB k (codes above)
--   loan_count     BIGINT         loans in that state
--   principal      DECIMAL(38,2)  their disbursed principal, yuan
with
cohort_loans as (
    select
        loan_id,
        principal,
        date_trunc('month', origination_date)::date as origination_month,
        case
            when $quarterly then date_trunc('quarter', origination_date)::date
            else date_trunc('month', origination_date)::date
        end as vintage
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where origination_date <= $as_of::date
),

cohorts as (
    select
        vintage,
        datediff(
            'month',
            vintage + to_months(case when $quarterly then 2 else 0 end),
            date_trunc('month', $as_of::date)
        ) as reached_mob
    from cohort_loans
    group by vintage
),

targets as (
    select
        l.loan_id,
        l.vintage,
        l.principal,
        c.reached_mob,
        last_day(l.origination_month + to_months(c.reached_mob)) as target_date
    from cohort_loans as l
    join cohorts as c using (vintage)
    where c.reached_mob >= 0
),

-- Each loan's snapshot at its target month-end; an equality join, cheap on many rows.
at_target as (
    select
        m.loan_id,
        m.dpd
    from loan_months as m
    join targets as t
        on t.loan_id = m.loan_id
       and t.target_date = m.snapshot_date
),

-- Closed or bad rows up to the target month-end, usually a small share of all rows.
flags as (
    select
        m.loan_id,
        bool_or(m.dpd > $threshold or m.status = 'charged_off') as is_bad,
        bool_or(m.status = 'paid_off') as is_paid
    from loan_months as m
    join targets as t
        on t.loan_id = m.loan_id
    where (m.status in ('paid_off', 'charged_off') or m.dpd > $threshold)
      and m.snapshot_date <= t.target_date
    group by m.loan_id
),

loan_states as (
    select
        t.vintage,
        t.reached_mob,
        t.principal,
        coalesce(f.is_bad, false) as is_bad,
        coalesce(f.is_paid, false) as is_paid,
        a.dpd as target_dpd
    from targets as t
    left join flags as f using (loan_id)
    left join at_target as a using (loan_id)
),

coded as (
    select
        vintage,
        reached_mob,
        case
            when is_bad then len($bucket_bounds::integer[]) + 4
            when is_paid then len($bucket_bounds::integer[]) + 2
            when target_dpd is null then null
            when target_dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < target_dpd))
        end as state_code,
        principal
    from loan_states
),

final as (
    select
        vintage,
        reached_mob::integer as mob,
        state_code::integer as state_code,
        count(*)::bigint as loan_count,
        sum(principal) as principal
    from coded
    group by all
)

select * from final
order by vintage, state_code nulls last;
