-- clinician_directory: who can be filtered on, without names (names are shown only where a role allows).
-- No parameters.
-- Returns one row per clinician: clinician_id, specialty ('' when not recorded), clinic_id, clinic_name.
with final as (
    select
        d.clinician_id,
        coalesce(d.specialty, '') as specialty,
        d.clinic_id,
        coalesce(c.clinic_name, d.clinic_id) as clinic_name
    from clinicians as d
    left join clinics as c on c.clinic_id = d.clinic_id
)

select * from final order by clinic_id, clinician_id
