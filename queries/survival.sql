-- name: survival_loans
-- Returns one row per loan of filtered_loans originated on or before $as_of, with its time to
-- default on the months-on-book scale, built from the month-end rows up to $as_of (the fact
-- tables loan_facts, month_facts and loan_survival_facts). MOB counts whole months from the
-- origination month (MOB 0) to the snapshot month. Columns:
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

as_of_month as (
    -- Month number of the last month-end on or before $as_of.
    select
        year($as_of::date + 1) * 12 + month($as_of::date + 1) - 2 as month_number
),

loans_in_scope as (
    select
        l.loan_key,
        l.loan_id,
        l.origination_date,
        l.origination_month,
        l.first_month,
        l.last_month,
        l.term_months,
        l.principal,
        l.product,
        l.channel,
        l.province,
        l.grade,
        -- Where the first and last MOB and the event MOBs come from. 'none': the loan has
        -- no month-end row up to $as_of. 'stored': all of its rows lie on or before the
        -- as-of month and loan_survival_facts has the threshold. 'recompute': anything
        -- else, so they are computed from its month_facts rows up to $as_of.
        case
            when l.first_month is null or l.first_month > a.month_number then 'none'
            when l.last_month <= a.month_number and $event_dpd in (30, 60, 90) then 'stored'
            else 'recompute'
        end as source
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to) as l
    cross join as_of_month as a
    where l.origination_date <= $as_of
),

stored_per_loan as (
    select
        l.*,
        l.first_month - l.origination_month as first_mob,
        l.last_month - l.origination_month as last_mob,
        case $event_dpd
            when 30 then s.default_mob_30
            when 60 then s.default_mob_60
            when 90 then s.default_mob_90
        end as default_mob,
        s.paid_off_mob,
        case $event_dpd
            when 30 then s.default_before_mob_30
            when 60 then s.default_before_mob_60
            when 90 then s.default_before_mob_90
        end as default_before_mob
    from loans_in_scope as l
    left join loan_survival_facts as s
        on s.loan_key = l.loan_key
    where l.source = 'stored'
),

recomputed_mobs as (
    select
        m.loan_key,
        min(m.mob) as first_mob,
        max(m.mob) as last_mob,
        min(m.mob) filter (where m.dpd > $event_dpd or m.status = 'charged_off') as default_mob,
        min(m.mob) filter (where m.status = 'paid_off') as paid_off_mob,
        -- The first MOB at which the loan was already past the threshold one month-end
        -- earlier: dpd minus the days of the month, if nothing was paid since, or charged off.
        min(m.mob) filter (
            where m.dpd - day(m.snapshot_date) > $event_dpd or m.status = 'charged_off'
        ) as default_before_mob
    from month_facts as m
    where m.snapshot_date <= $as_of
      and m.loan_key in (select loan_key from loans_in_scope where source = 'recompute')
    group by m.loan_key
),

recomputed_per_loan as (
    select
        l.*,
        r.first_mob,
        r.last_mob,
        r.default_mob,
        r.paid_off_mob,
        r.default_before_mob
    from recomputed_mobs as r
    inner join loans_in_scope as l
        on l.loan_key = r.loan_key
),

unseen_loans as (
    select
        l.*,
        null::integer as first_mob,
        null::integer as last_mob,
        null::integer as default_mob,
        null::integer as paid_off_mob,
        null::integer as default_before_mob
    from loans_in_scope as l
    where l.source = 'none'
),

per_loan as (
    select * from stored_per_loan
    union all
    select * from recomputed_per_loan
    union all
    select * from unseen_loans
),

