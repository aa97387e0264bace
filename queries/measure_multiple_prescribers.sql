-- measure_multiple_prescribers: patients receiving opioids from many prescribers (PQA OMP; HEDIS UOP).
-- Parameters: :exclude; :start, :end (date); :prescriber_window (180) days; :prescriber_min (4).
-- Returns one row per patient with an opioid analgesic fill in the period: patient_id, clinician_id,
-- clinic_id (attribution; the measure is compared between clinics), in_numerator (>= :prescriber_min
-- distinct prescribers among fills within some :prescriber_window-day window in the period),
-- value (the largest number of prescribers in such a window).
with
-- @include opioid_rx
-- @include measurable_patients
-- @include attribution
period_fills as (
    select patient_id, fill_date, clinician_id
    from opioid_rx
    where fill_date between :start and :end
),

windows as (
    select a.patient_id, a.fill_date, count(distinct b.clinician_id) as prescribers
    from period_fills as a
    inner join period_fills as b
        on b.patient_id = a.patient_id
        and b.fill_date between a.fill_date and a.fill_date + :prescriber_window - 1
    group by a.patient_id, a.fill_date
),

per_patient as (
    select patient_id, max(prescribers) as prescribers
    from windows
    group by patient_id
),

final as (
    select
        a.patient_id,
        a.clinician_id,
        a.clinic_id,
        p.prescribers >= :prescriber_min as in_numerator,
        cast(p.prescribers as double precision) as value
    from per_patient as p
    inner join attribution as a on a.patient_id = p.patient_id
)

select * from final
where patient_id in (select patient_id from measurable_patients)
