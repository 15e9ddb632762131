-- name: kpi_monthly
-- Returns one row per month-end in loan_months up to $as_of, for the loans matching the
-- shared filters. Columns:
--   month DATE (month-end);
--   active_balance DECIMAL (yuan, outstanding principal of active loans: status neither
--     paid_off nor charged_off); active_loans BIGINT;
--   m1plus_balance DECIMAL, m1plus_loans BIGINT (active, dpd > 0);
--   par30_balance DECIMAL (active, dpd > 30, or restructured/extended when
--     $par30_restructured is true);
--   npl_balance DECIMAL (active, dpd > $npl_dpd: the 次级 floor of the five-category preset);
--   new_loans BIGINT, new_amount DECIMAL (yuan; originated in the month);
--   chargeoff_amount DECIMAL, recovery_amount DECIMAL (yuan; booked in the month).
-- Months with no matching loan carry zeros, so the month list does not depend on filters.
-- Reads the fact tables month_facts and loan_facts, so no month-end row is joined to loans.
with
months as (
    select distinct
        snapshot_date as month
    from loan_months
    where snapshot_date <= $as_of
),

chosen_months as not materialized (
    select
        snapshot_date as month,
        dpd,
        outstanding_principal,
        status,
        is_active,
        charged_off_amount,
        recovered_amount
    from filtered_month_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where snapshot_date <= $as_of
),

-- The delinquency sums come from a second scan that reads only the rows with dpd > 0.
-- Most rows are current (dpd 0), and in DuckDB 2.0 filtering the few delinquent rows again
-- cost less CPU than four more filtered aggregates over every row (measured at 1M loans).
portfolio as (
    select
        month,
        sum(outstanding_principal) filter (where is_active) as active_balance,
        count(*) filter (where is_active) as active_loans,
        sum(charged_off_amount) as chargeoff_amount,
        sum(recovered_amount) as recovery_amount
    from chosen_months
    group by month
),

delinquent as (
    select
        month,
        sum(outstanding_principal) as m1plus_balance,
        count(*) as m1plus_loans,
        sum(outstanding_principal) filter (where dpd > 30) as dpd30_balance,
        sum(outstanding_principal) filter (where dpd > $npl_dpd) as npl_balance
    from chosen_months
    where is_active
      and dpd > 0
    group by month
),

-- Restructured and extended loans with dpd <= 30, which PAR30 counts when
-- $par30_restructured is true. Neither status is paid_off or charged_off, so the rows
-- are active.
restructured as (
    select
        month,
        sum(outstanding_principal) as restructured_balance
    from chosen_months
    where $par30_restructured
      and dpd <= 30
      and status in ('restructured', 'extended')
    group by month
),

originations as (
    select
        last_day(vintage) as month,
        count(*) as new_loans,
        sum(principal) as new_amount
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    group by month
),

final as (
    select
        m.month,
        coalesce(p.active_balance, 0) as active_balance,
        coalesce(p.active_loans, 0) as active_loans,
        coalesce(d.m1plus_balance, 0) as m1plus_balance,
        coalesce(d.m1plus_loans, 0) as m1plus_loans,
        coalesce(d.dpd30_balance, 0) + coalesce(r.restructured_balance, 0) as par30_balance,
        -- dpd is never negative, so a negative $npl_dpd takes every active loan.
        case
            when $npl_dpd < 0 then coalesce(p.active_balance, 0)
            else coalesce(d.npl_balance, 0)
        end as npl_balance,
        coalesce(o.new_loans, 0) as new_loans,
        coalesce(o.new_amount, 0) as new_amount,
        coalesce(p.chargeoff_amount, 0) as chargeoff_amount,
        coalesce(p.recovery_amount, 0) as recovery_amount
    from months as m
    left join portfolio as p
        on p.month = m.month
    left join delinquent as d
        on d.month = m.month
    left join restructured as r
        on r.month = m.month
    left join originations as o
        on o.month = m.month
)

select * from final order by month;


-- name: kpi_fpd30_cohorts
-- Returns one row per origination month (cohort) of the filtered loans with FPD30:
--   vintage DATE (month start); loans BIGINT; principal DECIMAL (yuan);
--   judged_month DATE (month-end by which every loan of the cohort can be judged);
--   fpd30_loans BIGINT; fpd30_principal DECIMAL (yuan);
--   from_installments BIGINT (loans judged from the instalment schedule).
-- Each loan's judgement comes from loan_facts (fpd30_judged_month, is_fpd30,
-- fpd30_from_installments). A loan with instalment rows is judged on instalment 1: FPD30
-- when less than its principal_due (1 yuan tolerance) was paid before due_date + 30 days.
-- Other loans are judged on snapshots: the first due date is origination + 1 month, and
-- FPD30 means dpd >= 30 (or charged off) at the first month-end at least 30 days after it;
-- a loan closed before that month-end is judged on its last snapshot. Cohorts whose
-- judged_month is after the latest snapshot month are left out, because some of their
-- loans cannot be judged yet.
with
chosen_loans as (
    select
        vintage,
        principal,
        fpd30_judged_month,
        is_fpd30,
        fpd30_from_installments
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where origination_date <= $as_of
),

cohorts as (
    select
        vintage,
        count(*) as loans,
        sum(principal) as principal,
        max(fpd30_judged_month) as judged_month,
        count(*) filter (where is_fpd30) as fpd30_loans,
        coalesce(sum(principal) filter (where is_fpd30), 0) as fpd30_principal,
        count(*) filter (where fpd30_from_installments) as from_installments
    from chosen_loans
    group by vintage
),

final as (
    select *
    from cohorts
    where judged_month <= (
        select max(snapshot_date) from loan_months where snapshot_date <= $as_of
    )
)

select * from final order by vintage;


-- name: kpi_five_class
-- Returns the five-category classification (五级分类) of active loans at $as_of by DPD
-- floors of the chosen preset: one row per class present, columns
--   class_rank INTEGER (1 正常 .. 5 损失); class_code VARCHAR (normal, special_mention,
--   substandard, doubtful, loss); loans BIGINT; balance DECIMAL (yuan).
-- Bounds: 正常 dpd 0; 关注 1..$substandard_dpd; 次级 up to $doubtful_dpd; 可疑 up to
-- $loss_dpd; 损失 above. Charged-off loans are not active, so they are in no class.
with
active as (
    select
        dpd,
        outstanding_principal
    from filtered_month_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where snapshot_date = $as_of
      and is_active
),

classified as (
    select
        case
            when dpd = 0 then 1
            when dpd <= $substandard_dpd then 2
            when dpd <= $doubtful_dpd then 3
            when dpd <= $loss_dpd then 4
            else 5
        end as class_rank,
        outstanding_principal
    from active
),

final as (
    select
        class_rank,
        ['normal', 'special_mention', 'substandard', 'doubtful', 'loss'][class_rank] as class_code,
        count(*) as loans,
        sum(outstanding_principal) as balance
    from classified
    group by class_rank
)

select * from final order by class_rank;
