-- Reference SQL for tests/test_collections_facts.py: the collections and compliance queries
-- as they were before the reports read the collection fact tables. They rebuild episodes,
-- stage windows and call ranks from loan_months, loans and collection_actions at every
-- call. That is slow (20 s and 1 s on the 1,000,000-loan demo in benchmarks/RESULTS.md)
-- but independent of the fact tables, so the tests compare the fast queries with them.

-- name: reference_stage_channels
-- Returns one row per (stage entry, action channel); a stage entry without actions has one
-- row with a null channel, and its entry columns repeat on each of its channel rows.
-- An episode starts at the first month-end with dpd >= 1 after a month-end with dpd 0 (or
-- at a loan's first snapshot when that is already overdue). It ends at the first later
-- month-end that is current (cured), paid_off or charged_off, or at the end of the data.
-- A loan that becomes current by being restructured or extended ends its episode as
-- 'restructured', which is not a cure.
-- An episode enters a stage at its first month-end with dpd in that stage's range (early
-- 1-30, middle 31-90, late > 90), so an episode that starts in M1 and rolls to M2 enters
-- the early and then the middle stage. A stage is never re-entered after a later one.
-- The stage's actions run from the day after its entry month-end (from the first day past
-- due, start_date - entry_dpd + 1, for the episode's first stage) to the next stage's entry
-- month-end, the episode's end month-end or the last month-end of the data.
-- Columns:
--   loan_id VARCHAR; episode_no INTEGER (1-based within the loan);
--   episode_start_date DATE (month-end the episode started);
--   entry_date DATE (month-end the stage was entered); stage VARCHAR (early / middle /
--   late); entry_dpd INTEGER; entry_bucket INTEGER (1 = M1 ... 7 = M7+);
--   overdue_amount DECIMAL yuan (overdue principal + interest at entry, or the
--   outstanding principal when the tape has no overdue principal);
--   outstanding_principal DECIMAL yuan; product, province VARCHAR;
--   end_date DATE (month-end the episode ended, null when still open);
--   end_reason VARCHAR (cured / paid_off / restructured / charged_off / censored);
--   duration_months INTEGER (month-ends from stage entry to the episode's end, or to the
--   loan's last month-end when censored); cure_event BOOLEAN (ended cured or paid_off);
--   cured BOOLEAN (cured or paid_off by the horizon month-end after entry, null when that
--   month-end is not in the data and the episode is still open);
--   rolled_forward BOOLEAN (worse bucket or charged_off at the month-end after entry,
--   null when there is none, false when paid_off);
--   strategy VARCHAR (strategy of the stage's first action that has one);
--   strategy_count INTEGER (distinct strategies among the stage's actions);
--   stage_contacts INTEGER, stage_collected_amount DECIMAL yuan, stage_cost_amount
--   DECIMAL yuan (all the stage's actions);
--   channel VARCHAR; contacts INTEGER; collected_amount DECIMAL yuan; cost_amount DECIMAL
--   yuan (the channel's actions in the stage only).
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
        min(snapshot_date) as episode_start_date,
        arg_max_null(next_date, snapshot_date) as end_date,
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
        *,
        case
            when end_date is null then 'censored'
            when end_status = 'charged_off' then 'charged_off'
            when end_status = 'paid_off' then 'paid_off'
            when end_status in ('restructured', 'extended')
                and last_delinquent_status not in ('restructured', 'extended') then 'restructured'
            else 'cured'
        end as end_reason
    from episode_spans
),

staged_rows as (
    select
        *,
        case when dpd <= 30 then 1 when dpd <= 90 then 2 else 3 end as stage_rank
    from numbered
    where is_delinquent
),

ranked_rows as (
    select
        *,
        max(stage_rank) over (
            partition by loan_id, episode_no
            order by snapshot_date
            rows between unbounded preceding and 1 preceding
        ) as previous_max_rank
    from staged_rows
),

stage_entries as (
    select
        loan_id,
        episode_no,
        snapshot_date as entry_date,
        stage_rank,
        dpd as entry_dpd,
        overdue_amount,
        outstanding_principal,
        next_date,
        next_dpd,
        next_status,
        lead(snapshot_date) over (
            partition by loan_id, episode_no
            order by snapshot_date
        ) as next_stage_date
    from ranked_rows
    where previous_max_rank is null or stage_rank > previous_max_rank
),

judged as (
    select
        s.*,
        e.episode_start_date,
        e.end_date,
        e.end_reason,
        e.last_snapshot_date,
        case s.stage_rank when 1 then 'early' when 2 then 'middle' else 'late' end as stage,
        least(ceil(s.entry_dpd / 30.0), 7)::integer as entry_bucket,
        date_diff('month', s.entry_date, coalesce(e.end_date, e.last_snapshot_date)) as duration_months,
        e.end_reason in ('cured', 'paid_off') as cure_event,
        case
            when e.end_date is not null
                and e.end_date <= last_day(s.entry_date + to_months($horizon_months::integer))
                then e.end_reason in ('cured', 'paid_off')
            when e.last_snapshot_date >= last_day(s.entry_date + to_months($horizon_months::integer))
                then false
        end as cured,
        case
            when s.next_date is null then null
            when s.next_status = 'charged_off' then true
            when s.next_status = 'paid_off' then false
            else (case when s.next_dpd = 0 then 0 else least(ceil(s.next_dpd / 30.0), 7) end)
                > least(ceil(s.entry_dpd / 30.0), 7)
        end as rolled_forward,
        case
            when s.entry_date = e.episode_start_date then s.entry_date - s.entry_dpd + 1
            else s.entry_date + 1
        end as window_start
    from stage_entries as s
    inner join episodes as e
        on s.loan_id = e.loan_id
        and s.episode_no = e.episode_no
),

stage_actions as (
    select
        j.loan_id,
        j.episode_no,
        j.stage,
        a.action_id,
        a.action_time,
        a.channel,
        a.strategy,
        a.amount_collected,
        a.cost
    from judged as j
    cross join data_end as d
    inner join actions as a
        on a.loan_id = j.loan_id
        and a.action_time::date >= j.window_start
        and a.action_time::date <= coalesce(j.next_stage_date, j.end_date, d.end_date)
),

stage_totals as (
    select
        loan_id,
        episode_no,
        stage,
        arg_min(strategy, action_time) as strategy,
        count(distinct strategy) as strategy_count,
        count(*) as stage_contacts,
        coalesce(sum(amount_collected), 0) as stage_collected_amount,
        coalesce(sum(cost), 0) as stage_cost_amount
    from stage_actions
    group by
        loan_id,
        episode_no,
        stage
),

channel_totals as (
    select
        loan_id,
        episode_no,
        stage,
        channel,
        count(*) as contacts,
        coalesce(sum(amount_collected), 0) as collected_amount,
        coalesce(sum(cost), 0) as cost_amount
    from stage_actions
    group by
        loan_id,
        episode_no,
        stage,
        channel
),

final as (
    select
        j.loan_id,
        j.episode_no::integer as episode_no,
        j.episode_start_date,
        j.entry_date,
        j.stage,
        j.entry_dpd,
        j.entry_bucket,
        j.overdue_amount,
        j.outstanding_principal,
        l.product,
        l.province,
        j.end_date,
        j.end_reason,
        j.duration_months::integer as duration_months,
        j.cure_event,
        j.cured,
        j.rolled_forward,
        t.strategy,
        coalesce(t.strategy_count, 0)::integer as strategy_count,
        coalesce(t.stage_contacts, 0)::integer as stage_contacts,
        coalesce(t.stage_collected_amount, 0) as stage_collected_amount,
        coalesce(t.stage_cost_amount, 0) as stage_cost_amount,
        c.channel,
        coalesce(c.contacts, 0)::integer as contacts,
        coalesce(c.collected_amount, 0) as collected_amount,
        coalesce(c.cost_amount, 0) as cost_amount
    from judged as j
    inner join loans_in_scope as l
        on j.loan_id = l.loan_id
    left join stage_totals as t
        on j.loan_id = t.loan_id
        and j.episode_no = t.episode_no
        and j.stage = t.stage
    left join channel_totals as c
        on j.loan_id = c.loan_id
        and j.episode_no = c.episode_no
        and j.stage = c.stage
)

select *
from final
order by
    loan_id,
    episode_no,
    entry_date,
    channel;


-- name: reference_breaches
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
-- Columns: loan_id VARCHAR; action_id BIGINT; load_id BIGINT; action_time TIMESTAMP;
--   agent_id, team, strategy, channel, contact_target VARCHAR; rule VARCHAR;
--   call_of_day INTEGER (rank of the connected call that day, call_frequency only).
-- Parameters: shared filters, $as_of, $contact_channels VARCHAR[], $voice_channels
--   VARCHAR[], $quiet_start TIME (default 22:00:00), $quiet_end TIME (default 08:00:00),
--   $max_connected_calls INTEGER (default 3).
with

loans_in_scope as (
    select loan_id
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

actions as (
    select
        a.loan_id,
        a.action_id,
        a.load_id,
        a.action_time,
        a.agent_id,
        a.team,
        a.strategy,
        a.channel,
        a.contact_target,
        a.connected,
        coalesce(l.borrower_id, 'loan:' || a.loan_id) as borrower_key
    from collection_actions as a
    left join loans as l
        on a.loan_id = l.loan_id
    where $as_of is null or a.action_time < $as_of::date + 1
),

connected_calls as (
    select
        *,
        row_number() over (
            partition by borrower_key, action_time::date
            order by action_time, loan_id, action_id
        ) as call_of_day
    from actions
    where connected
      and list_contains($voice_channels::varchar[], channel)
),

breaches as (
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
        'contact_hours' as rule,
        null::integer as call_of_day
    from actions
    where list_contains($contact_channels::varchar[], channel)
      and (action_time::time >= $quiet_start::time or action_time::time < $quiet_end::time)
    union all
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
        'call_frequency' as rule,
        call_of_day::integer as call_of_day
    from connected_calls
    where call_of_day > $max_connected_calls
    union all
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
        'non_borrower_contact' as rule,
        null::integer as call_of_day
    from actions
    where list_contains($contact_channels::varchar[], channel)
      and contact_target in ('emergency_contact', 'third_party')
),

final as (
    select b.*
    from breaches as b
    inner join loans_in_scope as l
        on b.loan_id = l.loan_id
)

select *
from final
order by
    action_time,
    loan_id,
    action_id,
    rule;


-- name: reference_contact_counts
-- Returns the denominators of breach rates: one row per (month, agent_id, team, strategy)
-- with contact_count BIGINT = actions in $contact_channels on loans in the filters.
-- month DATE is the month-end of action_time; agent_id, team, strategy VARCHAR may be null.
-- Parameters: shared filters, $as_of, $contact_channels VARCHAR[].
with

loans_in_scope as (
    select loan_id
    from filtered_loans($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

contacts as (
    select
        last_day(a.action_time::date) as month,
        a.agent_id,
        a.team,
        a.strategy
    from collection_actions as a
    inner join loans_in_scope as l
        on a.loan_id = l.loan_id
    where list_contains($contact_channels::varchar[], a.channel)
      and ($as_of is null or a.action_time < $as_of::date + 1)
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


-- name: reference_restructured_loans
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
