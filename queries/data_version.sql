-- data_version: what identifies the data now loaded, so that answers kept for every session (dashboard/data.py)
-- are kept until the data change and no longer. No parameters.
-- Returns one row: loads (how many loads the database has recorded: every load adds one), last_loaded_at (the
-- latest load's time), last_run (the greatest run_id: a random id, which tells apart two states that agree
-- on both others).
with

runs as (
    select run_id, loaded_at from load_runs
),

final as (
    select
        count(*) as loads,
        max(loaded_at) as last_loaded_at,
        max(run_id) as last_run
    from runs
)

select * from final
