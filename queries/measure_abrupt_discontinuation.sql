-- measure_abrupt_discontinuation: abrupt stops among patients with an eligible baseline (Neprash 2021).
-- Parameters: :factor_set, :exclude; :start, :end (date); :baseline_days, :baseline_min_mme, :abrupt_fraction
--   (tapers themselves were measured at load time, _stored_tapers.sql).
-- Returns one row per patient with an eligible baseline in the period: a mean daily MME of at least
-- :baseline_min_mme over the :baseline_days before the period starts, or a taper starting in the period
-- (whose baseline is eligible by definition). Columns: patient_id, clinician_id, clinic_id (most opioid
-- days in the :baseline_days before the first taper start in the period, or before the period start),
-- in_numerator (an abrupt discontinuation starts in the period), value (NULL), baseline_mme (MME a day: the
-- highest baseline of the patient's tapers in the period, else the baseline before the period starts;
-- analysis.casemix's baseline dose band).
-- :dose_unknown (boolean, false): a patient whose dose is unknown on a day of the baseline before the
-- period, or whose taper in the period is left out (_stored_tapers.sql), is left out; true returns them.
with
-- @include opioid_rx
-- @include measurable_patients
-- @include dose_segments
-- @include stored_tapers
start_baselines as (
    select
        patient_id,
        sum((least(seg_end, :start - 1) - greatest(seg_start, :start - :baseline_days) + 1) * daily_mme)
            / :baseline_days as baseline_mme,
        min(case when dose_known then 1 else 0 end) = 1 as dose_known
    from dose_segments
    where supplied and seg_start <= :start - 1 and seg_end >= :start - :baseline_days
    group by patient_id
),

period_tapers as (
    select
        patient_id,
        min(taper_start) as first_start,
        max(case when category = 'abrupt_discontinuation' then 1 else 0 end) as abrupt,
        max(baseline_mme) as baseline_mme
    from tapers
    where taper_start between :start and :end
    group by patient_id
),

eligible as (
    select patient_id from start_baselines
    where (dose_known and baseline_mme >= :baseline_min_mme and not :dose_unknown) or (not dose_known and :dose_unknown)
    union
    select patient_id from period_tapers
),

anchors as (
    select e.patient_id, coalesce(t.first_start, :start) as anchor_day, coalesce(t.abrupt, 0) = 1 as abrupt
    from eligible as e
    left join period_tapers as t on t.patient_id = e.patient_id
),

-- @include anchored_attribution
final as (
    select
        n.patient_id,
        a.clinician_id,
        a.clinic_id,
        n.abrupt as in_numerator,
        cast(null as double precision) as value,
        coalesce(t.baseline_mme, b.baseline_mme) as baseline_mme
    from anchors as n
    inner join anchored_attribution as a on a.patient_id = n.patient_id and a.anchor_day = n.anchor_day
    left join period_tapers as t on t.patient_id = n.patient_id
    left join start_baselines as b on b.patient_id = n.patient_id
)

select * from final
where patient_id in (select patient_id from measurable_patients)
