-- name: vintage_cells
-- Vintage table of filtered loans originated up to $as_of: one row per (vintage, mob) the
-- cohort has reached. A vintage is the origination month, or the quarter when $quarterly
-- is true. MOB counts whole months from a loan's own origination month (MOB 0). A cohort
-- has reached MOB k when its last origination month plus k months is not after $as_of,
-- so cells it has not reached are absent, never zero. "Bad" means dpd > $threshold.
-- Reads the fact tables loan_facts and month_facts; months are compared as month numbers
-- (year * 12 + month - 1).
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
        principal,
        case
            when $quarterly then origination_month - origination_month % 12 % 3
            else origination_month
        end as vintage_month
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where origination_date <= $as_of::date
),

cohorts as (
    select
        vintage_month,
        count(*) as loan_count,
        sum(principal) as principal,
        year($as_of::date) * 12 + month($as_of::date) - 1
            - vintage_month
            - case when $quarterly then 2 else 0 end as reached_mob
    from cohort_loans
    group by vintage_month
),

-- Bad or charged-off month-ends, usually a small share of all rows. Charged-off rows are
-- never active, so the status text is compared only on inactive rows.
bad_snapshots as (
    select
        loan_key,
        case
            when $quarterly then origination_month - origination_month % 12 % 3
            else origination_month
        end as vintage_month,
        principal,
        mob,
        is_active,
        dpd,
        outstanding_principal
    from filtered_month_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where snapshot_date <= $as_of::date
      and origination_date <= $as_of::date
      and (dpd > $threshold or (not is_active and status = 'charged_off'))
),

first_bad as (
    select
        loan_key,
        any_value(vintage_month) as vintage_month,
        any_value(principal) as principal,
        min(mob) as first_bad_mob
    from bad_snapshots
    group by loan_key
),

ever_new as (
    select
        vintage_month,
        first_bad_mob as mob,
        count(*) as bad_count,
        sum(principal) as bad_principal
    from first_bad
    group by all
),

current_bad as (
    select
        vintage_month,
        mob,
        count(*) as bad_count,
        sum(outstanding_principal) as bad_balance
    from bad_snapshots
    where dpd > $threshold
      and is_active
    group by all
),

grid as (
    select
        vintage_month,
        loan_count,
        principal,
        unnest(range(0, reached_mob + 1)) as mob
    from cohorts
    where reached_mob >= 0
),

