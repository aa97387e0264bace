-- measure_taper_rapid: tapers faster than 40% of baseline a month (Agnoli 2021; CDC 2022 pace).
-- Parameters: :factor_set, :exclude; :start, :end (date) tapers starting in this period; the taper
--   parameters of _stored_tapers.sql (:rapid_min_pct among them; tapers were measured at load time).
-- Returns one row per taper or discontinuation starting in the period: patient_id, clinician_id,
-- clinic_id (attributed at the taper start: most opioid days in the baseline window before it),
-- in_numerator (speed > :rapid_min_pct % of baseline a month), value (the speed), baseline_mme (MME a day
-- before the taper: analysis.casemix's baseline dose band).
with
-- @include opioid_rx
-- @include measurable_patients
-- @include stored_tapers
anchors as (
    select patient_id, taper_start as anchor_day
    from tapers
    where taper_start between :start and :end
),

-- @include anchored_attribution
final as (
    select
        t.patient_id,
        a.clinician_id,
        a.clinic_id,
        t.max_monthly_reduction_pct > :rapid_min_pct as in_numerator,
        t.max_monthly_reduction_pct as value,
        t.baseline_mme
    from tapers as t
    inner join anchored_attribution as a on a.patient_id = t.patient_id and a.anchor_day = t.taper_start
)

select * from final
where patient_id in (select patient_id from measurable_patients)
