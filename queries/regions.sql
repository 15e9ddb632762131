-- name: region_month_totals
-- Returns one row per month-end from $from_month to $as_of and per distinct combination of
-- the region fields as written in loans (not yet normalised), for the active loans that
-- match the shared filters. Active: a snapshot at that month-end whose status is neither
-- paid_off nor charged_off. Python normalises the region fields and adds the groups up.
-- Columns:
--   month DATE (month-end);
--   province_text VARCHAR, city_text VARCHAR, county_text VARCHAR, region_code VARCHAR
--     (loans.province, city, county, region_code; null when missing);
--   loans BIGINT, balance DECIMAL (active loans, their outstanding principal in yuan);
--   m1plus_loans BIGINT, m1plus_balance DECIMAL (active, dpd > 0);
--   par30_loans BIGINT, par30_balance DECIMAL (active, dpd > 30, or restructured/extended
--     when $par30_restructured is true);
--   npl_loans BIGINT, npl_balance DECIMAL (active, dpd > $npl_dpd, the 次级 floor of the
--     five-category preset; DPD alone makes this a floor of the true NPL).
-- Reads the fact tables month_facts and loan_facts.
with
chosen_loans as (
    select
        loan_key,
        province,
        city,
        county,
        region_code
    from filtered_loan_facts($products, $channels, $provinces, $grades, $vintage_from, $vintage_to)
),

-- Joined on the integer loan_key of the fact tables; month_facts is stored in
-- snapshot_date order, so the scan reads only the chosen months' row groups.
active_snapshots as (
    select
        mf.snapshot_date as month,
        cl.province as province_text,
        cl.city as city_text,
        cl.county as county_text,
        cl.region_code,
        mf.dpd,
        mf.status,
        mf.outstanding_principal
    from month_facts as mf
    inner join chosen_loans as cl
        on cl.loan_key = mf.loan_key
    where mf.snapshot_date between $from_month and $as_of
      and mf.is_active
),

final as (
    select
        month,
        province_text,
        city_text,
        county_text,
        region_code,
        count(*) as loans,
        sum(outstanding_principal) as balance,
        count(*) filter (where dpd > 0) as m1plus_loans,
        coalesce(sum(outstanding_principal) filter (where dpd > 0), 0) as m1plus_balance,
        count(*) filter (
            where dpd > 30 or ($par30_restructured and status in ('restructured', 'extended'))
        ) as par30_loans,
        coalesce(sum(outstanding_principal) filter (
            where dpd > 30 or ($par30_restructured and status in ('restructured', 'extended'))
        ), 0) as par30_balance,
        count(*) filter (where dpd > $npl_dpd) as npl_loans,
        coalesce(sum(outstanding_principal) filter (where dpd > $npl_dpd), 0) as npl_balance
    from active_snapshots
    group by month, province_text, city_text, county_text, region_code
)

select *
from final
order by month, province_text, city_text, county_text, region_code;
