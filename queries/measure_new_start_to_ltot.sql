-- measure_new_start_to_ltot: new starts whose episode becomes long-term therapy (Von Korff 2008).
-- Parameters: :exclude; :start, :end (date); :new_start_lookback (90); long-term episodes as measured at load
-- time (_stored_ltot_episodes.sql, default Von Korff parameters).
-- Returns one row per new start in the period: patient_id, clinician_id (the index prescriber), clinic_id,
-- in_numerator (the episode beginning at the index fill is long-term, using all data available),
-- value (the episode's length in days).
with
-- @include opioid_rx
-- @include measurable_patients
-- @include new_starts
-- @include stored_ltot_episodes
final as (
    select
        n.patient_id,
        n.clinician_id,
        n.clinic_id,
        coalesce(e.is_ltot, false) as in_numerator,
        cast(e.duration_days as double precision) as value
    from new_starts as n
    left join ltot_episodes as e on e.patient_id = n.patient_id and e.episode_start = n.index_day
)

select * from final
where patient_id in (select patient_id from measurable_patients)
