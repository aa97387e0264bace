-- fragment anchored_attribution: the clinician responsible at a given day (a taper's start). Requires
-- opioid_rx and a CTE anchors(patient_id, anchor_day) defined before it.
-- Parameters: :baseline_days (integer) the look-back before the anchor day.
-- Defines: anchored_attribution(patient_id, anchor_day, clinician_id, clinic_id): the clinician who
--   supplied the most opioid analgesic days in the :baseline_days before the anchor day (the baseline a
--   taper is measured against); ties go to the latest fill, then the lower clinician_id.
anchored_days as (
    select
        a.patient_id,
        a.anchor_day,
        o.clinician_id,
        sum(least(o.last_day, a.anchor_day - 1) - greatest(o.fill_date, a.anchor_day - :baseline_days) + 1) as days,
        max(o.fill_date) as latest_fill
    from anchors as a
    inner join opioid_rx as o
        on o.patient_id = a.patient_id
        and o.fill_date <= a.anchor_day - 1
        and o.last_day >= a.anchor_day - :baseline_days
    group by a.patient_id, a.anchor_day, o.clinician_id
),

anchored_attribution as (
    select r.patient_id, r.anchor_day, r.clinician_id, c.clinic_id
    from (
        select
            *,
            row_number() over (
                partition by patient_id, anchor_day order by days desc, latest_fill desc, clinician_id
            ) as pick
        from anchored_days
    ) as r
    inner join clinicians as c on c.clinician_id = r.clinician_id
    where r.pick = 1
),
