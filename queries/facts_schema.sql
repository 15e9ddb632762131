-- LoanLens fact tables: derived from the tables of schema.sql by ingest/facts.py at the end
-- of every write (import, load removal, demo), in the same transaction, so reports read few
-- columns without joins. Never written by hand; `python -m ingest rebuild-facts` rebuilds
-- them. Every rebuild drops the tables below and creates them again from this file, so a
-- changed definition takes effect at the next rebuild (bump FACTS_VERSION in
-- ingest/facts.py to force one).
-- Month numbers are year * 12 + month - 1 (January 2026 = 24312), so that consecutive
-- months differ by 1 and make_date(n // 12, n % 12 + 1, 1) is the month's first day.

-- One row per loan of `loans`, keyed by a dense integer loan_key (origination order).
create table if not exists loan_facts (
    loan_key integer not null,
    loan_id varchar not null,
    borrower_id varchar,
    origination_date date not null,
    vintage date not null,               -- first day of the origination month
    origination_month integer not null,  -- month number of origination_date
    principal decimal(18, 2) not null,
    term_months integer,
    product varchar,
    channel varchar,
    province varchar,
    city varchar,
    county varchar,
    region_code varchar,
    grade varchar,
    first_month integer,                 -- month number of the first month-end row, or null
    last_month integer,                  -- month number of the last month-end row, or null
    last_status varchar,                 -- status at the last month-end row
    -- FPD30 (metrics.md): judged on instalment 1 when the loan has instalment rows, else on
    -- the first month-end at least 30 days after origination + 1 month (or the last
    -- month-end before it when the loan closed earlier).
    fpd30_judged_month date,             -- month-end by which the loan can be judged
    is_fpd30 boolean,
    fpd30_from_installments boolean
);

-- One row per loan_months row of a loan in loan_facts, with the loan's segment columns and
-- the same loan's row one month later (next_*: null when that month-end is missing).
create table if not exists month_facts (
    loan_key integer not null,
    snapshot_date date not null,
    month_number integer not null,       -- month number of snapshot_date
    mob integer not null,                -- months on book: month_number - origination_month
    dpd integer not null,
    outstanding_principal decimal(18, 2) not null,
    overdue_principal decimal(18, 2),
    status varchar not null,
    is_active boolean not null,          -- status neither paid_off nor charged_off
    principal_paid decimal(18, 2),
    interest_paid decimal(18, 2),
    charged_off_amount decimal(18, 2),
    recovered_amount decimal(18, 2),
    next_dpd integer,
    next_status varchar,
    next_outstanding_principal decimal(18, 2),
    origination_date date not null,
    origination_month integer not null,
    principal decimal(18, 2) not null,
    product varchar,
    channel varchar,
    province varchar,
    grade varchar
);

-- The shared filters on the fact tables; same arguments and meaning as filtered_loans.
create or replace macro filtered_loan_facts(products, channels, provinces, grades, vintage_from, vintage_to) as table
    select *
    from loan_facts
    where (products is null or list_contains(products::varchar[], product))
      and (channels is null or list_contains(channels::varchar[], channel))
      and (provinces is null or list_contains(provinces::varchar[], province))
      and (grades is null or list_contains(grades::varchar[], grade))
      and (vintage_from is null or origination_date >= vintage_from::date)
      and (vintage_to is null or origination_date <= last_day(vintage_to::date));

create or replace macro filtered_month_facts(products, channels, provinces, grades, vintage_from, vintage_to) as table
    select *
    from month_facts
    where (products is null or list_contains(products::varchar[], product))
      and (channels is null or list_contains(channels::varchar[], channel))
      and (provinces is null or list_contains(provinces::varchar[], province))
      and (grades is null or list_contains(grades::varchar[], grade))
      and (vintage_from is null or origination_date >= vintage_from::date)
      and (vintage_to is null or origination_date <= last_day(vintage_to::date));

-- ---------------------------------------------------------------------------------------
-- Collections and compliance fact tables (filled by queries/facts_collections.sql).
-- Built over all data with no filters; the reports apply the filters and the as-of month.

-- One row per collection action, with the loan's key, the borrower's number and each
-- connected action's place among the connected actions about that borrower that day.
create table if not exists collection_action_facts (
    action_id bigint not null,
    load_id bigint not null,
    loan_id varchar not null,
    loan_key integer,                    -- null when the loan is not in `loans`
    action_time timestamp not null,
    action_date date not null,           -- calendar day of action_time
    channel varchar not null,
    strategy varchar,
    contact_target varchar,
    connected boolean,
    amount_collected decimal(18, 2),
    cost decimal(18, 2),
    agent_id varchar,
    team varchar,
    -- The borrower: one number per borrower_id, or per loan when it has none or is not in
    -- `loans`. Numbers are dense over the borrowers that have actions.
    borrower_number integer not null,
    -- Connected actions only (null otherwise): the 1-based order among the borrower's
    -- connected actions of that day by (action_time, loan_id, action_id, load_id).
    connected_order integer,
    -- The loan's segment columns for the shared filters (null when it is not in `loans`);
    -- loan_channel is the loan's sales channel, not the action's.
    product varchar,
    loan_channel varchar,
    province varchar,
    grade varchar,
    origination_date date
);

-- One row per stage entry of a delinquency episode (see collection_stage_entries in
-- queries/collections.sql for the episode and stage rules), judged on all the data.
create table if not exists collection_stage_facts (
    entry_key integer not null,          -- 1..n in (loan_id, episode_no, entry_date) order
    loan_key integer not null,
    loan_id varchar not null,
    episode_no integer not null,         -- 1-based within the loan
    episode_start_date date not null,
    entry_date date not null,            -- month-end the stage was entered
    stage varchar not null,              -- early / middle / late
    entry_dpd integer not null,
    entry_bucket integer not null,       -- 1 = M1 ... 7 = M7+
    overdue_amount decimal(18, 2),       -- overdue principal + interest at entry, yuan
    outstanding_principal decimal(18, 2),
    product varchar,                     -- product .. origination_date: the loan's, for the filters
    channel varchar,
    province varchar,
    grade varchar,
    origination_date date not null,
    end_date date,                       -- month-end the episode ended; null while open
    end_reason varchar,                  -- cured / paid_off / restructured / charged_off / censored
    last_delinquent_date date,           -- the episode's last overdue month-end
    -- The episode's overdue month-ends when some month between its first and last one has
    -- no row; null when they are consecutive.
    delinquent_dates date[],
    next_date date,                      -- the loan's month-end row after entry, if any
    next_dpd integer,
    next_status varchar,
    window_start date,                   -- first day of the stage's action window
    window_end date                      -- last day of the window; null while still open
);

-- One row per (stage entry, action in the entry's action window).
create table if not exists collection_stage_action_facts (
    entry_key integer not null,
    action_time timestamp not null,
    action_date date not null,
    channel varchar not null,
    strategy varchar,
    amount_collected decimal(18, 2),
    cost decimal(18, 2)
);

-- One row per stage entry with actions: totals over its whole action window.
create table if not exists collection_stage_total_facts (
    entry_key integer not null,
    strategy varchar,                    -- strategy of the first action that has one
    strategy_count integer not null,     -- distinct strategies
    contacts integer not null,
    collected_amount decimal(18, 2) not null,
    cost_amount decimal(18, 2) not null,
    last_action_date date not null
);

-- One row per (stage entry, action channel): that channel's totals over the window.
create table if not exists collection_stage_channel_facts (
    entry_key integer not null,
    channel varchar not null,
    contacts integer not null,
    collected_amount decimal(18, 2) not null,
    cost_amount decimal(18, 2) not null
);
-- The shared filters on collection_stage_facts; same arguments and meaning as filtered_loans.
create or replace macro filtered_collection_stage_facts(products, channels, provinces, grades, vintage_from, vintage_to) as table
    select *
    from collection_stage_facts
    where (products is null or list_contains(products::varchar[], product))
      and (channels is null or list_contains(channels::varchar[], channel))
      and (provinces is null or list_contains(provinces::varchar[], province))
      and (grades is null or list_contains(grades::varchar[], grade))
      and (vintage_from is null or origination_date >= vintage_from::date)
      and (vintage_to is null or origination_date <= last_day(vintage_to::date));
-- The shared filters on collection_action_facts, for actions on loans in `loans` only;
-- same arguments and meaning as filtered_loans.
create or replace macro filtered_collection_action_facts(products, channels, provinces, grades, vintage_from, vintage_to) as table
    select *
    from collection_action_facts
    where loan_key is not null
      and (products is null or list_contains(products::varchar[], product))
      and (channels is null or list_contains(channels::varchar[], loan_channel))
      and (provinces is null or list_contains(provinces::varchar[], province))
      and (grades is null or list_contains(grades::varchar[], grade))
      and (vintage_from is null or origination_date >= vintage_from::date)
      and (vintage_to is null or origination_date <= last_day(vintage_to::date));
-- End of the collections and compliance fact tables.
-- ---------------------------------------------------------------------------------------

-- ---------------------------------------------------------------------------------------
-- Survival fact table (filled by queries/facts_survival.sql).

-- One row per loan with at least one month-end row that is past 30 dpd, paid off or charged
-- off: the MOB of the first row of each kind, over all of the loan's rows. A default at
-- threshold X is dpd > X or charged off; "before" means dpd minus the days of the month is
-- above X (already past X one month-end earlier if nothing was paid), or charged off.
create table if not exists loan_survival_facts (
    loan_key integer not null,
    paid_off_mob integer,
    default_mob_30 integer,
    default_mob_60 integer,
    default_mob_90 integer,
    default_before_mob_30 integer,
    default_before_mob_60 integer,
    default_before_mob_90 integer
);
-- End of the survival fact table.
-- ---------------------------------------------------------------------------------------

-- ---------------------------------------------------------------------------------------
-- Cohort download fact table (filled by queries/facts_cohort.sql).

-- One row per loan with at least one month_facts row: aggregates over all of its rows. The
-- cohort download uses them for loans whose rows all lie on or before the as-of month.
create table if not exists loan_history_facts (
    loan_key integer not null,
    max_dpd integer not null,            -- highest dpd at any month-end
    ever_charged_off boolean not null,   -- charged off at any month-end
    months_observed bigint not null      -- month-end rows
);
-- End of the cohort download fact table.
-- ---------------------------------------------------------------------------------------
