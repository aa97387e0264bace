-- fragment stored_tapers: the tapers measured at load time (table stored_tapers, built by
-- queries/build_tapers.sql with the default taper parameters), with their category under the speed bands
-- in force. Same columns as the fragment tapers (_tapers.sql), which measures them from scratch.
-- Parameters: :factor_set (text); :exclude (boolean) leave out patients with cancer, hospice/palliative
-- care or sickle cell disease; :abrupt_fraction (0.5); :gradual_max_pct (10) and :rapid_min_pct (40);
-- :baseline_days, :followup_months; :dose_unknown (boolean, false) true returns instead the tapers left out
-- because the dose is unknown on a day with supply from the baseline's first day to the follow-up's last
-- (a prescription with no MME factor in the set: the fall may be a switch to a drug with no factor).
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
    left join (
        select distinct t2.patient_id, t2.taper_start
        from stored_tapers as t2
        inner join daily_dose_segments as u
            on u.factor_set = t2.factor_set
            and u.patient_id = t2.patient_id
            and u.supplied and not u.dose_known
            and u.seg_start <= t2.taper_start + 30 * :followup_months - 1
            and u.seg_end >= t2.taper_start - :baseline_days
        where t2.factor_set = :factor_set
    ) as unknown on unknown.patient_id = t.patient_id and unknown.taper_start = t.taper_start
    where t.factor_set = :factor_set
        and not (:exclude and (pt.cancer or pt.hospice_palliative or pt.sickle_cell))
        and (unknown.patient_id is not null) = :dose_unknown
),
