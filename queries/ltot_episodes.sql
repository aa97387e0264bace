-- ltot_episodes: every episode of opioid analgesic supply, and whether it is long-term therapy.
-- Parameters: :exclude (boolean); :ltot_gap_days, :ltot_min_days, :ltot_min_fills, :ltot_min_supply
-- (see _ltot_episodes.sql; Von Korff 2008 defaults 30, 90, 10, 120).
-- Returns one row per patient episode: patient_id, episode_no, episode_start, episode_end, duration_days,
-- fills, days_supply, is_ltot.
with
-- @include opioid_rx
-- @include ltot_episodes
final as (
    select * from ltot_episodes
)

select * from final
