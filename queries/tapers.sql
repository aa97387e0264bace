-- tapers: every taper or discontinuation from a baseline of >= 50 MME a day (definitions in _tapers.sql).
-- Parameters: :factor_set (text); :exclude (boolean); the taper parameters of _tapers.sql.
-- Returns one row per taper: patient_id, taper_start, baseline_mme, min_window_mme, end_mme (mean daily MME
-- over the last 30 days of follow-up or of the data), max_monthly_reduction_pct, discontinued, stop_day,
-- stop_mme (mean daily MME over the 30 days before stopping), category (gradual | moderate | rapid |
-- abrupt_discontinuation).
with
-- @include dose_segments
-- @include tapers
final as (
    select * from tapers
)

select * from final order by patient_id, taper_start
