-- fragment attribution: each patient's clinician for a period (DESIGN.md "Attribution"). Requires opioid_rx.
-- Parameters: :start, :end (date) the period.
-- Defines: attribution(patient_id, clinician_id, clinic_id): the clinician who supplied the most opioid
--   analgesic days inside the period; ties go to the latest fill, then the lower clinician_id.
attribution_days as (
    select
        patient_id,
        clinician_id,
        sum(least(last_day, :end) - greatest(fill_date, :start) + 1) as days,
        max(fill_date) as latest_fill
    from opioid_rx
    where fill_date <= :end and last_day >= :start
    group by patient_id, clinician_id
),

attribution as (
    select r.patient_id, r.clinician_id, c.clinic_id
    from (
        select
            *,
            row_number() over (
                partition by patient_id order by days desc, latest_fill desc, clinician_id
            ) as pick
        from attribution_days
    ) as r
    inner join clinicians as c on c.clinician_id = r.clinician_id
    where r.pick = 1
),
