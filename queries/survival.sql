-- name: survival_loans
-- Returns one row per loan of filtered_loans originated on or before $as_of, with its time to
-- default on the months-on-book scale, built from loan_months up to $as_of. MOB counts whole
-- months from the origination month (MOB 0) to the snapshot month. Columns:
--   loan_id VARCHAR
--   record_status VARCHAR: 'ok' (usable), 'no_snapshots' (no month-end up to $as_of),
--     'no_follow_up' (censored where it enters, e.g. originated in the as-of month),
--     'prevalent_default' (already past $event_dpd dpd, or charged off, when first seen at
--     MOB > 0 and not within its first month seen), 'zero_duration' (default or payoff at
--     MOB 0), 'negative_duration' (a month-end before the origination month)
--   entry_mob INTEGER: MOB at which the loan enters the risk set (left truncation): the
--     first MOB seen, or one less when the loan's first month-end seen already shows the
--     outcome (dpd crossed $event_dpd during that month, or paid off in that month)
--   duration_mob INTEGER: MOB of the event (default or prepayment) or of censoring
--   event_type INTEGER: 1 default (first month-end with dpd > $event_dpd, or charged off),
--     2 prepayment (paid off before MOB term_months), 0 censored (paid off at or after
--     maturity, paid off with no term_months, or still active at the last month-end)
--   first_mob, last_mob, default_mob, paid_off_mob INTEGER: MOB of the first and last
--     month-end seen, of the first default month-end and of the first paid_off month-end
--   term_months INTEGER, origination_date DATE, vintage_year INTEGER
--   product, channel, province, grade, guarantee_type VARCHAR, is_first_loan BOOLEAN
--   principal DOUBLE (yuan), annual_rate DOUBLE (fraction), score DOUBLE,
--   borrower_age INTEGER (years)
with

loans_in_scope as (
    select *
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where origination_date <= $as_of
),

month_ends as (
    select
        months.loan_id,
        months.dpd,
        months.status,
        day(months.snapshot_date) as days_in_month,
        (year(months.snapshot_date) - year(loans_in_scope.origination_date)) * 12
            + month(months.snapshot_date) - month(loans_in_scope.origination_date) as mob
    from loan_months as months
    inner join loans_in_scope
        on months.loan_id = loans_in_scope.loan_id
    where months.snapshot_date <= $as_of
),

per_loan as (
    select
        loan_id,
        min(mob) as first_mob,
        max(mob) as last_mob,
        min(mob) filter (where dpd > $event_dpd or status = 'charged_off') as default_mob,
        min(mob) filter (where status = 'paid_off') as paid_off_mob,
        -- The first MOB at which the loan was already past the threshold one month-end
        -- earlier: dpd minus the days of the month, if nothing was paid since, or charged off.
        min(mob) filter (
            where dpd - days_in_month > $event_dpd or status = 'charged_off'
        ) as default_before_mob
    from month_ends
    group by loan_id
),

outcomes as (
    select
        per_loan.*,
        loans_in_scope.term_months,
        case
            when default_mob is not null
                and (paid_off_mob is null or default_mob <= paid_off_mob) then 1
            when paid_off_mob is not null
                and paid_off_mob < loans_in_scope.term_months then 2
            else 0
        end as event_type,
        -- In default when first seen at MOB > 0, and already one month-end earlier.
        coalesce(default_before_mob = first_mob and first_mob > 0, false) as is_prevalent_default
    from per_loan
    inner join loans_in_scope
        on per_loan.loan_id = loans_in_scope.loan_id
),

timed as (
    select
        *,
        case
            when event_type = 1 then default_mob
            when paid_off_mob is not null then paid_off_mob
            else last_mob
        end as duration_mob
    from outcomes
),

entered as (
    select
        *,
        case
            when first_mob > 0 and event_type > 0 and duration_mob = first_mob then first_mob - 1
            else first_mob
        end as entry_mob
    from timed
),

final as (
    select
        loans_in_scope.loan_id,
        case
            when entered.loan_id is null then 'no_snapshots'
            when entered.first_mob < 0 then 'negative_duration'
            when entered.event_type > 0 and entered.duration_mob <= 0 then 'zero_duration'
            when entered.is_prevalent_default then 'prevalent_default'
            when entered.duration_mob <= entered.entry_mob then 'no_follow_up'
            else 'ok'
        end as record_status,
        entered.entry_mob,
        entered.duration_mob,
        entered.event_type,
        entered.first_mob,
        entered.last_mob,
        entered.default_mob,
        entered.paid_off_mob,
        loans_in_scope.term_months,
        loans_in_scope.origination_date,
        year(loans_in_scope.origination_date) as vintage_year,
        loans_in_scope.product,
        loans_in_scope.channel,
        loans_in_scope.province,
        loans_in_scope.grade,
        loans_in_scope.guarantee_type,
        loans_in_scope.is_first_loan,
        loans_in_scope.principal::double as principal,
        loans_in_scope.annual_rate,
        loans_in_scope.score,
        loans_in_scope.borrower_age
    from loans_in_scope
    left join entered
        on loans_in_scope.loan_id = entered.loan_id
)

select *
from final
order by loan_id;


-- name: survival_attribute_values
-- Returns the value of one extra attribute ($attribute, a header kept in loan_attributes)
-- for the loans of filtered_loans originated on or before $as_of. Columns:
--   loan_id VARCHAR, attribute_value VARCHAR (text as imported; the latest load wins)
with

loans_in_scope as (
    select loan_id
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where origination_date <= $as_of
),

attribute_rows as (
    select
        loan_id,
        arg_max(value, load_id) as attribute_value
    from loan_attributes
    where attribute = $attribute
    group by loan_id
),

final as (
    select
        attribute_rows.loan_id,
        attribute_rows.attribute_value
    from attribute_rows
    inner join loans_in_scope
        on attribute_rows.loan_id = loans_in_scope.loan_id
)

select *
from final
order by loan_id;


-- name: survival_attribute_names
-- Returns the extra attributes (loan_attributes) offered as segments and covariates.
-- Columns: attribute VARCHAR (header as imported), loan_count BIGINT (loans with a value),
--   value_count BIGINT (distinct values)
with

final as (
    select
        attribute,
        count(distinct loan_id) as loan_count,
        count(distinct value) as value_count
    from loan_attributes
    group by attribute
)

select *
from final
order by attribute;
