-- clinician_names: clinicians' names, for the documents addressed to a clinician (feedback letters)
-- and for roles allowed to see names. Kept apart from clinician_directory so that nothing else reads names.
-- No parameters.
-- Returns one row per clinician: clinician_id, clinician_name ('' when not recorded).
with final as (
    select
        clinician_id,
        coalesce(clinician_name, '') as clinician_name
    from clinicians
)

select * from final order by clinician_id
