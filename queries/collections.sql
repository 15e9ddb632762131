-- Collection episodes built from month-end snapshots and collection actions, and the
-- restructured / extended loans panel. Shared filter parameters: $products, $channels,
-- $provinces, $grades, $vintage_from, $vintage_to; $as_of is the last month-end used
-- (null = all data).

-- name: collection_stage_entries
-- Returns one row per stage entry of a delinquency episode of a loan in the filters.
-- An episode starts at the first month-end with dpd >= 1 after a month-end with dpd 0 (or
-- at a loan's first snapshot when that is already overdue). It ends at the first later
-- month-end that is current (cured), paid_off or charged_off, or at the end of the data.
-- A loan that becomes current by being restructured or extended ends its episode as
-- 'restructured', which is not a cure. Month-ends follow each other in row order, so a
-- missing month neither ends nor splits an episode.
-- An episode enters a stage at its first month-end with dpd in that stage's range (early
-- 1-30, middle 31-90, late > 90), so an episode that starts in M1 and rolls to M2 enters
-- the early and then the middle stage. A stage is never re-entered after a later one.
-- The stage's actions run from the day after its entry month-end (from the first day past
-- due, start_date - entry_dpd + 1, for the episode's first stage) to the next stage's entry
-- month-end, the episode's end month-end or the end of the data.
-- The end of the data is $as_of, or the last month-end of the loans in the filters when
-- $as_of is null; later month-ends and actions are ignored. Episodes and windows come
-- from collection_stage_facts (built on all the data) and are cut at that date here.
-- Columns:
--   entry_key INTEGER (row key; rows are in loan_id, episode_no, entry_date order);
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
--   DECIMAL yuan (all the stage's actions).
-- Parameters: shared filters, $as_of, $horizon_months (cure horizon in month-ends, 1 = by
-- the next month-end).
with

data_end as (
    select
        coalesce(
            $as_of::date,
            (
                select last_day(make_date(max(last_month) // 12, max(last_month) % 12 + 1, 1))
                from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
            )
        ) as end_date
),

data_end_rows as (
    select
        end_date,
        -- The last month-end on or before end_date.
        case
            when end_date = last_day(end_date) then end_date
            else date_trunc('month', end_date)::date - 1
        end as last_row_date
    from data_end
),

entries as (
    select
        s.*,
        d.end_date as data_end_date,
        d.last_row_date
    from filtered_collection_stage_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to) as s
    cross join data_end_rows as d
    where s.entry_date <= d.end_date
),

-- The entries as they look when the data ends at data_end_date.
cut_entries as (
    select
        entry_key,
        loan_id,
        episode_no,
        episode_start_date,
        entry_date,
        stage,
        entry_dpd,
        entry_bucket,
        overdue_amount,
        outstanding_principal,
        product,
        province,
        case when end_date <= data_end_date then end_date end as end_date,
        case when end_date <= data_end_date then end_reason else 'censored' end as end_reason,
        -- The loan's last month-end in the data while the episode is open: its last
        -- overdue month-end up to the end of the data.
        case
            when delinquent_dates is null then least(last_delinquent_date, last_row_date)
            else list_max(list_filter(delinquent_dates, lambda day: day <= data_end_date))
        end as last_open_date,
        case when next_date <= data_end_date then next_date end as next_date,
        next_dpd,
        next_status
    from entries
),

judged as (
    select
        *,
        last_day(entry_date + to_months($horizon_months::integer)) as horizon_date
    from cut_entries
),

-- Each entry's action window cut at the end of the data.
entry_windows as (
    select
        s.entry_key,
        least(coalesce(s.window_end, d.end_date), d.end_date) as window_end
    from filtered_collection_stage_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to) as s
    cross join data_end as d
    where s.entry_date <= d.end_date
),

-- Entries with actions after their cut window: their totals are counted again.
recount_entries as (
    select
        w.entry_key,
        w.window_end
    from entry_windows as w
    inner join collection_stage_total_facts as t
        on t.entry_key = w.entry_key
    where t.last_action_date > w.window_end
),

recounted_totals as (
    select
        a.entry_key,
        arg_min(a.strategy, a.action_time) as strategy,
        count(distinct a.strategy) as strategy_count,
        count(*) as contacts,
        coalesce(sum(a.amount_collected), 0) as collected_amount,
        coalesce(sum(a.cost), 0) as cost_amount
    from collection_stage_action_facts as a
    inner join recount_entries as r
        on r.entry_key = a.entry_key
    where a.action_date <= r.window_end
    group by a.entry_key
),

stage_totals as (
    select
        entry_key,
        strategy,
        strategy_count,
        contacts,
        collected_amount,
        cost_amount
    from collection_stage_total_facts
    where entry_key not in (select entry_key from recount_entries)
    union all
    select *
    from recounted_totals
),

final as (
    select
        j.entry_key,
        j.loan_id,
        j.episode_no,
        j.episode_start_date,
        j.entry_date,
        j.stage,
        j.entry_dpd,
        j.entry_bucket,
        j.overdue_amount,
        j.outstanding_principal,
        j.product,
        j.province,
        j.end_date,
        j.end_reason,
        date_diff('month', j.entry_date, coalesce(j.end_date, j.last_open_date))::integer as duration_months,
        j.end_reason in ('cured', 'paid_off') as cure_event,
        case
            when j.end_date <= j.horizon_date then j.end_reason in ('cured', 'paid_off')
            when coalesce(j.end_date, j.last_open_date) >= j.horizon_date then false
        end as cured,
        case
            when j.next_date is null then null
            when j.next_status = 'charged_off' then true
            when j.next_status = 'paid_off' then false
            else (case when j.next_dpd = 0 then 0 else least(ceil(j.next_dpd / 30.0), 7) end)
                > least(ceil(j.entry_dpd / 30.0), 7)
        end as rolled_forward,
        t.strategy,
        coalesce(t.strategy_count, 0)::integer as strategy_count,
        coalesce(t.contacts, 0)::integer as stage_contacts,
        coalesce(t.collected_amount, 0) as stage_collected_amount,
        coalesce(t.cost_amount, 0) as stage_cost_amount
    from judged as j
    left join stage_totals as t
        on t.entry_key = j.entry_key
)

select *
from final
order by entry_key;

-- name: collection_stage_channel_totals
-- Returns one row per (stage entry, action channel) of the entries that
-- collection_stage_entries returns for the same parameters. The totals are over the
-- channel's actions in the stage's action window. Entries without actions have no row.
-- Columns: entry_key INTEGER (the entry's row in collection_stage_entries);
--   channel VARCHAR; contacts INTEGER; collected_amount DECIMAL yuan; cost_amount
--   DECIMAL yuan.
-- Parameters: shared filters, $as_of.
with

data_end as (
    select
        coalesce(
            $as_of::date,
            (
                select last_day(make_date(max(last_month) // 12, max(last_month) % 12 + 1, 1))
                from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
            )
        ) as end_date
),

-- Each entry's action window cut at the end of the data.
entry_windows as (
    select
        s.entry_key,
        least(coalesce(s.window_end, d.end_date), d.end_date) as window_end
    from filtered_collection_stage_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to) as s
    cross join data_end as d
    where s.entry_date <= d.end_date
),

recount_entries as (
    select
        e.entry_key,
        e.window_end
    from entry_windows as e
    inner join collection_stage_total_facts as t
        on t.entry_key = e.entry_key
    where t.last_action_date > e.window_end
),

kept_totals as (
    select
        c.entry_key,
        c.channel,
        c.contacts,
        c.collected_amount,
        c.cost_amount
    from collection_stage_channel_facts as c
    where c.entry_key in (select entry_key from entry_windows)
      and c.entry_key not in (select entry_key from recount_entries)
),

recounted_totals as (
    select
        a.entry_key,
        a.channel,
        count(*)::integer as contacts,
        coalesce(sum(a.amount_collected), 0) as collected_amount,
        coalesce(sum(a.cost), 0) as cost_amount
    from collection_stage_action_facts as a
    inner join recount_entries as r
        on r.entry_key = a.entry_key
    where a.action_date <= r.window_end
    group by
        a.entry_key,
        a.channel
),

final as (
    select *
    from kept_totals
    union all
    select *
    from recounted_totals
)

select *
from final
order by
    entry_key,
    channel;

-- name: restructured_loans
-- Returns one row per loan that was restructured (债务重组) or extended (展期) by the as-of
-- month: a snapshot with status restructured/extended, or a restructure/extension action.
-- Columns:
--   loan_id VARCHAR; product VARCHAR;
--   kind VARCHAR (restructured / extended, the first one seen; restructured when both
--   are first seen in the same month);
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
        loan_key,
        loan_id,
        product
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

marks as (
    select
        loan_key,
        snapshot_date as event_month,
        status as kind
    from month_facts
    where status in ('restructured', 'extended')
      and ($as_of is null or snapshot_date <= $as_of::date)
    union all
    select
        loan_key,
        last_day(action_date) as event_month,
        case when channel = 'restructure' then 'restructured' else 'extended' end as kind
    from collection_action_facts
    where channel in ('restructure', 'extension')
      and loan_key is not null
      and ($as_of is null or action_time < $as_of::date + 1)
),

first_marks as (
    select
        loan_key,
        min(event_month) as event_month,
        arg_min(kind, (event_month, kind = 'extended')) as kind
    from marks
    where loan_key in (select loan_key from loans_in_scope)
    group by loan_key
),

-- The month-ends of the marked loans only, up to the as-of month.
months as (
    select
        loan_key,
        snapshot_date,
        dpd,
        status,
        outstanding_principal
    from month_facts
    where loan_key in (select loan_key from first_marks)
      and ($as_of is null or snapshot_date <= $as_of::date)
),

loan_ends as (
    select
        loan_key,
        max(snapshot_date) as last_snapshot_date,
        arg_max(status, snapshot_date) as last_status,
        arg_max(outstanding_principal, snapshot_date) as last_balance
    from months
    group by loan_key
),

redefaults as (
    select
        f.loan_key,
        min(m.snapshot_date) as redefault_date
    from first_marks as f
    inner join months as m
        on m.loan_key = f.loan_key
        and m.snapshot_date > f.event_month
        and (m.dpd > $redefault_dpd or m.status = 'charged_off')
    group by f.loan_key
),

final as (
    select
        l.loan_id,
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
        on f.loan_key = l.loan_key
    left join months as m
        on m.loan_key = f.loan_key
        and m.snapshot_date = f.event_month
    left join loan_ends as e
        on e.loan_key = f.loan_key
    left join redefaults as r
        on r.loan_key = f.loan_key
)

select *
from final
order by loan_id;
