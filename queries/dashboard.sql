-- name: dashboard_filter_options
-- Returns one row with the choices offered by the shared sidebar filters:
--   products, channels, provinces, grades VARCHAR[] (distinct non-null values, sorted);
--   first_vintage, last_vintage DATE (month starts of the earliest and latest origination);
--   snapshot_months DATE[] (every month-end in loan_months, latest first);
--   loan_count BIGINT (rows in loans).
with
loan_values as (
    select
        list(distinct product order by product) filter (where product is not null) as products,
        list(distinct channel order by channel) filter (where channel is not null) as channels,
        list(distinct province order by province) filter (where province is not null) as provinces,
        list(distinct grade order by grade) filter (where grade is not null) as grades,
        date_trunc('month', min(origination_date))::date as first_vintage,
        date_trunc('month', max(origination_date))::date as last_vintage,
        count(*) as loan_count
    from loans
),

months as (
    select
        list(distinct snapshot_date order by snapshot_date desc) as snapshot_months
    from loan_months
),

final as (
    select
        lv.products,
        lv.channels,
        lv.provinces,
        lv.grades,
        lv.first_vintage,
        lv.last_vintage,
        m.snapshot_months,
        lv.loan_count
    from loan_values as lv
    cross join months as m
)

select * from final;


-- name: dashboard_loan_count
-- Returns one row: loan_count BIGINT, the number of rows in loans (0 means an empty database).
select
    count(*) as loan_count
from loans;