outcomes as (
    select
        *,
        case
            when default_mob is not null
                and (paid_off_mob is null or default_mob <= paid_off_mob) then 1
            when paid_off_mob is not null
                and paid_off_mob < term_months then 2
            when source <> 'none' then 0
        end as event_type,
        -- In default when first seen at MOB > 0, and already one month-end earlier.
        coalesce(default_before_mob = first_mob and first_mob > 0, false) as is_prevalent_default
    from per_loan
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

checked as (
    select
        *,
        case
            when source = 'none' then 'no_snapshots'
            when first_mob < 0 then 'negative_duration'
            when event_type > 0 and duration_mob <= 0 then 'zero_duration'
            when is_prevalent_default then 'prevalent_default'
            when duration_mob <= entry_mob then 'no_follow_up'
            else 'ok'
        end as record_status
    from entered
),

final as (
    select
        checked.loan_id,
        checked.record_status,
        checked.entry_mob,
        checked.duration_mob,
        checked.event_type,
        checked.first_mob,
        checked.last_mob,
        checked.default_mob,
        checked.paid_off_mob,
        checked.term_months,
        checked.origination_date,
        year(checked.origination_date) as vintage_year,
        checked.product,
        checked.channel,
        checked.province,
        checked.grade,
        loans.guarantee_type,
        loans.is_first_loan,
        checked.principal::double as principal,
        loans.annual_rate,
        loans.score,
        loans.borrower_age
    from checked
    inner join loans
        on loans.loan_id = checked.loan_id
)

select *
from final
order by loan_id;


-- name: survival_counts
-- Returns the survival records of survival_loans (same parameters, same rules) counted per
-- (record_status, segment value, entry_mob, duration_mob, event_type), so a Kaplan-Meier fit
-- reads thousands of rows instead of one per loan. The segment is the loan column named by
-- $segment (product, channel, province, grade, vintage_year, is_first_loan, guarantee_type),
-- or the extra attribute $attribute (loan_attributes, the latest load wins) when $attribute
-- is not null, or $all_label for every loan when both are null. A missing value is
-- $missing_label. Rows of loans left out (record_status other than 'ok') carry only the
-- status and the counts. Columns:
--   record_status VARCHAR: as in survival_loans
--   segment VARCHAR: segment value as text (is_first_loan as 'True'/'False'); null when not ok
--   entry_mob, duration_mob, event_type INTEGER: as in survival_loans; null when not ok
--   loans BIGINT: loans in the row
--   first_loan_id VARCHAR: the smallest loan_id in the row
--   unknown_maturity_loans BIGINT: loans that paid off but have no term_months
--   rejected_loan_ids VARCHAR[]: the first $max_ids_named loan ids, in loan_id order, of
--     rows with record_status 'zero_duration' or 'negative_duration'; null otherwise
with

as_of_month as (
    -- Month number of the last month-end on or before $as_of.
    select
        year($as_of::date + 1) * 12 + month($as_of::date + 1) - 2 as month_number
),

loans_in_scope as (
    select
        l.loan_key,
        l.loan_id,
        l.origination_date,
        l.origination_month,
        l.first_month,
        l.last_month,
        l.term_months,
        l.principal,
        l.product,
        l.channel,
        l.province,
        l.grade,
        -- Where the first and last MOB and the event MOBs come from. 'none': the loan has
        -- no month-end row up to $as_of. 'stored': all of its rows lie on or before the
        -- as-of month and loan_survival_facts has the threshold. 'recompute': anything
        -- else, so they are computed from its month_facts rows up to $as_of.
        case
            when l.first_month is null or l.first_month > a.month_number then 'none'
            when l.last_month <= a.month_number and $event_dpd in (30, 60, 90) then 'stored'
            else 'recompute'
        end as source
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to) as l
    cross join as_of_month as a
    where l.origination_date <= $as_of
),

stored_per_loan as (
    select
        l.*,
        l.first_month - l.origination_month as first_mob,
        l.last_month - l.origination_month as last_mob,
        case $event_dpd
            when 30 then s.default_mob_30
            when 60 then s.default_mob_60
            when 90 then s.default_mob_90
        end as default_mob,
        s.paid_off_mob,
        case $event_dpd
            when 30 then s.default_before_mob_30
            when 60 then s.default_before_mob_60
            when 90 then s.default_before_mob_90
        end as default_before_mob
    from loans_in_scope as l
    left join loan_survival_facts as s
        on s.loan_key = l.loan_key
    where l.source = 'stored'
),

