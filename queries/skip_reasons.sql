-- skip_reasons: rows the most recent load skipped (prescriptions of other drugs), by file and reason.
-- No parameters.
-- Returns one row per table and reason: table_name, reason_code (analysis.drugs.SKIP_REASONS), n_rows.
with latest as (
    select run_id from load_runs order by loaded_at desc, run_id limit 1
)

select s.table_name, s.reason_code, s.n_rows
from load_skip_reasons as s
inner join latest as l on l.run_id = s.run_id
order by s.n_rows desc, s.table_name, s.reason_code
