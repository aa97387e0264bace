-- checked_clinicians: every staged line of clinicians.csv, typed, with the reason it cannot be loaded (or NULL).
-- Reads stg_clinicians (line_no bigint, clinician_id, clinician_name, specialty, clinic_id: text), clinics
-- (already holding this load's clinics) and the clinicians already loaded. No parameters.
-- Returns one row per staged line: line_no, row_id, reason_code, reason, clinician_id, clinician_name,
-- specialty, clinic_id.
with staged as (
    select
        line_no,
        trim(clinician_id) as clinician_id,
        trim(clinician_name) as clinician_name,
        trim(specialty) as specialty,
        trim(clinic_id) as clinic_id
    from stg_clinicians
),

ids as (
    select
        clinician_id,
        min(line_no) as first_line,
        count(distinct concat_ws(chr(31), clinician_name, specialty, clinic_id)) as n_variants
    from staged
    group by clinician_id
),

existing as (
    select distinct clinician_id from clinicians
),

known_clinics as (
    select distinct clinic_id from clinics
),

flagged as (
    select
        s.*,
        i.first_line,
        case
            when s.clinician_id = '' then 'missing_id'
            when i.n_variants > 1 then 'conflicting_duplicate'
            when s.line_no > i.first_line then 'duplicate'
            when e.clinician_id is not null then 'already_loaded'
            when k.clinic_id is null then 'unknown_clinic'
        end as reason_code
    from staged as s
    inner join ids as i on i.clinician_id = s.clinician_id
    left join existing as e on e.clinician_id = s.clinician_id
    left join known_clinics as k on k.clinic_id = s.clinic_id
),

final as (
    select
        line_no,
        clinician_id as row_id,
        reason_code,
        case reason_code
            when 'missing_id' then 'clinician_id is blank'
            when 'conflicting_duplicate' then 'clinician_id ' || clinician_id || ' appears on several lines that differ; none can be trusted'
            when 'duplicate' then 'exact repeat of line ' || cast(first_line as varchar) || ' (loaded once)'
            when 'already_loaded' then 'clinician_id ' || clinician_id || ' is already in the database (use --replace to reload)'
            when 'unknown_clinic' then 'clinic_id ''' || clinic_id || ''' is not in clinics.csv'
        end as reason,
        clinician_id,
        nullif(clinician_name, '') as clinician_name,
        nullif(specialty, '') as specialty,
        clinic_id
    from flagged
)

select * from final
