-- build_dose_segments: the daily series of every patient under one factor set, to store in
-- daily_dose_segments (the loader runs it for each factor set after every load; exclusions are applied
-- when the table is read, so :exclude is false here).
-- Parameters: :factor_set (text); :exclude (boolean, false).
-- Returns one row per patient and stretch of constant dose: factor_set, patient_id, seg_start, seg_end,
-- daily_mme, supplied, dose_known (see _dose_segments_build.sql).
with
-- @include opioid_rx
-- @include rx_mme
-- @include dose_segments_build
final as (
    select cast(:factor_set as varchar) as factor_set, patient_id, seg_start, seg_end, daily_mme, supplied,
        dose_known
    from built_segments
)

select * from final
