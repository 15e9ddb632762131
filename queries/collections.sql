-- Collection episodes built from month-end snapshots and collection actions, and the
-- restructured / extended loans panel. Shared filter parameters: $products, $channels,
-- $provinces, $grades, $vintage_from, $vintage_to; $as_of is the last month-end used
-- (null = all data).

-- name: collection_episode_channels
-- Returns one row per (collection episode, action channel); an episode without actions has
-- one row with a null channel. Episode columns repeat on each of its channel rows.
-- An episode starts at the first month-end with dpd >= 1 after a month-end with dpd 0 (or
-- at a loan's first snapshot when that is already overdue) and ends at the first later
-- month-end that is current (cured), paid_off, charged_off, or at the end of the data. A
-- loan that becomes current by being restructured or extended ends its episode as
-- 'restructured', which is not a cure.
-- Actions belong to an episode from its first day past due (start_date - entry_dpd + 1)
-- to its end month-end (or the last month-end of the data).
-- Columns:
--   loan_id VARCHAR; episode_no INTEGER (1-based within the loan);
--   start_date DATE (month-end of entry); stage VARCHAR (early dpd 1-30, middle 31-90,
--   late > 90); entry_dpd INTEGER; entry_bucket INTEGER (1 = M1 ... 7 = M7+);
--   overdue_amount DECIMAL yuan (overdue principal + interest at entry; the outstanding
--   principal when the tape has no overdue principal); outstanding_principal DECIMAL yuan;
--   product, province VARCHAR;
--   end_date DATE (month-end the episode ended, null when still open);
--   end_reason VARCHAR (cured / paid_off / restructured / charged_off / censored);
--   duration_months INTEGER (month-ends from entry to the end, or to the loan's last
--   month-end when censored); cure_event BOOLEAN (ended cured or paid_off);
--   cured BOOLEAN (cured or paid_off by the horizon month-end, null when not judged);
--   rolled_forward BOOLEAN (worse bucket or charged_off at the next month-end, null when
--   there is no next month-end; false when paid_off);
--   strategy VARCHAR (strategy of the episode's first action that has one);
--   strategy_count INTEGER (distinct strategies in the episode);
--   episode_contacts INTEGER, episode_collected_amount DECIMAL yuan, episode_cost_amount
--   DECIMAL yuan (all the episode's actions);
--   channel VARCHAR; contacts INTEGER; collected_amount DECIMAL yuan; cost_amount DECIMAL
--   yuan (the channel's actions only).
-- Parameters: shared filters, $as_of, $horizon_months (cure horizon in month-ends, 1 = by
-- the next month-end).
with

loans_in_scope as (
    select
        loan_id,
        product,
        province
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

months as (
    select
        m.loan_id,
        m.snapshot_date,
        m.dpd,
        m.status,
        m.outstanding_principal,
        case
            when m.overdue_principal is null then m.outstanding_principal
            else m.overdue_principal + coalesce(m.overdue_interest, 0)
        end as overdue_amount
    from loan_months as m
    inner join loans_in_scope as l
        on m.loan_id = l.loan_id
    where $as_of is null or m.snapshot_date <= $as_of::date
),

data_end as (
    select
        coalesce($as_of::date, max(snapshot_date)) as end_date
    from months
),

actions as (
    select
        a.loan_id,
        a.action_id,
        a.action_time,
        a.channel,
        a.strategy,
        a.amount_collected,
        a.cost
    from collection_actions as a
    inner join loans_in_scope as l
        on a.loan_id = l.loan_id
    where $as_of is null or a.action_time < $as_of::date + 1
),

flagged as (
    select
        *,
        dpd >= 1 and status not in ('paid_off', 'charged_off') as is_delinquent,
        lag(dpd >= 1 and status not in ('paid_off', 'charged_off')) over loan_window as previous_delinquent,
        lead(snapshot_date) over loan_window as next_date,
        lead(dpd) over loan_window as next_dpd,
        lead(status) over loan_window as next_status,
        max(snapshot_date) over (partition by loan_id) as last_snapshot_date
    from months
    window loan_window as (partition by loan_id order by snapshot_date)
),

numbered as (
    select
        *,
        sum(case when is_delinquent and not coalesce(previous_delinquent, false) then 1 else 0 end)
            over (partition by loan_id order by snapshot_date rows unbounded preceding) as episode_no
    from flagged
),

episode_spans as (
    select
        loan_id,
        episode_no,
        min(snapshot_date) as start_date,
        arg_min_null(dpd, snapshot_date) as entry_dpd,
        arg_min_null(overdue_amount, snapshot_date) as overdue_amount,
        arg_min_null(outstanding_principal, snapshot_date) as outstanding_principal,
        arg_min_null(next_date, snapshot_date) as next_date,
        arg_min_null(next_dpd, snapshot_date) as next_dpd,
        arg_min_null(next_status, snapshot_date) as next_status,
        arg_max_null(next_date, snapshot_date) as end_date,
        arg_max_null(next_dpd, snapshot_date) as end_dpd,
        arg_max_null(next_status, snapshot_date) as end_status,
        arg_max_null(status, snapshot_date) as last_delinquent_status,
        max(last_snapshot_date) as last_snapshot_date
    from numbered
    where is_delinquent
    group by
        loan_id,
        episode_no
),

episodes as (
    select
        s.*,
        case
            when s.entry_dpd <= 30 then 'early'
            when s.entry_dpd <= 90 then 'middle'
            else 'late'
        end as stage,
        least(ceil(s.entry_dpd / 30.0), 7)::integer as entry_bucket,
        case
            when s.end_date is null then 'censored'
            when s.end_status = 'charged_off' then 'charged_off'
            when s.end_status = 'paid_off' then 'paid_off'
            when s.end_status in ('restructured', 'extended')
                and s.last_delinquent_status not in ('restructured', 'extended') then 'restructured'
            else 'cured'
        end as end_reason,
        last_day(s.start_date + to_months($horizon_months::integer)) as horizon_date
    from episode_spans as s
),

judged as (
    select
        e.*,
        date_diff('month', e.start_date, coalesce(e.end_date, e.last_snapshot_date)) as duration_months,
        e.end_reason in ('cured', 'paid_off') as cure_event,
        case
            when e.end_date is not null and e.end_date <= e.horizon_date
                then e.end_reason in ('cured', 'paid_off')
            when e.last_snapshot_date >= e.horizon_date then false
        end as cured,
        case
            when e.next_date is null then null
            when e.next_status = 'charged_off' then true
            when e.next_status = 'paid_off' then false
            else (case when e.next_dpd = 0 then 0 else least(ceil(e.next_dpd / 30.0), 7) end) > e.entry_bucket
        end as rolled_forward
    from episodes as e
),

episode_actions as (
    select
        e.loan_id,
        e.episode_no,
        a.action_id,
        a.action_time,
        a.channel,
        a.strategy,
        a.amount_collected,
        a.cost
    from judged as e
    cross join data_end as d
    inner join actions as a
        on a.loan_id = e.loan_id
        and a.action_time::date >= e.start_date - e.entry_dpd + 1
        and a.action_time::date <= coalesce(e.end_date, d.end_date)
),

episode_totals as (
    select
        loan_id,
        episode_no,
        arg_min(strategy, action_time) as strategy,
        count(distinct strategy) as strategy_count,
        count(*) as episode_contacts,
        coalesce(sum(amount_collected), 0) as episode_collected_amount,
        coalesce(sum(cost), 0) as episode_cost_amount
    from episode_actions
    group by
        loan_id,
        episode_no
),

channel_totals as (
    select
        loan_id,
        episode_no,
        channel,
        count(*) as contacts,
        coalesce(sum(amount_collected), 0) as collected_amount,
        coalesce(sum(cost), 0) as cost_amount
    from episode_actions
    group by
        loan_id,
        episode_no,
        channel
),

final as (
    select
        e.loan_id,
        e.episode_no::integer as episode_no,
        e.start_date,
        e.stage,
        e.entry_dpd,
        e.entry_bucket,
        e.overdue_amount,
        e.outstanding_principal,
        l.product,
        l.province,
        e.end_date,
        e.end_reason,
        e.duration_months::integer as duration_months,
        e.cure_event,
        e.cured,
        e.rolled_forward,
        t.strategy,
        coalesce(t.strategy_count, 0)::integer as strategy_count,
        coalesce(t.episode_contacts, 0)::integer as episode_contacts,
        coalesce(t.episode_collected_amount, 0) as episode_collected_amount,
        coalesce(t.episode_cost_amount, 0) as episode_cost_amount,
        c.channel,
        coalesce(c.contacts, 0)::integer as contacts,
        coalesce(c.collected_amount, 0) as collected_amount,
        coalesce(c.cost_amount, 0) as cost_amount
    from judged as e
    inner join loans_in_scope as l
        on e.loan_id = l.loan_id
    left join episode_totals as t
        on e.loan_id = t.loan_id
        and e.episode_no = t.episode_no
    left join channel_totals as c
        on e.loan_id = c.loan_id
        and e.episode_no = c.episode_no
)

select *
from final
order by
    loan_id,
    episode_no,
    channel;

-- name: restructured_loans
-- Returns one row per loan that was restructured (债务重组) or extended (展期) by the as-of
-- month: a snapshot with status restructured/extended, or a restructure/extension action.
-- Columns:
--   loan_id VARCHAR; product VARCHAR;
--   kind VARCHAR (restructured / extended, the first one seen);
--   event_month DATE (month-end of the first restructure or extension);
--   balance_at_event DECIMAL yuan (outstanding principal at that month-end, null when the
--   loan has no snapshot then); current_balance DECIMAL yuan (outstanding principal at the
--   loan's last month-end when still active, else 0);
--   redefault_6m, redefault_12m BOOLEAN (dpd > $redefault_dpd or charged_off at a month-end
--   in the 6 / 12 months after event_month; null when that window is not observed yet);
-- Parameters: shared filters, $as_of, $redefault_dpd (days, default 30).
with

loans_in_scope as (
    select
        loan_id,
        product
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

months as (
    select
        m.loan_id,
        m.snapshot_date,
        m.dpd,
        m.status,
        m.outstanding_principal
    from loan_months as m
    inner join loans_in_scope as l
        on m.loan_id = l.loan_id
    where $as_of is null or m.snapshot_date <= $as_of::date
),

marks as (
    select
        loan_id,
        snapshot_date as event_month,
        status as kind
    from months
    where status in ('restructured', 'extended')
    union all
    select
        a.loan_id,
        last_day(a.action_time::date) as event_month,
        case when a.channel = 'restructure' then 'restructured' else 'extended' end as kind
    from collection_actions as a
    inner join loans_in_scope as l
        on a.loan_id = l.loan_id
    where a.channel in ('restructure', 'extension')
      and ($as_of is null or a.action_time < $as_of::date + 1)
),

first_marks as (
    select
        loan_id,
        min(event_month) as event_month,
        arg_min(kind, event_month) as kind
    from marks
    group by loan_id
),

loan_ends as (
    select
        loan_id,
        max(snapshot_date) as last_snapshot_date,
        arg_max(status, snapshot_date) as last_status,
        arg_max(outstanding_principal, snapshot_date) as last_balance
    from months
    group by loan_id
),

redefaults as (
    select
        f.loan_id,
        min(m.snapshot_date) as redefault_date
    from first_marks as f
    inner join months as m
        on m.loan_id = f.loan_id
        and m.snapshot_date > f.event_month
        and (m.dpd > $redefault_dpd or m.status = 'charged_off')
    group by f.loan_id
),

final as (
    select
        f.loan_id,
        l.product,
        f.kind,
        f.event_month,
        m.outstanding_principal as balance_at_event,
        case when e.last_status in ('paid_off', 'charged_off') then 0 else coalesce(e.last_balance, 0) end
            as current_balance,
        case
            when r.redefault_date <= last_day(f.event_month + to_months(6)) then true
            when e.last_snapshot_date >= last_day(f.event_month + to_months(6)) then false
            when e.last_status in ('paid_off', 'charged_off') then false
        end as redefault_6m,
        case
            when r.redefault_date <= last_day(f.event_month + to_months(12)) then true
            when e.last_snapshot_date >= last_day(f.event_month + to_months(12)) then false
            when e.last_status in ('paid_off', 'charged_off') then false
        end as redefault_12m
    from first_marks as f
    inner join loans_in_scope as l
        on f.loan_id = l.loan_id
    left join months as m
        on m.loan_id = f.loan_id
        and m.snapshot_date = f.event_month
    left join loan_ends as e
        on e.loan_id = f.loan_id
    left join redefaults as r
        on r.loan_id = f.loan_id
)

select *
from final
order by loan_id;
