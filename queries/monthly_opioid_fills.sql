-- monthly_opioid_fills: opioid analgesic fills and distinct patients filling, per calendar month, for the same
-- population as the Overview's headline "Patients with an opioid fill" (measure_multiple_prescribers): the
-- exclusions applied (:exclude) and each patient counted for the clinician the period attributes them to
-- (fragment attribution), so the patients of any month are among the headline's.
-- Parameters: :start (date) first day included; :end (date) last day included; :exclude (boolean) leave out
-- patients with cancer, hospice/palliative care or sickle cell disease; :all_clinicians (boolean) true to count
-- every patient, else only patients attributed to one of :clinician_ids (list of text, bound as an expanding
-- IN list).
-- Returns one row per month with a fill: month (date, first of month), patients (distinct patients with an
-- opioid analgesic fill in the month), prescriptions (those patients' opioid analgesic fills in the month,
-- whoever wrote them).
with
-- @include opioid_rx
-- @include attribution
fills as (
    select r.patient_id, cast(date_trunc('month', r.fill_date) as date) as month
    from opioid_rx as r
    inner join attribution as a on a.patient_id = r.patient_id
    where r.fill_date between :start and :end
        and (:all_clinicians or a.clinician_id in :clinician_ids)
),

final as (
    select month, count(distinct patient_id) as patients, count(*) as prescriptions
    from fills
    group by month
)

select * from final order by month
