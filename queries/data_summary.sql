-- data_summary: headline counts of what is loaded, for the Overview and Data quality pages.
-- No parameters.
-- Returns one row: clinics, clinicians, patients, prescriptions, opioid_prescriptions, opioid_patients,
-- first_fill, last_fill, events.
with opioid as (
    select patient_id from prescriptions where drug_class = 'opioid_analgesic'
),

final as (
    select
        (select count(*) from clinics) as clinics,
        (select count(*) from clinicians) as clinicians,
        (select count(*) from patients) as patients,
        (select count(*) from prescriptions) as prescriptions,
        (select count(*) from opioid) as opioid_prescriptions,
        (select count(distinct patient_id) from opioid) as opioid_patients,
        (select min(fill_date) from prescriptions) as first_fill,
        (select max(fill_date) from prescriptions) as last_fill,
        (select count(*) from events) as events
)

select * from final
