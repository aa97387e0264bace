-- measure_ltot_dose: long-term patients in a period and their average daily MME (high_dose_90,
-- high_dose_50, mean_daily_mme).
-- Parameters: :factor_set, :exclude; :start, :end, :months (0), :days, :n_periods (1) one period;
--   :threshold_mme (number) the high-dose threshold. Long-term episodes were measured at load time
--   (_stored_ltot_episodes.sql, default Von Korff parameters); :dose_unknown (boolean, false) true returns
--   instead the long-term patients left out because their dose is unknown (a day in the period with
--   supply of a prescription that has no MME factor in the set; _period_dose.sql).
-- Returns one row per patient on long-term therapy in the period (DESIGN.md: an LTOT episode overlaps it)
-- with supply in it: patient_id, clinician_id, clinic_id (attribution), in_numerator (average daily
-- MME on days with supply >= :threshold_mme), value (that average, MME a day).
with
-- @include opioid_rx
-- @include measurable_patients
-- @include dose_segments
-- @include periods
-- @include period_dose
-- @include stored_ltot_episodes
-- @include period_ltot
-- @include attribution
final as (
    select
        a.patient_id,
        a.clinician_id,
        a.clinic_id,
        d.avg_mme_supplied >= :threshold_mme as in_numerator,
        d.avg_mme_supplied as value
    from period_ltot as l
    inner join period_dose as d on d.patient_id = l.patient_id and d.period_index = l.period_index
    inner join attribution as a on a.patient_id = l.patient_id
    where d.dose_known = not :dose_unknown
)

select * from final
where patient_id in (select patient_id from measurable_patients)
