-- checked_events: every staged line of events.csv, typed, with the reason it cannot be loaded (or NULL).
-- Reads stg_events (line_no bigint, patient_id, event_date, event_type: text) and patients (already
-- holding this load's rows).
-- Parameters: :as_of (date) an event after it is in the future.
-- Returns one row per staged line: line_no, row_id, reason_code, reason, patient_id, event_date, event_type.
-- Events have no id: two ED visits on one day are plausible, so rows repeated within a file are all kept;
-- a row identical to one loaded by an earlier load is rejected, so loading a folder twice adds nothing.
with staged as (
    select
        line_no,
        trim(patient_id) as patient_id,
        trim(event_date) as event_date,
        lower(trim(event_type)) as event_type
    from stg_events
),

known_patients as (
    select distinct patient_id from patients
),

existing as (
    select distinct patient_id, event_date, event_type from events
),

flagged as (
    select
        s.*,
        rx_parse_date(s.event_date) as event_date_v,
        case
            when kp.patient_id is null then 'unknown_patient'
            when rx_parse_date(s.event_date) is null then 'bad_event_date'
            when rx_parse_date(s.event_date) > :as_of then 'future_event_date'
            when s.event_type = '' then 'missing_event_type'
            when e.patient_id is not null then 'already_loaded'
        end as reason_code
    from staged as s
    left join known_patients as kp on kp.patient_id = s.patient_id
    left join existing as e
        on e.patient_id = s.patient_id
        and e.event_date = rx_parse_date(s.event_date)
        and e.event_type = s.event_type
),

final as (
    select
        line_no,
        cast(null as varchar) as row_id,
        reason_code,
        case reason_code
            when 'unknown_patient' then 'patient_id is not in patients.csv'
            when 'bad_event_date' then 'event_date ''' || event_date || ''' is not a real date in YYYY-MM-DD form'
            when 'future_event_date' then 'event_date ' || event_date || ' is after the load date'
            when 'missing_event_type' then 'event_type is blank'
            when 'already_loaded' then 'the same event is already in the database (use --replace to reload)'
        end as reason,
        patient_id,
        event_date_v as event_date,
        event_type
    from flagged
)

select * from final
