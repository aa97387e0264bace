-- fragment stored_tapers: the tapers measured at load time (table stored_tapers, built by
-- queries/build_tapers.sql with the default taper parameters), with their category under the speed bands
-- in force. Same columns as the fragment tapers (_tapers.sql), which measures them from scratch.
-- Parameters: :factor_set (text); :exclude (boolean) leave out patients with cancer, hospice/palliative
-- care or sickle cell disease; :abrupt_fraction (0.5); :gradual_max_pct (10) and :rapid_min_pct (40).
-- Defines: tapers(patient_id, taper_start, baseline_mme, min_window_mme, end_mme, max_monthly_reduction_pct,
--   discontinued, stop_day, stop_mme, category).
tapers as (
    select
        t.patient_id,
        t.taper_start,
        t.baseline_mme,
        t.min_window_mme,
        t.end_mme,
        t.max_monthly_reduction_pct,
        t.discontinued,
        t.stop_day,
        t.stop_mme,
        case
            when t.discontinued and t.stop_mme >= :abrupt_fraction * t.baseline_mme then 'abrupt_discontinuation'
            when t.max_monthly_reduction_pct > :rapid_min_pct then 'rapid'
            when t.max_monthly_reduction_pct <= :gradual_max_pct then 'gradual'
            else 'moderate'
        end as category
    from stored_tapers as t
    inner join patients as pt on pt.patient_id = t.patient_id
    where t.factor_set = :factor_set
        and not (:exclude and (pt.cancer or pt.hospice_palliative or pt.sickle_cell))
),
