-- patient_mix: the patient characteristics a measure's share may be adjusted for (analysis.casemix).
-- Parameters: :start, :end (date) the period; :exclude (boolean) leave out the excluded patients, as the
--   measures do.
-- Returns one row per patient: patient_id, birth_date (date or NULL), sex
-- (as loaded, or NULL), opioid_use_disorder (boolean), long_term_therapy (boolean: a long-term episode,
-- Von Korff 2008, measured at load time, overlaps the period).
with
-- @include stored_ltot_episodes
long_term as (
    select distinct patient_id
    from ltot_episodes
    where is_ltot and episode_start <= :end and episode_end >= :start
),

final as (
    select
        pt.patient_id,
        pt.birth_date,
        pt.sex,
        pt.opioid_use_disorder,
        l.patient_id is not null as long_term_therapy
    from patients as pt
    left join long_term as l on l.patient_id = pt.patient_id
    where not (:exclude and (pt.cancer or pt.hospice_palliative or pt.sickle_cell))
)

select * from final
