-- patient_dose_segments: each patient's daily MME as stretches of constant dose (the daily series, without
-- one row per day), for dose trajectories.
-- Parameters: :factor_set (text); :exclude (boolean).
-- Returns one row per patient and stretch: patient_id, seg_start, seg_end (NULL for the open stretch after
-- the last supply), daily_mme, supplied.
with
-- @include dose_segments
final as (
    select patient_id, seg_start, seg_end, daily_mme, supplied from dose_segments
)

select * from final
