-- data_bounds: the days the prescribing data covers: from the first fill to the last fill in the data set.
-- No parameters.
-- Returns one row: data_start (date), data_end (date). data_end stands for the extract date: supply that
-- runs out fewer than 60 days before it cannot be called a discontinuation (right-censoring).
select min(fill_date) as data_start, max(fill_date) as data_end from prescriptions
