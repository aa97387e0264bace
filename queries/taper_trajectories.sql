-- taper_trajectories: the daily dose of chosen patients, for the small multiples of taper trajectories.
-- Parameters: :factor_set (text); :exclude (boolean); :patient_ids (list of text, bound as an expanding
-- IN list: one bound parameter per id).
-- Returns one row per patient and stretch of constant dose: patient_id, seg_start, seg_end (NULL for the
-- open stretch after the last supply), daily_mme, supplied. The caller turns dates into days from the
-- taper start, so no date reaches the screen.
with
-- @include dose_segments
final as (
    select patient_id, seg_start, seg_end, daily_mme, supplied
    from dose_segments
    where patient_id in :patient_ids
)

select * from final order by patient_id, seg_start
