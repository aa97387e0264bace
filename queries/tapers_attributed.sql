-- tapers_attributed: every taper or discontinuation with the clinician responsible at its start.
-- Parameters: :factor_set, :exclude; :abrupt_fraction, :gradual_max_pct, :rapid_min_pct (_stored_tapers.sql).
-- Returns one row per taper: patient_id, clinician_id, clinic_id (most opioid analgesic days in the
-- baseline window before the start; ties: latest fill), taper_start, baseline_mme, end_mme,
-- max_monthly_reduction_pct, discontinued, stop_day, category, window_end (the last day of the patient's
-- record window: whether the taper's follow-up is in the data is judged against it).
with
-- @include opioid_rx
-- @include stored_tapers
anchors as (
    select patient_id, taper_start as anchor_day from tapers
),

-- @include anchored_attribution
final as (
    select
        t.patient_id,
        a.clinician_id,
        a.clinic_id,
        t.taper_start,
        t.baseline_mme,
        t.end_mme,
        t.max_monthly_reduction_pct,
        t.discontinued,
        t.stop_day,
        t.category,
        w.window_end
    from tapers as t
    inner join patients as w on w.patient_id = t.patient_id
    left join anchored_attribution as a on a.patient_id = t.patient_id and a.anchor_day = t.taper_start
)

select * from final order by taper_start, clinician_id
