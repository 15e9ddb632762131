-- Collections and compliance fact tables (see the end of schema.sql), rebuilt by
-- ingest/facts.py after the loan and month fact tables, in the order below. Each step
-- empties and refills its own table and returns nothing. Episodes, stage entries and
-- action windows follow the rules documented at collection_stage_entries in
-- queries/collections.sql, applied to all the data. The reports cut them at the as-of month.

-- name: facts_collection_actions
-- Refills collection_action_facts: every collection action with its loan_key and borrower
-- number, and for connected actions the order used by the call-frequency rule. The
-- borrower is borrower_id, or 'loan:' || loan_id when the loan has none or is not in `loans`.
delete from collection_action_facts;
insert into collection_action_facts
with

-- The loans that have actions, each with its borrower as a number: joining 1.5 million
-- actions to this short list is cheaper than to every loan, and the windows below then
-- partition by integers instead of text.
action_loans as (
    select
        d.loan_id,
        f.loan_key,
        coalesce(f.borrower_id, 'loan:' || d.loan_id) as borrower_key,
        f.product,
        f.channel as loan_channel,
        f.province,
        f.grade,
        f.origination_date
    from (select distinct loan_id from collection_actions) as d
    left join loan_facts as f
        on f.loan_id = d.loan_id
),

numbered_loans as (
    select
        * exclude (borrower_key),
        dense_rank() over (order by borrower_key)::integer as borrower_number
    from action_loans
),

-- Not materialised: each branch below joins only the actions it keeps.
keyed as not materialized (
    select
        a.action_id,
        a.load_id,
        a.loan_id,
        n.loan_key,
        a.action_time,
        a.action_time::date as action_date,
        a.channel,
        a.strategy,
        a.contact_target,
        a.connected,
        a.amount_collected,
        a.cost,
        a.agent_id,
        a.team,
        n.borrower_number,
        n.product,
        n.loan_channel,
        n.province,
        n.grade,
        n.origination_date
    from collection_actions as a
    inner join numbered_loans as n
        on n.loan_id = a.loan_id
),

connected_actions as (
    select
        *,
        row_number() over (
            partition by borrower_number, action_date
            order by action_time, loan_id, action_id, load_id
        )::integer as connected_order
    from keyed
    where connected
),

other_actions as (
    select
        *,
        null::integer as connected_order
    from keyed
    where connected is not true
),

all_actions as (
    select *
    from connected_actions
    union all
    select *
    from other_actions
)

select
    action_id,
    load_id,
    loan_id,
    loan_key,
    action_time,
    action_date,
    channel,
    strategy,
    contact_target,
    connected,
    amount_collected,
    cost,
    agent_id,
    team,
    borrower_number,
    connected_order,
    product,
    loan_channel,
    province,
    grade,
    origination_date
from all_actions;


-- name: facts_collection_stages
-- Refills collection_stage_facts: one row per stage entry of every delinquency episode.
-- Most loans have a month-end row for every month from their first to their last. Then an
-- overdue row's neighbours are the rows one month before and after, month_facts carries
-- the next one, and an episode is a run of consecutive overdue months. Loans where a month
-- is missing after an overdue row are numbered with window functions over all their rows
-- instead, as the report defines episodes: by row order, whatever the month gap.
-- overdue_amount needs overdue_interest, which month_facts does not carry, so it is read
-- from the overdue rows of loan_months.
delete from collection_stage_facts;
insert into collection_stage_facts
with

overdue_rows as (
    select
        m.loan_key,
        m.snapshot_date,
        m.month_number,
        m.dpd,
        m.status,
        m.outstanding_principal,
        m.overdue_principal,
        m.next_dpd,
        m.next_status,
        f.last_month
    from month_facts as m
    inner join loan_facts as f
        on f.loan_key = m.loan_key
    where m.dpd >= 1
      and m.is_active
),

linked_rows as (
    select
        *,
        coalesce(
            lag(month_number) over (partition by loan_key order by month_number) = month_number - 1,
            false
        ) as follows_overdue
    from overdue_rows
),

-- Loans with an overdue row followed by a row that is not in the next month. An overdue
-- row after a missing month needs no check: when the row before the gap is overdue, that
-- row is caught here, and when it is not, both numberings start an episode.
gap_loans as (
    select distinct loan_key
    from linked_rows
    where next_status is null
      and month_number < last_month
),

consecutive_rows as (
    select
        loan_key,
        snapshot_date,
        month_number,
        dpd,
        status,
        outstanding_principal,
        overdue_principal,
        case when next_status is not null then last_day(snapshot_date + 1) end as next_date,
        next_dpd,
        next_status,
        sum(case when follows_overdue then 0 else 1 end) over (
            partition by loan_key
            order by month_number
            rows unbounded preceding
        ) as episode_no
    from linked_rows
    where loan_key not in (select loan_key from gap_loans)
),

gap_months as (
    select
        m.loan_key,
        m.snapshot_date,
        m.month_number,
        m.dpd,
        m.status,
        m.outstanding_principal,
        m.overdue_principal,
        m.dpd >= 1 and m.is_active as is_delinquent
    from month_facts as m
    semi join gap_loans as g
        on g.loan_key = m.loan_key
),

gap_flagged as (
    select
        *,
        lag(is_delinquent) over loan_window as previous_delinquent,
        lead(snapshot_date) over loan_window as next_date,
        lead(dpd) over loan_window as next_dpd,
        lead(status) over loan_window as next_status
    from gap_months
    window loan_window as (partition by loan_key order by month_number)
),