recomputed_mobs as (
    select
        m.loan_key,
        min(m.mob) as first_mob,
        max(m.mob) as last_mob,
        min(m.mob) filter (where m.dpd > $event_dpd or m.status = 'charged_off') as default_mob,
        min(m.mob) filter (where m.status = 'paid_off') as paid_off_mob,
        -- The first MOB at which the loan was already past the threshold one month-end
        -- earlier: dpd minus the days of the month, if nothing was paid since, or charged off.
        min(m.mob) filter (
            where m.dpd - day(m.snapshot_date) > $event_dpd or m.status = 'charged_off'
        ) as default_before_mob
    from month_facts as m
    where m.snapshot_date <= $as_of
      and m.loan_key in (select loan_key from loans_in_scope where source = 'recompute')
    group by m.loan_key
),

recomputed_per_loan as (
    select
        l.*,
        r.first_mob,
        r.last_mob,
        r.default_mob,
        r.paid_off_mob,
        r.default_before_mob
    from recomputed_mobs as r
    inner join loans_in_scope as l
        on l.loan_key = r.loan_key
),

unseen_loans as (
    select
        l.*,
        null::integer as first_mob,
        null::integer as last_mob,
        null::integer as default_mob,
        null::integer as paid_off_mob,
        null::integer as default_before_mob
    from loans_in_scope as l
    where l.source = 'none'
),

per_loan as (
    select * from stored_per_loan
    union all
    select * from recomputed_per_loan
    union all
    select * from unseen_loans
),

outcomes as (
    select
        *,
        case
            when default_mob is not null
                and (paid_off_mob is null or default_mob <= paid_off_mob) then 1
            when paid_off_mob is not null
                and paid_off_mob < term_months then 2
            when source <> 'none' then 0
        end as event_type,
        -- In default when first seen at MOB > 0, and already one month-end earlier.
        coalesce(default_before_mob = first_mob and first_mob > 0, false) as is_prevalent_default
    from per_loan
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

checked as (
    select
        *,
        case
            when source = 'none' then 'no_snapshots'
            when first_mob < 0 then 'negative_duration'
            when event_type > 0 and duration_mob <= 0 then 'zero_duration'
            when is_prevalent_default then 'prevalent_default'
            when duration_mob <= entry_mob then 'no_follow_up'
            else 'ok'
        end as record_status
    from entered
),

loan_extras as (
    select
        loan_id,
        guarantee_type,
        case when is_first_loan then 'True' when not is_first_loan then 'False' end
            as is_first_loan
    from loans
    where $segment in ('guarantee_type', 'is_first_loan')
),

attribute_rows as (
    select
        loan_id,
        arg_max(value, load_id) as attribute_value
    from loan_attributes
    where attribute = $attribute
    group by loan_id
),

segmented as (
    select
        checked.*,
        case
            when $attribute is not null then attribute_rows.attribute_value
            when $segment is null then $all_label
            when $segment = 'product' then checked.product
            when $segment = 'channel' then checked.channel
            when $segment = 'province' then checked.province
            when $segment = 'grade' then checked.grade
            when $segment = 'vintage_year' then year(checked.origination_date)::varchar
            when $segment = 'is_first_loan' then loan_extras.is_first_loan
            when $segment = 'guarantee_type' then loan_extras.guarantee_type
        end as segment_value
    from checked
    left join loan_extras
        on loan_extras.loan_id = checked.loan_id
    left join attribute_rows
        on attribute_rows.loan_id = checked.loan_id
),

final as (
    select
        record_status,
        case when record_status = 'ok' then coalesce(segment_value, $missing_label) end
            as segment,
        case when record_status = 'ok' then entry_mob end as entry_mob,
        case when record_status = 'ok' then duration_mob end as duration_mob,
        case when record_status = 'ok' then event_type end as event_type,
        count(*) as loans,
        min(loan_id) as first_loan_id,
        count(*) filter (where paid_off_mob is not null and term_months is null)
            as unknown_maturity_loans,
        list_slice(
            list_sort(
                list(loan_id) filter (
                    where record_status in ('zero_duration', 'negative_duration')
                )
            ),
            1,
            $max_ids_named
        ) as rejected_loan_ids
    from segmented
    group by all
)

select *
from final
order by record_status, segment, entry_mob, duration_mob, event_type;


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
