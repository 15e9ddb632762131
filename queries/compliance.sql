-- Collection-conduct rules (contact hours, daily connected calls, contacts with anyone but
-- the borrower) and loan pricing against 4 x LPR, 24% and 36%. Shared filter parameters:
-- $products, $channels, $provinces, $grades, $vintage_from, $vintage_to; $as_of is the last
-- month-end used (null = all data).

-- name: compliance_breaches
-- Returns one row per (action, rule broken), for actions on loans in the filters.
-- Rules:
--   contact_hours: an action in $contact_channels at or after $quiet_start or before
--     $quiet_end (local time), connected or not;
--   call_frequency: the ($max_connected_calls + 1)-th and later connected call in
--     $voice_channels about one borrower on one calendar day, whoever answered. Calls are
--     counted per borrower_id across all loans, agents and agencies, or per loan when the
--     loan has no borrower_id, and calls on loans outside the filters still count;
--   non_borrower_contact: an action in $contact_channels whose contact_target is
--     emergency_contact or third_party.
-- Reads collection_action_facts, where each connected action already has its borrower
-- number and its order among that borrower's connected actions of the day.
-- Columns: loan_id VARCHAR; action_id BIGINT; load_id BIGINT; action_time TIMESTAMP;
--   agent_id, team, strategy, channel, contact_target VARCHAR; rule VARCHAR;
--   call_of_day INTEGER (rank of the connected call that day, call_frequency only).
-- Parameters: shared filters, $as_of, $contact_channels VARCHAR[], $voice_channels
--   VARCHAR[], $quiet_start TIME (default 22:00:00), $quiet_end TIME (default 08:00:00),
--   $max_connected_calls INTEGER (default 3).
with

-- Calls on loans outside the filters (or not in `loans`) still count towards a
-- borrower's calls of the day, so this reads all actions. Not materialised: each rule's
-- branch scans only the actions it needs.
actions as not materialized (
    select *
    from collection_action_facts
    where $as_of is null or action_time < $as_of::date + 1
),

