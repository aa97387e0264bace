-- data_bounds: the days the prescribing data covers: from the first fill to the extract date.
-- No parameters.
-- Returns one row: data_start (date, the first fill date), data_end (date: the extract date in force,
-- table data_extract, given with rxdash load --extract-date or else the last fill date), extract_given
-- (boolean: the extract date was given rather than taken from the last fill). Supply that runs out fewer
-- than 60 days before data_end cannot be called a discontinuation (right-censoring), and each patient's
-- own record window (patients.window_start, window_end) lies inside data_start .. data_end.
select
    (select min(fill_date) from prescriptions) as data_start,
    coalesce((select max(extract_date) from data_extract), (select max(fill_date) from prescriptions)) as data_end,
    coalesce((select bool_or(given) from data_extract), false) as extract_given
