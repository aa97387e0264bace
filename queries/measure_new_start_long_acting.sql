-- measure_new_start_long_acting: new starts on an extended-release/long-acting opioid (CDC 2022 rec. 3).
-- Parameters: :exclude; :start, :end (date); :new_start_lookback (90).
-- Returns one row per new start in the period: patient_id, clinician_id (the index prescriber),
-- clinic_id, in_numerator (an ER/LA fill on the index day), value (NULL).
with
-- @include opioid_rx
-- @include measurable_patients
-- @include new_starts
final as (
    select
        patient_id,
        clinician_id,
        clinic_id,
        index_long_acting as in_numerator,
        cast(null as double precision) as value
    from new_starts
)

select * from final
where patient_id in (select patient_id from measurable_patients)
