-- name: facts_survival_events
-- Refills loan_survival_facts (see schema.sql) from month_facts: for every loan with a
-- month-end row that shows a default (for each stored threshold) or a payoff, the MOB of
-- the first such row over all of its rows. The survival queries use these values when all
-- of a loan's rows lie on or before the as-of month, and recompute from month_facts
-- otherwise. A row counts as already past the threshold one month-end earlier when its dpd
-- minus the days of its month is above the threshold (nothing paid since), or when it is
-- charged off. Returns nothing.
delete from loan_survival_facts;
insert into loan_survival_facts
with
event_rows as (
    select
        loan_key,
        mob,
        dpd,
        dpd - day(snapshot_date) as dpd_month_before,
        status
    from month_facts
    where dpd > 30
       or status in ('paid_off', 'charged_off')
)

select
    loan_key,
    min(mob) filter (where status = 'paid_off') as paid_off_mob,
    min(mob) filter (where dpd > 30 or status = 'charged_off') as default_mob_30,
    min(mob) filter (where dpd > 60 or status = 'charged_off') as default_mob_60,
    min(mob) filter (where dpd > 90 or status = 'charged_off') as default_mob_90,
    min(mob) filter (where dpd_month_before > 30 or status = 'charged_off')
        as default_before_mob_30,
    min(mob) filter (where dpd_month_before > 60 or status = 'charged_off')
        as default_before_mob_60,
    min(mob) filter (where dpd_month_before > 90 or status = 'charged_off')
        as default_before_mob_90
from event_rows
group by loan_key
order by loan_key;
