-- source_files: the most recent load's source files (an OMOP, FHIR or Part D load; none for the CSV contract),
-- each with rows read = loaded + skipped + rejected.
-- No parameters.
-- Returns one row per source file, in the order the load read them: source_format, file_name, feeds, rows_read,
-- rows_loaded, rows_skipped, rows_rejected.
with latest as (
    select run_id from load_runs order by loaded_at desc, run_id limit 1
)

select r.source_format, f.file_name, f.feeds, f.rows_read, f.rows_loaded, f.rows_skipped, f.rows_rejected
from load_source_files as f
inner join latest as l on l.run_id = f.run_id
inner join load_runs as r on r.run_id = f.run_id
order by f.file_no