loans_in_scope as (
    select loan_key
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

voice_calls as (
    select *
    from actions
    where connected
      and list_contains($voice_channels::varchar[], channel)
),

-- Only borrower-days with more connected calls than allowed can contain a breach.
crowded_days as (
    select
        borrower_number,
        action_date
    from voice_calls
    group by
        borrower_number,
        action_date
    having count(*) > $max_connected_calls
),

connected_calls as (
    select
        v.*,
        row_number() over (
            partition by v.borrower_number, v.action_date
            order by v.connected_order
        ) as call_of_day
    from voice_calls as v
    semi join crowded_days as c
        on c.borrower_number = v.borrower_number
        and c.action_date = v.action_date
),

breaches as (
    select
        loan_key,
        loan_id,
        action_id,
        load_id,
        action_time,
        agent_id,
        team,
        strategy,
        channel,
        contact_target,
        'contact_hours' as rule,
        null::integer as call_of_day
    from actions
    where list_contains($contact_channels::varchar[], channel)
      and (action_time::time >= $quiet_start::time or action_time::time < $quiet_end::time)
    union all
    select
        loan_key,
        loan_id,
        action_id,
        load_id,
        action_time,
        agent_id,
        team,
        strategy,
        channel,
        contact_target,
        'call_frequency' as rule,
        call_of_day::integer as call_of_day
    from connected_calls
    where call_of_day > $max_connected_calls
    union all
    select
        loan_key,
        loan_id,
        action_id,
        load_id,
        action_time,
        agent_id,
        team,
        strategy,
        channel,
        contact_target,
        'non_borrower_contact' as rule,
        null::integer as call_of_day
    from actions
    where list_contains($contact_channels::varchar[], channel)
      and contact_target in ('emergency_contact', 'third_party')
),

final as (
    select
        loan_id,
        action_id,
        load_id,
        action_time,
        agent_id,
        team,
        strategy,
        channel,
        contact_target,
        rule,
        call_of_day
    from breaches
    where loan_key in (select loan_key from loans_in_scope)
)

select *
from final
order by
    action_time,
    loan_id,
    action_id,
    rule;

-- name: compliance_contact_counts
-- Returns the denominators of breach rates: one row per (month, agent_id, team, strategy)
-- with contact_count BIGINT = actions in $contact_channels on loans in the filters.
-- month DATE is the month-end of action_time; agent_id, team, strategy VARCHAR may be null.
-- Parameters: shared filters, $as_of, $contact_channels VARCHAR[].
with

contacts as (
    select
        last_day(action_date) as month,
        agent_id,
        team,
        strategy
    from filtered_collection_action_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where list_contains($contact_channels::varchar[], channel)
      and ($as_of is null or action_time < $as_of::date + 1)
),

final as (
    select
        month,
        agent_id,
        team,
        strategy,
        count(*) as contact_count
    from contacts
    group by all
)

select *
from final
order by
    month,
    agent_id,
    team,
    strategy;

-- name: rate_cap_by_vintage
-- Returns one row per (product, vintage) of loans originated by the as-of month:
--   product VARCHAR; vintage DATE (first day of the origination month);
--   loans BIGINT; principal DECIMAL yuan; rated_loans BIGINT (annual_rate present);
--   lpr_1y_pct DOUBLE (1-year LPR in %, the latest announcement in or before the
--   origination month; null before the first announcement in $lpr_dates);
--   above_4lpr_loans BIGINT, above_4lpr_principal DECIMAL yuan (annual_rate > 4 x LPR;
--   null when lpr_1y_pct is null);
--   above_24_loans, above_36_loans BIGINT, above_24_principal, above_36_principal DECIMAL
--   yuan (annual_rate > 0.24 / 0.36).
-- Rates are compared after rounding to 6 decimals, so 0.154 is not above 4 x 3.85%.
-- Parameters: shared filters, $as_of, $lpr_dates DATE[] and $lpr_pcts DOUBLE[] (the LPR
-- table: announcement dates and 1-year rates in %, same order).
with

lpr as (
    select
        unnest($lpr_dates::date[]) as announcement_date,
        unnest($lpr_pcts::double[]) as lpr_1y_pct
),

lpr_months as (
    select
        last_day(announcement_date) as month_end,
        arg_max(lpr_1y_pct, announcement_date) as lpr_1y_pct
    from lpr
    group by last_day(announcement_date)
),

loans_in_scope as (
    select
        product,
        origination_date,
        last_day(origination_date) as origination_month_end,
        principal,
        annual_rate
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
    where $as_of is null or origination_date <= $as_of::date
),

priced as (
    select
        l.*,
        m.lpr_1y_pct
    from loans_in_scope as l
    asof left join lpr_months as m
        on l.origination_month_end >= m.month_end
),

final as (
    select
        product,
        date_trunc('month', origination_date)::date as vintage,
        count(*) as loans,
        sum(principal) as principal,
        count(annual_rate) as rated_loans,
        max(lpr_1y_pct) as lpr_1y_pct,
        case when max(lpr_1y_pct) is not null then
            count(*) filter (where round(annual_rate, 6) > round(4 * lpr_1y_pct / 100, 6))
        end as above_4lpr_loans,
        case when max(lpr_1y_pct) is not null then
            coalesce(sum(principal) filter (where round(annual_rate, 6) > round(4 * lpr_1y_pct / 100, 6)), 0)
        end as above_4lpr_principal,
        count(*) filter (where round(annual_rate, 6) > 0.24) as above_24_loans,
        count(*) filter (where round(annual_rate, 6) > 0.36) as above_36_loans,
        coalesce(sum(principal) filter (where round(annual_rate, 6) > 0.24), 0) as above_24_principal,
        coalesce(sum(principal) filter (where round(annual_rate, 6) > 0.36), 0) as above_36_principal
    from priced
    group by
        product,
        date_trunc('month', origination_date)
)

select *
from final
order by
    product,
    vintage;
