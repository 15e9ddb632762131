-- LoanLens storage schema. Money is DECIMAL(18,2) in yuan; rates are fractions.
-- Keys are checked by the import's validation, not by PRIMARY KEY constraints, because
-- an ART index on tens of millions of month-end rows slows bulk loads and costs memory.
-- Every data row carries the load_id of the import that wrote it, so one load can be removed.

create sequence if not exists load_id_seq start 1;

create table if not exists app_meta (
    key varchar,      -- e.g. 'schema_version', 'dataset' ('demo' or 'user')
    value varchar
);

-- One row per loan (借据). Personal data is stored only pseudonymised: borrower_id is an
-- HMAC-SHA-256 hex digest; ID-card numbers survive only as region_code, age and gender.
create table if not exists loans (
    loan_id varchar not null,            -- text, leading zeros and 18+ digits kept
    borrower_id varchar,                 -- keyed hash of the lender's borrower key
    origination_date date not null,
    principal decimal(18, 2) not null,   -- disbursed principal, yuan, > 0
    term_months integer,
    annual_rate double,                  -- nominal, fraction (0.18 = 18%)
    repayment_method varchar,            -- 等额本息 / 等额本金 / 先息后本 / 到期一次还本付息
    product varchar,
    channel varchar,
    branch varchar,
    province varchar,                    -- official full name, e.g. 广东省
    city varchar,
    county varchar,
    region_code varchar,                 -- GB/T 2260, 6 digits
    grade varchar,
    score double,
    guarantee_type varchar,              -- 信用 / 保证 / 抵押 / 质押 / 联保
    group_id varchar,                    -- joint-liability group (联保小组)
    is_first_loan boolean,
    borrower_age integer,                -- years at origination
    borrower_gender varchar,             -- 'M' or 'F'
    load_id bigint not null
);

-- Input columns that matched no contract column, kept as text for segmentation.
create table if not exists loan_attributes (
    loan_id varchar not null,
    attribute varchar not null,          -- header as written in the source file
    value varchar,
    load_id bigint not null
);

-- One row per loan per month-end snapshot, given or derived from installments.
create table if not exists loan_months (
    loan_id varchar not null,
    snapshot_date date not null,         -- always a month-end
    dpd integer not null,                -- days past due, 0 = current
    outstanding_principal decimal(18, 2) not null,
    overdue_principal decimal(18, 2),
    overdue_interest decimal(18, 2),
    status varchar not null,             -- active / paid_off / charged_off / restructured / extended
    principal_paid decimal(18, 2),       -- paid during the month
    interest_paid decimal(18, 2),
    charged_off_amount decimal(18, 2),   -- written off in the month
    recovered_amount decimal(18, 2),     -- recovered after write-off, in the month
    is_derived boolean not null default false,  -- true when built from installments
    load_id bigint not null
);

-- One row per scheduled instalment, or per payment against it (partial payments).
create table if not exists installments (
    loan_id varchar not null,
    installment_no integer not null,     -- 1-based
    due_date date not null,
    principal_due decimal(18, 2) not null,
    interest_due decimal(18, 2),
    paid_date date,                      -- null = not paid
    principal_paid decimal(18, 2),
    interest_paid decimal(18, 2),
    as_of_date date,                     -- extraction date of the file
    load_id bigint not null
);

-- One row per collection contact or treatment. action_time is Asia/Shanghai local time.
create table if not exists collection_actions (
    action_id bigint not null,           -- source line number within its load
    loan_id varchar not null,
    action_time timestamp not null,
    channel varchar not null,            -- sms, ai_voice, manual_call, field_visit, letter,
                                         -- outsourced, legal, installment_plan, extension, restructure
    strategy varchar,                    -- treatment arm (champion/challenger label)
    dpd_at_action integer,
    contact_target varchar,              -- borrower, emergency_contact, third_party
    connected boolean,
    outcome varchar,                     -- no_answer, refused, promise_to_pay, partial_payment, paid, wrong_number
    amount_collected decimal(18, 2),
    cost decimal(18, 2),
    agent_id varchar,                    -- collector or agency id, pseudonymous
    team varchar,                        -- collection team or agency group
    load_id bigint not null
);

-- One row per import attempt, including failed ones.
create table if not exists load_log (
    load_id bigint not null,
    table_name varchar not null,         -- loans / loan_months / installments / collection_actions
    file_name varchar not null,
    file_sha256 varchar not null,
    mode varchar not null,               -- strict / quarantine / demo
    encoding varchar,
    started_at timestamp not null,
    finished_at timestamp,
    rows_read bigint,
    rows_loaded bigint,
    rows_rejected bigint,
    footer_rows bigint,
    months varchar,                      -- snapshot months replaced, e.g. '2026-09,2026-10'
    amount_totals varchar,               -- JSON object: column -> total as a decimal string
    result varchar not null,             -- loaded / rejected / failed / removed
    message varchar,
    removed_at timestamp                 -- set when the load's data was removed
);

-- Rows rejected in quarantine mode (and the first failures of a rejected strict load).
-- raw_row is the source row after personal-data columns were dropped or hashed.
create table if not exists rejects (
    load_id bigint not null,
    table_name varchar not null,
    file_name varchar not null,
    line_no bigint,                      -- 1-based line in the source file, header = 1
    column_name varchar,
    value varchar,
    rule varchar not null,               -- reason code, e.g. 'principal_not_positive'
    reason_en varchar not null,
    reason_zh varchar not null,
    raw_row varchar                      -- JSON object of the cleaned row
);

-- One row per cohort download (数据下载), shown to admins.
create table if not exists download_audit (
    downloaded_at timestamp not null,
    user_name varchar,
    filters varchar,                     -- JSON of the filter values used
    grain varchar,                       -- loan / loan-month
    columns varchar,                     -- comma-separated column list
    file_format varchar,                 -- csv / xlsx / parquet
    row_count bigint,
    file_sha256 varchar
);

-- Loans matching the shared dashboard filters. Every analysis query starts from this macro
-- so that filters reach SQL only as bound parameters. A null argument means "no filter";
-- list arguments match any of their values.
create or replace macro filtered_loans(products, channels, provinces, grades, vintage_from, vintage_to) as table
    select *
    from loans
    where (products is null or list_contains(products::varchar[], product))
      and (channels is null or list_contains(channels::varchar[], channel))
      and (provinces is null or list_contains(provinces::varchar[], province))
      and (grades is null or list_contains(grades::varchar[], grade))
      and (vintage_from is null or origination_date >= vintage_from::date)
      and (vintage_to is null or origination_date <= last_day(vintage_to::date));