gap_numbered as (
    select
        *,
        sum(case when is_delinquent and not coalesce(previous_delinquent, false) then 1 else 0 end) over (
            partition by loan_key
            order by month_number
            rows unbounded preceding
        ) as episode_no
    from gap_flagged
),

delinquent_rows as (
    select *
    from consecutive_rows
    union all
    select
        loan_key,
        snapshot_date,
        month_number,
        dpd,
        status,
        outstanding_principal,
        overdue_principal,
        next_date,
        next_dpd,
        next_status,
        episode_no
    from gap_numbered
    where is_delinquent
),

-- Rows whose interest changes overdue_amount: a null or zero interest adds nothing.
overdue_interest as (
    select
        loan_id,
        snapshot_date,
        overdue_interest
    from loan_months
    where dpd >= 1
      and overdue_interest <> 0
),

episode_spans as (
    select
        loan_key,
        episode_no,
        min(snapshot_date) as episode_start_date,
        arg_max_null(next_date, snapshot_date) as end_date,
        arg_max_null(next_status, snapshot_date) as end_status,
        arg_max_null(status, snapshot_date) as last_delinquent_status,
        max(snapshot_date) as last_delinquent_date,
        case
            when count(*) < max(month_number) - min(month_number) + 1
                then list(snapshot_date order by snapshot_date)
        end as delinquent_dates
    from delinquent_rows
    group by
        loan_key,
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

ranked_rows as (
    select
        *,
        case when dpd <= 30 then 1 when dpd <= 90 then 2 else 3 end as stage_rank,
        max(case when dpd <= 30 then 1 when dpd <= 90 then 2 else 3 end) over (
            partition by loan_key, episode_no
            order by snapshot_date
            rows between unbounded preceding and 1 preceding
        ) as previous_max_rank
    from delinquent_rows
),

stage_entries as (
    select
        loan_key,
        episode_no,
        snapshot_date as entry_date,
        stage_rank,
        dpd as entry_dpd,
        overdue_principal,
        outstanding_principal,
        next_date,
        next_dpd,
        next_status,
        lead(snapshot_date) over (
            partition by loan_key, episode_no
            order by snapshot_date
        ) as next_stage_date
    from ranked_rows
    where previous_max_rank is null
       or stage_rank > previous_max_rank
),

final as (
    select
        row_number() over (order by f.loan_id, s.episode_no, s.entry_date)::integer as entry_key,
        s.loan_key,
        f.loan_id,
        s.episode_no::integer as episode_no,
        e.episode_start_date,
        s.entry_date,
        case s.stage_rank when 1 then 'early' when 2 then 'middle' else 'late' end as stage,
        s.entry_dpd,
        least(ceil(s.entry_dpd / 30.0), 7)::integer as entry_bucket,
        case
            when s.overdue_principal is null then s.outstanding_principal
            else s.overdue_principal + coalesce(i.overdue_interest, 0)
        end as overdue_amount,
        s.outstanding_principal,
        f.product,
        f.channel,
        f.province,
        f.grade,
        f.origination_date,
        e.end_date,
        e.end_reason,
        e.last_delinquent_date,
        e.delinquent_dates,
        s.next_date,
        s.next_dpd,
        s.next_status,
        case
            when s.entry_date = e.episode_start_date then s.entry_date - s.entry_dpd + 1
            else s.entry_date + 1
        end as window_start,
        coalesce(s.next_stage_date, e.end_date) as window_end
    from stage_entries as s
    inner join episodes as e
        on s.loan_key = e.loan_key
        and s.episode_no = e.episode_no
    inner join loan_facts as f
        on f.loan_key = s.loan_key
    left join overdue_interest as i
        on i.loan_id = f.loan_id
        and i.snapshot_date = s.entry_date
)

select *
from final
order by entry_key;


-- name: facts_collection_stage_actions
-- Refills collection_stage_action_facts: each stage entry's actions, those on days from
-- window_start to window_end (no end while the window is open). An action can fall in
-- the windows of two episodes' entries, when an episode starts overdue by more days than
-- have passed since the last one ended. The report then counts it in both.
delete from collection_stage_action_facts;
insert into collection_stage_action_facts
select
    s.entry_key,
    a.action_time,
    a.action_date,
    a.channel,
    a.strategy,
    a.amount_collected,
    a.cost
from collection_stage_facts as s
inner join collection_action_facts as a
    on a.loan_key = s.loan_key
    and a.action_date >= s.window_start
    and (s.window_end is null or a.action_date <= s.window_end)
order by
    s.entry_key,
    a.action_time;


-- name: facts_collection_stage_totals
-- Refills collection_stage_total_facts from collection_stage_action_facts.
delete from collection_stage_total_facts;
insert into collection_stage_total_facts
select
    entry_key,
    arg_min(strategy, action_time) as strategy,
    count(distinct strategy)::integer as strategy_count,
    count(*)::integer as contacts,
    coalesce(sum(amount_collected), 0) as collected_amount,
    coalesce(sum(cost), 0) as cost_amount,
    max(action_date) as last_action_date
from collection_stage_action_facts
group by entry_key
order by entry_key;


-- name: facts_collection_stage_channels
-- Refills collection_stage_channel_facts from collection_stage_action_facts.
delete from collection_stage_channel_facts;
insert into collection_stage_channel_facts
select
    entry_key,
    channel,
    count(*)::integer as contacts,
    coalesce(sum(amount_collected), 0) as collected_amount,
    coalesce(sum(cost), 0) as cost_amount
from collection_stage_action_facts
group by
    entry_key,
    channel
order by
    entry_key,
    channel;
