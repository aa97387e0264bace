-- measure_new_start_over_7d: new starts whose first supply is longer than a week (CDC 2022 rec. 6).
-- Parameters: :exclude; :start, :end (date); :new_start_lookback (90); :new_start_max_days (7).
-- Returns one row per new start in the period (see _new_starts.sql): patient_id, clinician_id (the index
-- prescriber), clinic_id, in_numerator (index days' supply > :new_start_max_days), value (that supply).
with
-- @include opioid_rx
-- @include measurable_patients
-- @include new_starts
final as (
    select
        patient_id,
        clinician_id,
        clinic_id,
        index_days_supply > :new_start_max_days as in_numerator,
        cast(index_days_supply as double precision) as value
    from new_starts
)

select * from final
where patient_id in (select patient_id from measurable_patients)
