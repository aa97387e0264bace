-- reject_reasons: rows rejected by the most recent load, by file and reason.
-- No parameters.
-- Returns one row per table and reason: table_name, reason_code, n_rows.
with latest as (
    select run_id from load_runs order by loaded_at desc, run_id limit 1
)

select r.table_name, r.reason_code, r.n_rows
from load_reject_reasons as r
inner join latest as l on l.run_id = r.run_id
order by r.n_rows desc, r.table_name, r.reason_code
