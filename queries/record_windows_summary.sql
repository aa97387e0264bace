-- record_windows_summary: how many patients have their own record window, for the Data quality page.
-- Parameters: :data_end (date) the extract date in force (queries/data_bounds.sql data_end).
-- Returns one row: patients, with_record_start (a record_start was given), with_record_end (a record_end
-- was given), ending_early (the window ends before the extract date: records that end, whose last
-- supply is right-censored there rather than counted as a stop).
select
    count(*) as patients,
    count(record_start) as with_record_start,
    count(record_end) as with_record_end,
    coalesce(sum(case when window_end < cast(:data_end as date) then 1 else 0 end), 0) as ending_early
from patients
