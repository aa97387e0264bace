-- patient_period_dose: opioid analgesic dose per patient and period, from the daily series.
-- Parameters: :factor_set (text); :exclude (boolean); :start, :months, :days, :n_periods (see _periods.sql).
-- Returns one row per patient with supply in a period: patient_id, period_index, period_start, period_end,
-- period_days, total_mme, days_supplied (days with any opioid analgesic supply), avg_mme_supplied
-- (total MME / days with supply: DESIGN.md's default denominator), avg_mme_period (total MME / days in
-- the period: the fixed-window variant), max_daily_mme.
with
-- @include dose_segments
-- @include periods
-- @include period_dose
final as (
    select * from period_dose
)

select * from final
