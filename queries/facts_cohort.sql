-- name: facts_cohort_history
-- Refills loan_history_facts (see facts_schema.sql) from month_facts: per loan, the highest dpd,
-- whether it was ever charged off and its number of month-end rows. Returns nothing.
delete from loan_history_facts;
insert into loan_history_facts
select
    loan_key,
    max(dpd) as max_dpd,
    bool_or(status = 'charged_off') as ever_charged_off,
    count(*) as months_observed
from month_facts
group by
    loan_key;
