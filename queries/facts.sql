-- name: facts_loan_keys
-- Numbers the loans 1..n in origination order into the temporary table fact_keys
-- (loan_id VARCHAR, loan_key INTEGER) used by the two inserts below. Returns nothing.
create or replace temp table fact_keys as
select
    loan_id,
    row_number() over (order by origination_date, loan_id)::integer as loan_key
from loans;


-- name: facts_insert_months
-- Fills month_facts from loan_months and loans (see facts_schema.sql). Rows of loans missing from
-- `loans` are left out, as every report joins to loans. next_* come from the same loan's
-- row whose month number is one higher. Rows are stored in (snapshot_date, loan_key)
-- order, so a report on a month range reads only that range's row groups.
insert into month_facts
with
keyed_loans as (
    select
        k.loan_key,
        l.loan_id,
        l.origination_date,
        year(l.origination_date) * 12 + month(l.origination_date) - 1 as origination_month,
        l.principal,
        l.product,
        l.channel,
        l.province,
        l.grade
    from loans as l
    inner join fact_keys as k
        on k.loan_id = l.loan_id
),

months as (
    select
        kl.loan_key,
        m.snapshot_date,
        year(m.snapshot_date) * 12 + month(m.snapshot_date) - 1 as month_number,
        m.dpd,
        m.outstanding_principal,
        m.overdue_principal,
        m.status,
        m.principal_paid,
        m.interest_paid,
        m.charged_off_amount,
        m.recovered_amount,
        kl.origination_date,
        kl.origination_month,
        kl.principal,
        kl.product,
        kl.channel,
        kl.province,
        kl.grade
    from loan_months as m
    inner join keyed_loans as kl
        on kl.loan_id = m.loan_id
),

linked as (
    select
        *,
        lead(month_number) over by_loan as following_month,
        lead(dpd) over by_loan as following_dpd,
        lead(status) over by_loan as following_status,
        lead(outstanding_principal) over by_loan as following_outstanding
    from months
    window by_loan as (partition by loan_key order by month_number)
)

select
    loan_key,
    snapshot_date,
    month_number,
    month_number - origination_month as mob,
    dpd,
    outstanding_principal,
    overdue_principal,
    status,
    status not in ('paid_off', 'charged_off') as is_active,
    principal_paid,
    interest_paid,
    charged_off_amount,
    recovered_amount,
    case when following_month = month_number + 1 then following_dpd end as next_dpd,
    case when following_month = month_number + 1 then following_status end as next_status,
    case when following_month = month_number + 1 then following_outstanding end
        as next_outstanding_principal,
    origination_date,
    origination_month,
    principal,
    product,
    channel,
    province,
    grade
from linked
order by snapshot_date, loan_key;


-- name: facts_insert_loans
-- Fills loan_facts from loans, month_facts and installments (see facts_schema.sql for the
-- columns and the FPD30 rule). Instalment 1 of a loan may have several rows (partial
-- payments): its due date is the earliest, its principal due the largest, and the paid
-- principal counts when paid before due_date + 30 days (1 yuan tolerance).
insert into loan_facts
with
keyed_loans as (
    select
        k.loan_key,
        l.*,
        year(l.origination_date) * 12 + month(l.origination_date) - 1 as origination_month
    from loans as l
    inner join fact_keys as k
        on k.loan_id = l.loan_id
),

first_installment_rows as (
    select
        i.loan_id,
        i.due_date,
        i.principal_due,
        i.paid_date,
        i.principal_paid
    from installments as i
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

by_installment as (
    select
        fi.loan_id,
        last_day(fi.due_date + 30) as judged_month,
        coalesce(sum(r.principal_paid) filter (where r.paid_date < fi.due_date + 30), 0)
            < fi.principal_due - 1 as is_fpd30
    from first_installment as fi
    inner join first_installment_rows as r
        on r.loan_id = fi.loan_id
    group by fi.loan_id, fi.due_date, fi.principal_due
),

snapshot_judged as (
    select
        loan_key,
        last_day(cast(origination_date + interval 1 month as date) + 30) as judged_month
    from keyed_loans
),

month_summary as (
    select
        mf.loan_key,
        min(mf.month_number) as first_month,
        max(mf.month_number) as last_month,
        arg_max(mf.status, mf.month_number) as last_status,
        arg_max(mf.dpd >= 30 or mf.status = 'charged_off', mf.month_number) filter (
            where mf.snapshot_date <= sj.judged_month
        ) as is_fpd30_by_snapshot
    from month_facts as mf
    inner join snapshot_judged as sj
        on sj.loan_key = mf.loan_key
    group by mf.loan_key
)

select
    kl.loan_key,
    kl.loan_id,
    kl.borrower_id,
    kl.origination_date,
    date_trunc('month', kl.origination_date)::date as vintage,
    kl.origination_month,
    kl.principal,
    kl.term_months,
    kl.product,
    kl.channel,
    kl.province,
    kl.city,
    kl.county,
    kl.region_code,
    kl.grade,
    ms.first_month,
    ms.last_month,
    ms.last_status,
    coalesce(bi.judged_month, sj.judged_month) as fpd30_judged_month,
    case
        when bi.loan_id is not null then bi.is_fpd30
        else coalesce(ms.is_fpd30_by_snapshot, false)
    end as is_fpd30,
    bi.loan_id is not null as fpd30_from_installments
from keyed_loans as kl
inner join snapshot_judged as sj
    on sj.loan_key = kl.loan_key
left join by_installment as bi
    on bi.loan_id = kl.loan_id
left join month_summary as ms
    on ms.loan_key = kl.loan_key
order by kl.loan_key;