final as (
    select
        make_date(g.vintage_month // 12, g.vintage_month % 12 + 1, 1) as vintage,
        g.mob::integer as mob,
        g.loan_count::bigint as loan_count,
        g.principal,
        sum(coalesce(e.bad_count, 0)) over cumulative as ever_bad_count,
        sum(coalesce(e.bad_principal, 0)) over cumulative as ever_bad_principal,
        coalesce(c.bad_count, 0)::bigint as current_bad_count,
        coalesce(c.bad_balance, 0) as current_bad_balance
    from grid as g
    left join ever_new as e
        on e.vintage_month = g.vintage_month
       and e.mob = g.mob
    left join current_bad as c
        on c.vintage_month = g.vintage_month
       and c.mob = g.mob
    window cumulative as (
        partition by g.vintage_month
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
-- Reads the fact tables loan_facts and month_facts.
-- One row per (vintage, state_code). Columns:
--   vintage        DATE           first day of the origination month or quarter
--   mob            INTEGER        the cohort's latest reached MOB k
--   state_code     INTEGER        state at MOB k (codes above)
--   loan_count     BIGINT         loans in that state
--   principal      DECIMAL(38,2)  their disbursed principal, yuan
with
as_of_month as (
    select
        year($as_of::date) * 12 + month($as_of::date) - 1 as month_number
),

-- Filtered loans with their cohort and the cohort's reached MOB k. vintage_month is the
-- month number of the origination month, or of the quarter's first month.
cohort_loans as (
    select
        f.principal,
        f.vintage_month,
        a.month_number - f.vintage_month - case when $quarterly then 2 else 0 end
            as reached_mob
    from (
        select
            principal,
            case
                when $quarterly then origination_month - origination_month % 12 % 3
                else origination_month
            end as vintage_month
        from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
        where origination_date <= $as_of::date
    ) as f
    cross join as_of_month as a
),

cohorts as (
    select
        vintage_month,
        reached_mob,
        count(*) as loan_count,
        sum(principal) as principal
    from cohort_loans
    where reached_mob >= 0
    group by all
),

-- Month-end rows of the filtered loans with the cohort's reached MOB k computed from the
-- row itself, so no row is joined to the loans.
chosen_months as not materialized (
    select
        m.loan_key,
        m.principal,
        m.month_number,
        m.mob,
        m.dpd,
        m.status,
        m.is_active,
        m.vintage_month,
        a.month_number - m.vintage_month - case when $quarterly then 2 else 0 end
            as reached_mob
    from (
        select
            loan_key,
            principal,
            month_number,
            mob,
            dpd,
            status,
            is_active,
            case
                when $quarterly then origination_month - origination_month % 12 % 3
                else origination_month
            end as vintage_month
        from filtered_month_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
        where origination_date <= $as_of::date
          and snapshot_date <= $as_of::date
    ) as m
    cross join as_of_month as a
),

-- Loans with a closed or bad row up to MOB k. Such rows are usually a small share of all
-- rows. A closed row that is not bad is a paid_off row, so each loan here is EVER or PAID.
closed_or_bad as (
    select
        loan_key,
        any_value(vintage_month) as vintage_month,
        any_value(reached_mob) as reached_mob,
        any_value(principal) as principal,
        bool_or(dpd > $threshold or status = 'charged_off') as is_bad
    from chosen_months
    where reached_mob >= 0
      and mob <= reached_mob
      and (not is_active or dpd > $threshold)
    group by loan_key
),

-- Every other loan is in the dpd bucket of its row at MOB k, or has no such row. Each
-- cohort's last origination month plus k is the as-of month, so every row at MOB k lies
-- in the as-of month or the two months before it. The month filter below lets the scan
-- skip the row groups of earlier months.
open_at_target as (
    select
        cm.vintage_month,
        cm.reached_mob,
        cm.principal,
        cm.dpd
    from chosen_months as cm
    anti join closed_or_bad as cb
        on cb.loan_key = cm.loan_key
    where cm.reached_mob >= 0
      and cm.mob = cm.reached_mob
      and cm.month_number >= year($as_of::date) * 12 + month($as_of::date) - 3
),

coded as (
    select
        vintage_month,
        reached_mob,
        case
            when is_bad then len($bucket_bounds::integer[]) + 4
            else len($bucket_bounds::integer[]) + 2
        end as state_code,
        principal
    from closed_or_bad
    union all
    select
        vintage_month,
        reached_mob,
        case
            when dpd <= 0 then 0
            else 1 + len(list_filter($bucket_bounds::integer[], lambda b: b < dpd))
        end as state_code,
        principal
    from open_at_target
),

found as (
    select
        vintage_month,
        reached_mob,
        state_code,
        count(*) as loan_count,
        sum(principal) as principal
    from coded
    group by all
),

-- Loans in neither closed_or_bad nor open_at_target are open but have no snapshot at
-- MOB k, so their state is null.
missing as (
    select
        c.vintage_month,
        c.reached_mob,
        null as state_code,
        c.loan_count - coalesce(sum(f.loan_count), 0) as loan_count,
        c.principal - coalesce(sum(f.principal), 0) as principal
    from cohorts as c
    left join found as f
        on f.vintage_month = c.vintage_month
    group by c.vintage_month, c.reached_mob, c.loan_count, c.principal
),

final as (
    select
        make_date(vintage_month // 12, vintage_month % 12 + 1, 1) as vintage,
        reached_mob::integer as mob,
        state_code::integer as state_code,
        loan_count::bigint as loan_count,
        principal
    from (
        select * from found
        union all
        select * from missing where loan_count > 0
    )
)

select * from final
order by vintage, state_code nulls last;
