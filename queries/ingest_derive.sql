-- name: ingest_delete_derived_months
-- Deletes derived month-end rows (is_derived) of the loans in one installments load, so
-- that deriving again replaces them. Returns nothing.
delete from loan_months
where is_derived
  and loan_id in (
      select loan_id
      from installments
      where load_id = $load_id
  );

-- name: ingest_derive_months
-- Inserts derived month-end rows into loan_months for the loans of one installments load
-- (load_id = $load_id), skipping loans that already have given (non-derived) months.
-- Rules: several rows of one (loan_id, installment_no) are partial payments and are summed.
-- An instalment is unpaid at month-end M when due_date <= M and its principal paid by M is
-- below principal_due - 1 yuan. dpd(M) = days from the earliest unpaid due_date to M, or 0.
-- outstanding_principal(M) = principal - principal paid by M (yuan, not below 0).
-- overdue_principal / overdue_interest(M) = amounts due and not yet paid by M on unpaid
-- instalments. Months run from the origination month to the last month-end on or before
-- the as-of date (the loan's latest as_of_date, else $as_of) and stop at the first month
-- whose outstanding principal is <= 1 yuan, which gets status paid_off.
insert into loan_months (
    loan_id,
    snapshot_date,
    dpd,
    outstanding_principal,
    overdue_principal,
    overdue_interest,
    status,
    principal_paid,
    interest_paid,
    charged_off_amount,
    recovered_amount,
    is_derived,
    load_id
)
with source_rows as (
    select *
    from installments
    where load_id = $load_id
),
schedule as (
    select
        loan_id,
        installment_no,
        min(due_date) as due_date,
        max(principal_due) as principal_due,
        max(coalesce(interest_due, 0)) as interest_due
    from source_rows
    group by loan_id, installment_no
),
payments as (
    select
        loan_id,
        installment_no,
        paid_date,
        sum(coalesce(principal_paid, 0)) as principal_paid,
        sum(coalesce(interest_paid, 0)) as interest_paid
    from source_rows
    where paid_date is not null
    group by loan_id, installment_no, paid_date
),
payments_cumulative as (
    select
        loan_id,
        installment_no,
        paid_date,
        sum(principal_paid) over (
            partition by loan_id, installment_no order by paid_date
        ) as principal_paid_to_date,
        sum(interest_paid) over (
            partition by loan_id, installment_no order by paid_date
        ) as interest_paid_to_date
    from payments
),
fully_paid as (
    select
        c.loan_id,
        c.installment_no,
        min(c.paid_date) as paid_full_date
    from payments_cumulative c
    join schedule s
        on s.loan_id = c.loan_id
        and s.installment_no = c.installment_no
    where c.principal_paid_to_date >= s.principal_due - 1
    group by c.loan_id, c.installment_no
),
loan_as_of as (
    select
        loan_id,
        max(as_of_date) as as_of_date
    from source_rows
    group by loan_id
),
loan_bounds as (
    select
        l.loan_id,
        l.principal,
        date_trunc('month', l.origination_date)::date as first_month_start,
        coalesce(a.as_of_date, $as_of::date) as as_of_date
    from loans l
    join loan_as_of a on a.loan_id = l.loan_id
    where not exists (
        select 1
        from loan_months m
        where m.loan_id = l.loan_id
          and not m.is_derived
    )
),
loan_range as (
    select
        loan_id,
        principal,
        first_month_start,
        case
            when as_of_date = last_day(as_of_date) then as_of_date
            else (date_trunc('month', as_of_date) - interval 1 day)::date
        end as last_month_end
    from loan_bounds
),
month_grid as (
    select
        loan_id,
        principal,
        last_month_end,
        last_day(unnest(generate_series(
            first_month_start::timestamp,
            last_month_end::timestamp,
            interval 1 month
        ))::date) as month_end
    from loan_range
    where last_month_end >= first_month_start
),
paid_in_month as (
    select
        loan_id,
        last_day(paid_date) as month_end,
        sum(principal_paid) as principal_paid,
        sum(interest_paid) as interest_paid
    from payments
    group by loan_id, last_day(paid_date)
),
balances as (
    select
        g.loan_id,
        g.month_end,
        coalesce(p.principal_paid, 0) as principal_paid,
        coalesce(p.interest_paid, 0) as interest_paid,
        greatest(
            g.principal - sum(coalesce(p.principal_paid, 0)) over (
                partition by g.loan_id order by g.month_end
            ),
            0
        ) as outstanding_principal
    from month_grid g
    left join paid_in_month p
        on p.loan_id = g.loan_id
        and p.month_end = g.month_end
),
unpaid_spans as (
    select
        s.loan_id,
        s.installment_no,
        s.due_date,
        s.principal_due,
        s.interest_due,
        f.paid_full_date,
        r.last_month_end
    from schedule s
    join loan_range r on r.loan_id = s.loan_id
    left join fully_paid f
        on f.loan_id = s.loan_id
        and f.installment_no = s.installment_no
    where s.principal_due > 1
      and last_day(s.due_date) <= r.last_month_end
      and (f.paid_full_date is null or f.paid_full_date > last_day(s.due_date))
),
unpaid_months as (
    select *
    from (
        select
            loan_id,
            installment_no,
            due_date,
            principal_due,
            interest_due,
            paid_full_date,
            last_day(unnest(generate_series(
                date_trunc('month', due_date),
                date_trunc('month', least(coalesce(paid_full_date, last_month_end), last_month_end)),
                interval 1 month
            ))::date) as month_end
        from unpaid_spans
    )
    where paid_full_date is null
       or paid_full_date > month_end
),
unpaid_amounts as (
    select
        u.loan_id,
        u.month_end,
        min(u.due_date) as earliest_unpaid_due_date,
        sum(greatest(u.principal_due - coalesce(c.principal_paid_to_date, 0), 0)) as overdue_principal,
        sum(greatest(u.interest_due - coalesce(c.interest_paid_to_date, 0), 0)) as overdue_interest
    from unpaid_months u
    asof left join payments_cumulative c
        on c.loan_id = u.loan_id
        and c.installment_no = u.installment_no
        and c.paid_date <= u.month_end
    group by u.loan_id, u.month_end
),
derived as (
    select
        b.loan_id,
        b.month_end,
        coalesce(date_diff('day', a.earliest_unpaid_due_date, b.month_end), 0) as dpd,
        b.outstanding_principal,
        coalesce(a.overdue_principal, 0) as overdue_principal,
        coalesce(a.overdue_interest, 0) as overdue_interest,
        b.principal_paid,
        b.interest_paid,
        min(case when b.outstanding_principal <= 1 then b.month_end end) over (
            partition by b.loan_id
        ) as paid_off_month
    from balances b
    left join unpaid_amounts a
        on a.loan_id = b.loan_id
        and a.month_end = b.month_end
),
final as (
    select
        loan_id,
        month_end as snapshot_date,
        dpd,
        outstanding_principal,
        overdue_principal,
        overdue_interest,
        case when month_end = paid_off_month then 'paid_off' else 'active' end as status,
        principal_paid,
        interest_paid,
        null::decimal(18, 2) as charged_off_amount,
        null::decimal(18, 2) as recovered_amount,
        true as is_derived,
        $load_id as load_id
    from derived
    where paid_off_month is null
       or month_end <= paid_off_month
)
select *
from final;

-- name: ingest_fill_action_dpd
-- Fills collection_actions.dpd_at_action where it is missing, for one load, from the
-- month-end snapshots around the action date d (M = month-end of d, P = the month-end before):
-- dpd(M) - (M - d) when that is positive (the loan was already past due on d); else
-- dpd(P) + (d - P) when the loan was past due at P; else 0 when either snapshot exists.
-- Actions of loans without snapshots keep NULL. Returns nothing.
update collection_actions
set dpd_at_action = filled.dpd_at_action
from (
    with actions as (
        select
            action_id,
            loan_id,
            action_time::date as action_date,
            last_day(action_time::date) as month_end,
            last_day(date_trunc('month', action_time::date) - interval 1 day) as previous_month_end
        from collection_actions
        where load_id = $load_id
          and dpd_at_action is null
    ),
    estimated as (
        select
            a.action_id,
            a.loan_id,
            case
                when m.dpd - date_diff('day', a.action_date, a.month_end) > 0
                    then m.dpd - date_diff('day', a.action_date, a.month_end)
                when p.dpd > 0
                    then p.dpd + date_diff('day', a.previous_month_end, a.action_date)
                when m.loan_id is not null or p.loan_id is not null
                    then 0
            end as dpd_at_action
        from actions a
        left join loan_months m
            on m.loan_id = a.loan_id
            and m.snapshot_date = a.month_end
        left join loan_months p
            on p.loan_id = a.loan_id
            and p.snapshot_date = a.previous_month_end
    )
    select *
    from estimated
    where dpd_at_action is not null
) as filled
where collection_actions.load_id = $load_id
  and collection_actions.action_id = filled.action_id
  and collection_actions.loan_id = filled.loan_id;
