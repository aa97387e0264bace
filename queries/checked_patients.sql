-- checked_patients: every staged line of patients.csv, typed, with the reason it cannot be loaded (or NULL).
-- Reads stg_patients (line_no bigint, patient_id, birth_date, sex, cancer, hospice_palliative, sickle_cell,
-- opioid_use_disorder: text) and the patients already loaded.
-- Parameters: :as_of (date) a birth date after it is impossible.
-- Returns one row per staged line: line_no, row_id, reason_code, reason, patient_id, birth_date, sex,
-- cancer, hospice_palliative, sickle_cell, opioid_use_disorder.
-- A blank flag means false: claims and EHR extracts record a condition's presence, not its absence.
with staged as (
    select
        line_no,
        trim(patient_id) as patient_id,
        trim(birth_date) as birth_date,
        trim(sex) as sex,
        trim(cancer) as cancer,
        trim(hospice_palliative) as hospice_palliative,
        trim(sickle_cell) as sickle_cell,
        trim(opioid_use_disorder) as opioid_use_disorder
    from stg_patients
),

ids as (
    select
        patient_id,
        min(line_no) as first_line,
        count(distinct concat_ws(chr(31), birth_date, sex, cancer, hospice_palliative, sickle_cell, opioid_use_disorder)) as n_variants
    from staged
    group by patient_id
),

existing as (
    select distinct patient_id from patients
),

typed as (
    select
        s.*,
        rx_parse_date(s.birth_date) as birth_date_v,
        case when s.cancer = '' then false else rx_parse_bool(s.cancer) end as cancer_v,
        case when s.hospice_palliative = '' then false else rx_parse_bool(s.hospice_palliative) end as hospice_v,
        case when s.sickle_cell = '' then false else rx_parse_bool(s.sickle_cell) end as sickle_v,
        case when s.opioid_use_disorder = '' then false else rx_parse_bool(s.opioid_use_disorder) end as oud_v
    from staged as s
),

flagged as (
    select
        t.*,
        i.first_line,
        case
            when t.patient_id = '' then 'missing_id'
            when i.n_variants > 1 then 'conflicting_duplicate'
            when t.line_no > i.first_line then 'duplicate'
            when e.patient_id is not null then 'already_loaded'
            when t.birth_date <> '' and t.birth_date_v is null then 'bad_birth_date'
            when t.birth_date_v > :as_of then 'future_birth_date'
            when t.cancer_v is null then 'bad_flag_cancer'
            when t.hospice_v is null then 'bad_flag_hospice_palliative'
            when t.sickle_v is null then 'bad_flag_sickle_cell'
            when t.oud_v is null then 'bad_flag_opioid_use_disorder'
        end as reason_code
    from typed as t
    inner join ids as i on i.patient_id = t.patient_id
    left join existing as e on e.patient_id = t.patient_id
),

final as (
    select
        line_no,
        patient_id as row_id,
        reason_code,
        case reason_code
            when 'missing_id' then 'patient_id is blank'
            when 'conflicting_duplicate' then 'patient_id appears on several lines that differ; none can be trusted'
            when 'duplicate' then 'exact repeat of line ' || cast(first_line as varchar) || ' (loaded once)'
            when 'already_loaded' then 'patient_id is already in the database (use --replace to reload)'
            when 'bad_birth_date' then 'birth_date ''' || birth_date || ''' is not a real date in YYYY-MM-DD form'
            when 'future_birth_date' then 'birth_date ' || birth_date || ' is in the future'
            when 'bad_flag_cancer' then 'cancer ''' || cancer || ''' is not true/false/1/0'
            when 'bad_flag_hospice_palliative' then 'hospice_palliative ''' || hospice_palliative || ''' is not true/false/1/0'
            when 'bad_flag_sickle_cell' then 'sickle_cell ''' || sickle_cell || ''' is not true/false/1/0'
            when 'bad_flag_opioid_use_disorder' then 'opioid_use_disorder ''' || opioid_use_disorder || ''' is not true/false/1/0'
        end as reason,
        patient_id,
        birth_date_v as birth_date,
        nullif(sex, '') as sex,
        cancer_v as cancer,
        hospice_v as hospice_palliative,
        sickle_v as sickle_cell,
        oud_v as opioid_use_disorder
    from flagged
)

select * from final
