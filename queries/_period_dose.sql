-- fragment period_dose: opioid analgesic dose per patient and period. Requires dose_segments, periods.
-- Defines: period_dose(patient_id, period_index, period_start, period_end, period_days, total_mme,
--   days_supplied, avg_mme_supplied (total / days with supply), avg_mme_period (total / days in period),
--   max_daily_mme); one row per patient with supply in a period.
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

period_dose as (
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
),
