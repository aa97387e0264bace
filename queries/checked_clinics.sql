-- checked_clinics: every staged line of clinics.csv, typed, with the reason it cannot be loaded (or NULL).
-- Reads stg_clinics (line_no bigint, clinic_id, clinic_name: text) and the clinics already loaded.
-- No parameters.
-- Returns one row per staged line: line_no, row_id, reason_code, reason, clinic_id, clinic_name.
with staged as (
    select line_no, trim(clinic_id) as clinic_id, trim(clinic_name) as clinic_name
    from stg_clinics
),

ids as (
    select clinic_id, min(line_no) as first_line, count(distinct clinic_name) as n_variants
    from staged
    group by clinic_id
),

existing as (
    select distinct clinic_id from clinics
),

flagged as (
    select
        s.*,
        i.first_line,
        case
            when s.clinic_id = '' then 'missing_id'
            when i.n_variants > 1 then 'conflicting_duplicate'
            when s.line_no > i.first_line then 'duplicate'
            when e.clinic_id is not null then 'already_loaded'
            when s.clinic_name = '' then 'missing_name'
        end as reason_code
    from staged as s
    inner join ids as i on i.clinic_id = s.clinic_id
    left join existing as e on e.clinic_id = s.clinic_id
),

final as (
    select
        line_no,
        clinic_id as row_id,
        reason_code,
        case reason_code
            when 'missing_id' then 'clinic_id is blank'
            when 'conflicting_duplicate' then 'clinic_id ' || clinic_id || ' appears on several lines that differ; none can be trusted'
            when 'duplicate' then 'exact repeat of line ' || cast(first_line as varchar) || ' (loaded once)'
            when 'already_loaded' then 'clinic_id ' || clinic_id || ' is already in the database (use --replace to reload)'
            when 'missing_name' then 'clinic_name is blank'
        end as reason,
        clinic_id,
        clinic_name
    from flagged
)

select * from final
