-- monthly_opioid_fills: opioid analgesic fills and distinct patients filling, per calendar month.
-- Parameters: :start (date) first day included; :end (date) last day included; :all_clinicians (boolean)
-- true to count every prescriber's fills, else only those of :clinician_ids (list of text, bound as an
-- expanding IN list).
-- Returns one row per month with a fill: month (date, first of month), patients, prescriptions.
with fills as (
    select patient_id, cast(date_trunc('month', fill_date) as date) as month
    from prescriptions
    where drug_class = 'opioid_analgesic'
        and fill_date between :start and :end
        and (:all_clinicians or clinician_id in :clinician_ids)
),

final as (
    select month, count(distinct patient_id) as patients, count(*) as prescriptions
    from fills
    group by month
)

select * from final order by month
