-- period_dose_coverage: how many opioid analgesic prescriptions filled in a period have no dose under a
-- factor set, per prescriber (the Overview warns when more than 1% have none; analysis.dose_unknown).
-- Parameters: :factor_set (text); :exclude (boolean); :start, :end (date) fill dates in the period.
-- Returns one row per clinician with an opioid fill in the period: clinician_id, prescriptions,
-- no_dose (prescriptions whose ingredient, unit and dose form have no MME factor in the set, or whose
-- quantity is unknown).
with
-- @include opioid_rx
-- @include rx_mme
final as (
    select
        clinician_id,
        count(*) as prescriptions,
        sum(case when mme_status in ('no_factor', 'no_quantity') then 1 else 0 end) as no_dose
    from rx_mme
    where fill_date between :start and :end
    group by clinician_id
)

select * from final order by clinician_id
