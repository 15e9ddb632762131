-- name: dashboard_filter_options
-- Returns one row with the choices offered by the shared sidebar filters:
--   products, channels, provinces, grades VARCHAR[] (distinct non-null values, sorted);
--   first_vintage, last_vintage DATE (month starts of the earliest and latest origination);
--   snapshot_months DATE[] (every month-end in loan_months, latest first);
--   loan_count BIGINT (rows in loans).
-- Each list is built from a grouped distinct, because list(distinct ...) over every row
-- took several times longer in DuckDB 2.0 at 1,000,000 loans (12.5 million month-ends).
with
product_values as (
    select distinct product from loans where product is not null
),

channel_values as (
    select distinct channel from loans where channel is not null
),

province_values as (
    select distinct province from loans where province is not null
),

grade_values as (
    select distinct grade from loans where grade is not null
),

snapshot_values as (
    select distinct snapshot_date from loan_months
),

loan_values as (
    select
        (select list(product order by product) from product_values) as products,
        (select list(channel order by channel) from channel_values) as channels,
        (select list(province order by province) from province_values) as provinces,
        (select list(grade order by grade) from grade_values) as grades,
        date_trunc('month', min(origination_date))::date as first_vintage,
        date_trunc('month', max(origination_date))::date as last_vintage,
        count(*) as loan_count
    from loans
),

months as (
    select
        list(snapshot_date order by snapshot_date desc) as snapshot_months
    from snapshot_values
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
