-- fragment dose_segments: each patient's daily MME as stretches of constant dose, read from the table
-- daily_dose_segments that every load rebuilds (queries/build_dose_segments.sql, for every factor set).
-- Parameters: :factor_set (text); :exclude (boolean) leave out patients with cancer, hospice/palliative
-- care or sickle cell disease.
-- Defines: dose_segments(patient_id, seg_start, seg_end, daily_mme, supplied, dose_known); seg_end is NULL
-- for the open stretch after the last supply, and gaps in supply have supplied = false and daily_mme 0;
-- dose_known is false where a prescription in supply has no MME factor in the set (dose unknown).
dose_segments as (
    select s.patient_id, s.seg_start, s.seg_end, s.daily_mme, s.supplied, s.dose_known
    from daily_dose_segments as s
    inner join patients as pt on pt.patient_id = s.patient_id
    where s.factor_set = :factor_set
        and not (:exclude and (pt.cancer or pt.hospice_palliative or pt.sickle_cell))
),
