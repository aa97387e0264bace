-- measure_naloxone_at_50: patients at or above a dose, and whether they filled naloxone in the period.
-- Parameters: :factor_set, :exclude; :start, :end, :months (0), :days, :n_periods (1); :naloxone_mme (50);
--   :dose_unknown (boolean, false) true returns instead the patients with supply in the period whose dose
--   is unknown (whether they reach :naloxone_mme cannot be told; _period_dose.sql), with in_numerator as above.
-- Returns one row per patient whose average daily MME on days with supply in the period is
-- >= :naloxone_mme: patient_id, clinician_id, clinic_id, in_numerator (a naloxone fill in the period),
-- value (NULL). CDC 2022 recommendation 8: offer naloxone at >= 50 MME a day.
with
-- @include opioid_rx
-- @include measurable_patients
-- @include dose_segments
-- @include periods
-- @include period_dose
-- @include attribution
naloxone as (
    select distinct patient_id
    from prescriptions
    where drug_class = 'naloxone' and fill_date between :start and :end
),

final as (
    select
        a.patient_id,
        a.clinician_id,
        a.clinic_id,
        n.patient_id is not null as in_numerator,
        cast(null as double precision) as value
    from period_dose as d
    inner join attribution as a on a.patient_id = d.patient_id
    left join naloxone as n on n.patient_id = d.patient_id
    where (d.dose_known and not :dose_unknown and d.avg_mme_supplied >= :naloxone_mme)
        or (not d.dose_known and :dose_unknown)
)

select * from final
where patient_id in (select patient_id from measurable_patients)
