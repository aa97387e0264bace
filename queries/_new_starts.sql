-- fragment new_starts: patients starting opioid analgesics in a period. Requires opioid_rx.
-- Parameters: :start, :end (date) the period; :new_start_lookback (integer, 90).
--   The look-back must lie inside the patient's record window (patients.window_start: the patient's own
--   record_start, or the data's first fill date): without those days no one can say there was no supply.
-- Defines: new_starts(patient_id, index_day, clinician_id, clinic_id, index_days_supply, index_long_acting).
--   A new start is the first fill in the period with no opioid analgesic supply on any of the
--   :new_start_lookback days before it (CDC 2022; PQA IOP); it needs that many days of data before it.
--   It belongs to the prescriber of the index fill (DESIGN.md); with several fills that day, the one with
--   the longest supply (then the lower rx_id). Supply and long-acting look at every fill on the index day.
new_start_fills as (
    select
        *,
        max(last_day) over (
            partition by patient_id order by fill_date, rx_id rows between unbounded preceding and 1 preceding
        ) as covered_until
    from opioid_rx
),

new_start_index as (
    select f.patient_id, min(f.fill_date) as index_day
    from new_start_fills as f
    inner join patients as w on w.patient_id = f.patient_id
    where f.fill_date between :start and :end
        and f.fill_date - :new_start_lookback >= w.window_start
        and (f.covered_until is null or f.covered_until < f.fill_date - :new_start_lookback)
    group by f.patient_id
),

new_start_index_fills as (
    select
        f.patient_id,
        f.fill_date,
        f.clinician_id,
        max(f.days_supply) over (partition by f.patient_id) as index_days_supply,
        max(case when f.long_acting then 1 else 0 end) over (partition by f.patient_id) as any_long_acting,
        row_number() over (partition by f.patient_id order by f.days_supply desc, f.rx_id) as pick
    from new_start_index as i
    inner join opioid_rx as f on f.patient_id = i.patient_id and f.fill_date = i.index_day
),

new_starts as (
    select
        s.patient_id,
        s.fill_date as index_day,
        s.clinician_id,
        c.clinic_id,
        s.index_days_supply,
        s.any_long_acting = 1 as index_long_acting
    from new_start_index_fills as s
    inner join clinicians as c on c.clinician_id = s.clinician_id
    where s.pick = 1
),
