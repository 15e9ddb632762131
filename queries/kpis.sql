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
with
months as (
    select distinct
        snapshot_date as month
    from loan_months
    where snapshot_date <= $as_of
),

chosen_loans as (
    select
        loan_id,
        origination_date,
        principal
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

snapshots as (
    select
        lm.snapshot_date as month,
        lm.dpd,
        lm.outstanding_principal,
        lm.status,
        lm.charged_off_amount,
        lm.recovered_amount,
        lm.status not in ('paid_off', 'charged_off') as is_active
    from loan_months as lm
    inner join chosen_loans as cl
        on cl.loan_id = lm.loan_id
    where lm.snapshot_date <= $as_of
),

portfolio as (
    select
        month,
        sum(outstanding_principal) filter (where is_active) as active_balance,
        count(*) filter (where is_active) as active_loans,
        sum(outstanding_principal) filter (where is_active and dpd > 0) as m1plus_balance,
        count(*) filter (where is_active and dpd > 0) as m1plus_loans,
        sum(outstanding_principal) filter (
            where is_active
              and (dpd > 30 or ($par30_restructured and status in ('restructured', 'extended')))
        ) as par30_balance,
        sum(outstanding_principal) filter (where is_active and dpd > $npl_dpd) as npl_balance,
        sum(coalesce(charged_off_amount, 0)) as chargeoff_amount,
        sum(coalesce(recovered_amount, 0)) as recovery_amount
    from snapshots
    group by month
),

originations as (
    select
        last_day(origination_date) as month,
        count(*) as new_loans,
        sum(principal) as new_amount
    from chosen_loans
    group by month
),

final as (
    select
        m.month,
        coalesce(p.active_balance, 0) as active_balance,
        coalesce(p.active_loans, 0) as active_loans,
        coalesce(p.m1plus_balance, 0) as m1plus_balance,
        coalesce(p.m1plus_loans, 0) as m1plus_loans,
        coalesce(p.par30_balance, 0) as par30_balance,
        coalesce(p.npl_balance, 0) as npl_balance,
        coalesce(o.new_loans, 0) as new_loans,
        coalesce(o.new_amount, 0) as new_amount,
        coalesce(p.chargeoff_amount, 0) as chargeoff_amount,
        coalesce(p.recovery_amount, 0) as recovery_amount
    from months as m
    left join portfolio as p
        on p.month = m.month
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
-- A loan with instalment rows is judged on instalment 1: FPD30 when less than its
-- principal_due (1 yuan tolerance) was paid before due_date + 30 days. Other loans are
-- judged on snapshots: the first due date is origination + 1 month, and FPD30 means dpd >= 30
-- (or charged off) at the first month-end at least 30 days after it; a loan closed before
-- that month-end is judged on its last snapshot. Cohorts whose judged_month is after the
-- latest snapshot month are left out, because some of their loans cannot be judged yet.
with
chosen_loans as (
    select
        loan_id,
        origination_date,
        principal
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where origination_date <= $as_of
),

first_installment_rows as (
    select
        i.loan_id,
        i.due_date,
        i.principal_due,
        i.paid_date,
        i.principal_paid
    from installments as i
    inner join chosen_loans as cl
        on cl.loan_id = i.loan_id
    where i.installment_no = 1
),

first_installment as (
    select
        loan_id,
        min(due_date) as due_date,
        max(principal_due) as principal_due
    from first_installment_rows
    group by loan_id
),

first_installment_paid as (
    select
        fi.loan_id,
        fi.due_date,
        fi.principal_due,
        coalesce(sum(r.principal_paid) filter (where r.paid_date < fi.due_date + 30), 0)
            as paid_in_time
    from first_installment as fi
    inner join first_installment_rows as r
        on r.loan_id = fi.loan_id
    group by fi.loan_id, fi.due_date, fi.principal_due
),

by_installment as (
    select
        loan_id,
        last_day(due_date + 30) as judged_month,
        paid_in_time < principal_due - 1 as is_fpd30
    from first_installment_paid
),

snapshot_loans as (
    select
        cl.loan_id,
        last_day(cast(cl.origination_date + interval 1 month as date) + 30) as judged_month
    from chosen_loans as cl
    anti join first_installment as fi
        on fi.loan_id = cl.loan_id
),

by_snapshot as (
    select
        sl.loan_id,
        sl.judged_month,
        coalesce(
            arg_max(lm.dpd >= 30 or lm.status = 'charged_off', lm.snapshot_date),
            false
        ) as is_fpd30
    from snapshot_loans as sl
    left join loan_months as lm
        on lm.loan_id = sl.loan_id
       and lm.snapshot_date <= sl.judged_month
    group by sl.loan_id, sl.judged_month
),

judged as (
    select loan_id, judged_month, is_fpd30, 1 as from_installments from by_installment
    union all
    select loan_id, judged_month, is_fpd30, 0 as from_installments from by_snapshot
),

cohorts as (
    select
        date_trunc('month', cl.origination_date)::date as vintage,
        count(*) as loans,
        sum(cl.principal) as principal,
        max(j.judged_month) as judged_month,
        count(*) filter (where j.is_fpd30) as fpd30_loans,
        coalesce(sum(cl.principal) filter (where j.is_fpd30), 0) as fpd30_principal,
        sum(j.from_installments)::bigint as from_installments
    from chosen_loans as cl
    inner join judged as j
        on j.loan_id = cl.loan_id
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
        lm.dpd,
        lm.outstanding_principal
    from loan_months as lm
    inner join filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to) as fl
        on fl.loan_id = lm.loan_id
    where lm.snapshot_date = $as_of
      and lm.status not in ('paid_off', 'charged_off')
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
