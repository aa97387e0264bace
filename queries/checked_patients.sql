-- checked_patients: every staged line of patients.csv, typed, with the reason it cannot be loaded (or NULL).
-- Reads stg_patients (line_no bigint, patient_id, birth_date, sex, cancer, hospice_palliative, sickle_cell,
-- opioid_use_disorder, record_start, record_end: text), stg_prescriptions (each patient's first fill date,
-- a birth date after it is impossible) and the patients already loaded.
-- Parameters: :as_of (date) a birth date after it is impossible. (The record window is clipped to the data
-- when the load is done: queries/build_record_windows.sql.)
-- Returns one row per staged line: line_no, row_id, reason_code, reason, patient_id, birth_date, sex,
-- cancer, hospice_palliative, sickle_cell, opioid_use_disorder, record_start, record_end.
-- A birth date that is impossible but would be possible a century earlier (2065 for 1965) says so: the
-- usual slip of a two-digit year ('01-MAR-65') read in the wrong century.
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
        trim(opioid_use_disorder) as opioid_use_disorder,
        trim(record_start) as record_start,
        trim(record_end) as record_end
    from stg_patients
),

first_fills as (
    select trim(patient_id) as patient_id, min(rx_parse_date(trim(fill_date))) as first_fill
    from stg_prescriptions
    group by trim(patient_id)
),

ids as (
    select
        patient_id,
        min(line_no) as first_line,
        count(distinct concat_ws(chr(31), birth_date, sex, cancer, hospice_palliative, sickle_cell, opioid_use_disorder,
            record_start, record_end)) as n_variants
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
        rx_parse_date(s.record_start) as record_start_v,
        rx_parse_date(s.record_end) as record_end_v,
        f.first_fill,
        case when s.cancer = '' then false else rx_parse_bool(s.cancer) end as cancer_v,
        case when s.hospice_palliative = '' then false else rx_parse_bool(s.hospice_palliative) end as hospice_v,
        case when s.sickle_cell = '' then false else rx_parse_bool(s.sickle_cell) end as sickle_v,
        case when s.opioid_use_disorder = '' then false else rx_parse_bool(s.opioid_use_disorder) end as oud_v
    from staged as s
    left join first_fills as f on f.patient_id = s.patient_id
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
            when t.birth_date_v > t.first_fill then 'birth_after_first_fill'
            when t.cancer_v is null then 'bad_flag_cancer'
            when t.hospice_v is null then 'bad_flag_hospice_palliative'
            when t.sickle_v is null then 'bad_flag_sickle_cell'
            when t.oud_v is null then 'bad_flag_opioid_use_disorder'
            when t.record_start <> '' and t.record_start_v is null then 'bad_record_start'
            when t.record_end <> '' and t.record_end_v is null then 'bad_record_end'
            when t.record_end_v < t.record_start_v then 'record_end_before_start'
            when t.record_end_v < t.birth_date_v then 'record_end_before_birth'
        end as reason_code,
        -- A century earlier the date would be possible: the two-digit-year slip, said in the reason.
        case when t.birth_date_v is not null
                 and t.birth_date_v - interval '100 years' <= least(:as_of, coalesce(t.first_fill, :as_of))
            then ' (a two-digit year read in the wrong century? '
                 || cast(extract(year from t.birth_date_v) - 100 as varchar) || ' would fit)'
            else '' end as century_hint
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
            when 'future_birth_date' then 'birth_date ' || birth_date || ' is in the future' || century_hint
            when 'birth_after_first_fill' then 'birth_date ' || birth_date || ' is after the patient''s first fill ('
                || cast(first_fill as varchar) || ')' || century_hint
            when 'bad_flag_cancer' then 'cancer ''' || cancer || ''' is not true/false/1/0'
            when 'bad_flag_hospice_palliative' then 'hospice_palliative ''' || hospice_palliative || ''' is not true/false/1/0'
            when 'bad_flag_sickle_cell' then 'sickle_cell ''' || sickle_cell || ''' is not true/false/1/0'
            when 'bad_flag_opioid_use_disorder' then 'opioid_use_disorder ''' || opioid_use_disorder || ''' is not true/false/1/0'
            when 'bad_record_start' then 'record_start ''' || record_start || ''' is not a real date in YYYY-MM-DD form'
            when 'bad_record_end' then 'record_end ''' || record_end || ''' is not a real date in YYYY-MM-DD form'
            when 'record_end_before_start' then 'record_end ' || record_end || ' is before record_start ' || record_start
            when 'record_end_before_birth' then 'record_end ' || record_end || ' is before birth_date ' || birth_date
        end as reason,
        patient_id,
        birth_date_v as birth_date,
        nullif(sex, '') as sex,
        cancer_v as cancer,
        hospice_v as hospice_palliative,
        sickle_v as sickle_cell,
        oud_v as opioid_use_disorder,
        record_start_v as record_start,
        record_end_v as record_end
    from flagged
)

select * from final
