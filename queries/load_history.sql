-- load_history: every load and, per file, the rows read, loaded, skipped (other drugs) and rejected.
-- No parameters.
-- Returns one row per load and table: run_id, loaded_at, source_dir, replaced, table_name, rows_read,
-- rows_loaded, rows_rejected, ignored_columns, rows_skipped (0 for loads made before skipping existed).
select
    r.run_id,
    r.loaded_at,
    r.source_dir,
    r.replaced,
    c.table_name,
    c.rows_read,
    c.rows_loaded,
    c.rows_rejected,
    c.ignored_columns,
    coalesce(c.rows_skipped, 0) as rows_skipped
from load_runs as r
inner join load_counts as c on c.run_id = r.run_id
order by r.loaded_at desc, c.table_name
