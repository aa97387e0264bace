-- fragment period_dose: opioid analgesic dose per patient and period. Requires dose_segments, periods.
-- Defines: period_dose(patient_id, period_index, period_start, period_end, period_days, total_mme,
--   days_supplied, avg_mme_supplied (total / days with supply), avg_mme_period (total / days in period),
--   max_daily_mme, unknown_days (days with supply of a prescription that has no MME factor in the set),
--   dose_known (unknown_days = 0)); one row per patient with supply in a period.
--   A patient with any day of unknown dose in the period has an unknown average: the known part alone
--   understates it, so dose-based measures leave the patient out (README "Methods: the dose engine").
period_overlaps as (
    select
        s.patient_id,
        p.period_index,
        p.period_start,
        p.period_end,
        p.period_days,
        s.daily_mme,
        s.dose_known,
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
        max(daily_mme) as max_daily_mme,
        sum(case when dose_known then 0 else days end) as unknown_days,
        sum(case when dose_known then 0 else days end) = 0 as dose_known
    from period_overlaps
    group by patient_id, period_index, period_start, period_end, period_days
),
