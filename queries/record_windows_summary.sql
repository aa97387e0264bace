-- record_windows_summary: how many patients have their own record window, for the Data quality page.
-- No parameters.
-- Returns one row: patients, with_record_start (a record_start was given), with_record_end (a record_end
-- was given), ending_early (the window ends before the extract date: records that end, whose last
-- supply is right-censored there rather than counted as a stop), extract_date (date), extract_given (boolean).
select
    count(*) as patients,
    count(p.record_start) as with_record_start,
    count(p.record_end) as with_record_end,
    coalesce(sum(case when p.window_end < b.data_end then 1 else 0 end), 0) as ending_early,
    max(b.data_end) as extract_date,
    coalesce(bool_or(b.extract_given), false) as extract_given
from patients as p
cross join (
    select
        coalesce((select max(extract_date) from data_extract), (select max(fill_date) from prescriptions)) as data_end,
        coalesce((select bool_or(given) from data_extract), false) as extract_given
) as b
