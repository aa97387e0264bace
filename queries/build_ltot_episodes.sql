-- build_ltot_episodes: every patient's episodes of opioid analgesic supply, to store in
-- stored_ltot_episodes (the loader runs it after every load; exclusions are applied when the table is
-- read, so :exclude is false here).
-- Parameters: :exclude (boolean, false); the ltot_* parameters of _ltot_episodes.sql (defaults).
-- Returns one row per episode: patient_id, episode_no, episode_start, episode_end, duration_days, fills,
-- days_supply, is_ltot.
with
-- @include opioid_rx
-- @include ltot_episodes
final as (
    select patient_id, episode_no, episode_start, episode_end, cast(duration_days as integer) as duration_days,
        fills, days_supply, is_ltot
    from ltot_episodes
)

select * from final
