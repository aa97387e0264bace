-- checked_prescriptions: every staged line of prescriptions.csv, typed, with the reason it cannot be loaded (or NULL).
-- Reads stg_prescriptions (line_no bigint and the contract's columns as text; optional ones blank when absent),
-- stg_drugs (each distinct drug description resolved by analysis.drugs.resolve_drug: the six raw text
-- columns, then ingredient, strength, strength_unit, dose_form, long_acting, drug_class, drug_parsed, error,
-- form_group: analysis.vocabulary.form_group, the dose-form group that picks an MME factor),
-- and patients, clinicians (already holding this load's rows) and the prescriptions already loaded.
-- Parameters: :as_of (date) a fill date after it is in the future.
-- Returns one row per staged line: line_no, row_id, reason_code, reason, then the prescriptions table's columns.
-- A row is rejected for the first problem found, in the order of the checks below.
with staged as (
    select
        line_no,
        trim(rx_id) as rx_id,
        trim(patient_id) as patient_id,
        trim(clinician_id) as clinician_id,
        trim(fill_date) as fill_date,
        trim(drug_name) as drug_name,
        trim(ingredient) as ingredient,
        trim(strength) as strength,
        trim(strength_unit) as strength_unit,
        trim(dose_form) as dose_form,
        trim(quantity) as quantity,
        trim(days_supply) as days_supply,
        trim(long_acting) as long_acting,
        trim(ndc) as ndc,
        trim(rxcui) as rxcui,
        trim(pharmacy_id) as pharmacy_id
    from stg_prescriptions
),

ids as (
    select
        rx_id,
        min(line_no) as first_line,
        count(distinct concat_ws(
            chr(31), patient_id, clinician_id, fill_date, drug_name, ingredient, strength, strength_unit,
            dose_form, quantity, days_supply, long_acting, ndc, rxcui, pharmacy_id
        )) as n_variants
    from staged
    group by rx_id
),

existing as (
    select distinct rx_id from prescriptions
),

known_patients as (
    select distinct patient_id from patients
),

known_clinicians as (
    select distinct clinician_id from clinicians
),

typed as (
    select
        s.*,
        rx_parse_date(s.fill_date) as fill_date_v,
        rx_parse_number(s.quantity) as quantity_v,
        rx_parse_whole(s.days_supply) as days_supply_v,
        d.ingredient as drug_ingredient,
        d.strength as drug_strength,
        d.strength_unit as drug_strength_unit,
        d.dose_form as drug_dose_form,
        d.long_acting as drug_long_acting,
        d.drug_class,
        d.drug_parsed,
        d.error as drug_error,
        d.form_group as drug_form_group
    from staged as s
    left join stg_drugs as d
        on d.raw_drug_name = s.drug_name
        and d.raw_ingredient = s.ingredient
        and d.raw_strength = s.strength
        and d.raw_strength_unit = s.strength_unit
        and d.raw_dose_form = s.dose_form
        and d.raw_long_acting = s.long_acting
),

flagged as (
    select
        t.*,
        i.first_line,
        case
            when t.rx_id = '' then 'missing_id'
            when i.n_variants > 1 then 'conflicting_duplicate'
            when t.line_no > i.first_line then 'duplicate'
            when e.rx_id is not null then 'already_loaded'
            when kp.patient_id is null then 'unknown_patient'
            when kc.clinician_id is null then 'unknown_clinician'
            when t.fill_date_v is null then 'bad_fill_date'
            when t.fill_date_v > :as_of then 'future_fill_date'
            when t.quantity_v is null then 'bad_quantity'
            when t.quantity_v <= 0 then 'non_positive_quantity'
            when t.days_supply = '' then 'missing_days_supply'
            when t.days_supply_v is null then 'bad_days_supply'
            when t.days_supply_v <= 0 then 'non_positive_days_supply'
            when t.days_supply_v > 365 then 'days_supply_over_365'
            when t.drug_error is not null then 'unparseable_drug'
        end as reason_code
    from typed as t
    inner join ids as i on i.rx_id = t.rx_id
    left join existing as e on e.rx_id = t.rx_id
    left join known_patients as kp on kp.patient_id = t.patient_id
    left join known_clinicians as kc on kc.clinician_id = t.clinician_id
),

final as (
    select
        line_no,
        rx_id as row_id,
        reason_code,
        case reason_code
            when 'missing_id' then 'rx_id is blank'
            when 'conflicting_duplicate' then 'rx_id ' || rx_id || ' appears on several lines that differ; none can be trusted'
            when 'duplicate' then 'exact repeat of line ' || cast(first_line as varchar) || ' (loaded once)'
            when 'already_loaded' then 'rx_id ' || rx_id || ' is already in the database (use --replace to reload)'
            when 'unknown_patient' then 'patient_id is not in patients.csv'
            when 'unknown_clinician' then 'clinician_id ''' || clinician_id || ''' is not in clinicians.csv'
            when 'bad_fill_date' then 'fill_date ''' || fill_date || ''' is not a real date in YYYY-MM-DD form'
            when 'future_fill_date' then 'fill_date ' || fill_date || ' is after the load date'
            when 'bad_quantity' then 'quantity ''' || quantity || ''' is not a number below 10^15'
            when 'non_positive_quantity' then 'quantity ' || quantity || ' must be greater than zero'
            when 'missing_days_supply' then 'days_supply is blank'
            when 'bad_days_supply' then 'days_supply ''' || days_supply || ''' is not a whole number'
            when 'non_positive_days_supply' then 'days_supply ' || days_supply || ' must be at least 1'
            when 'days_supply_over_365' then 'days_supply ' || days_supply || ' is over 365 days'
            when 'unparseable_drug' then drug_error
        end as reason,
        rx_id,
        patient_id,
        clinician_id,
        fill_date_v as fill_date,
        nullif(drug_name, '') as drug_name,
        drug_ingredient as ingredient,
        drug_strength as strength,
        drug_strength_unit as strength_unit,
        drug_dose_form as dose_form,
        quantity_v as quantity,
        days_supply_v as days_supply,
        drug_long_acting as long_acting,
        drug_class,
        drug_parsed,
        nullif(ndc, '') as ndc,
        nullif(rxcui, '') as rxcui,
        nullif(pharmacy_id, '') as pharmacy_id,
        drug_form_group as form_group
    from flagged
)

select * from final
