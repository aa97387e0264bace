-- build_tapers: every taper and discontinuation of every patient under one factor set, to store in
-- stored_tapers (the loader runs it for each factor set after daily_dose_segments is rebuilt; exclusions
-- are applied when the table is read, so :exclude is false here).
-- Parameters: :factor_set (text); :exclude (boolean, false); the taper parameters of _tapers.sql (each
-- patient's record window is read from patients.window_start and window_end, set by the load first).
-- Returns one row per taper: factor_set, patient_id, taper_start, baseline_mme, min_window_mme, end_mme,
-- max_monthly_reduction_pct, discontinued, stop_day, stop_mme (see _tapers.sql).
with
-- @include dose_segments
-- @include tapers
final as (
    select
        cast(:factor_set as varchar) as factor_set,
        patient_id,
        taper_start,
        baseline_mme,
        min_window_mme,
        end_mme,
        max_monthly_reduction_pct,
        discontinued,
        stop_day,
        stop_mme
    from taper_measured
)

select * from final
