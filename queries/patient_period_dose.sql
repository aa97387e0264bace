-- patient_period_dose: opioid analgesic dose per patient and period, from the daily series.
-- Parameters: :factor_set (text); :exclude (boolean); :start, :months, :days, :n_periods (see _periods.sql).
-- Returns one row per patient with supply in a period: patient_id, period_index, period_start, period_end,
-- period_days, total_mme, days_supplied (days with any opioid analgesic supply), avg_mme_supplied
-- (total MME / days with supply: DESIGN.md's default denominator), avg_mme_period (total MME / days in
-- the period: the fixed-window variant), max_daily_mme.
with
-- @include dose_segments
-- @include periods
period_overlaps as (
    select
        s.patient_id,
        p.period_index,
        p.period_start,
        p.period_end,
        p.period_days,
        s.daily_mme,
        least(s.seg_end, p.period_end) - greatest(s.seg_start, p.period_start) + 1 as days
    from dose_segments as s
    inner join periods as p
        on s.seg_start <= p.period_end
        and s.seg_end >= p.period_start
    where s.supplied
),

final as (
    select
        patient_id,
        period_index,
        period_start,
        period_end,
        period_days,
        sum(days * daily_mme) as total_mme,
        sum(days) as days_supplied,
        sum(days * daily_mme) / sum(days) as avg_mme_supplied,
        sum(days * daily_mme) / period_days as avg_mme_period,
        max(daily_mme) as max_daily_mme
    from period_overlaps
    group by patient_id, period_index, period_start, period_end, period_days
)

select * from final
