-- checked_prescriptions: every staged line of prescriptions.csv, typed, with the reason it cannot be loaded (or NULL).
-- Reads stg_prescriptions (line_no bigint and the contract's columns as text; optional ones blank when absent),
-- stg_drugs (each distinct drug description identified by analysis.drugs.identify_drug: the eight raw text
-- columns (ingest.DRUG_KEY: drug_name ... long_acting, ndc, rxcui), then ingredient, strength, strength_unit,
-- dose_form, long_acting, drug_class, drug_parsed, error, form_group: analysis.vocabulary.form_group, the
-- dose-form group that picks an MME factor, drug_source: given | ndc | rxcui | name, skip_reason: why the
-- row is another drug's, skipped rather than loaded or rejected (analysis.drugs.SKIP_REASONS), else NULL),
-- and patients, clinicians (already holding this load's rows) and the prescriptions already loaded.
-- Parameters: :as_of (date) a fill date after it is in the future; :extract_date (date) the end of the data
--   (rxdash load --extract-date, else the last fill date): a fill after it is rejected.
-- A fill outside the patient's own record window (patients.record_start .. record_end, when given) is
-- rejected: the record says the patient's data are not complete on that day.
-- A prescription of a patient whose own row in patients.csv was rejected says so (chk_patients holds the
-- patients file's checked rows during the load).
-- Orders (README "Prescribing orders"): where quantity or days_supply is blank or 0 it is derived, given
-- values winning: the days from days_supply, else end_date - fill_date + 1, else quantity / units_per_day
-- (rounded up to whole days) when quantity is given, else (an open order: no quantity, days_supply or
-- end_date) fill_date to the extract date; the quantity is units_per_day x the days. quantity_source says
-- which: given (both given, a dispensing), sig_days, sig_end, sig_open, qty_end, qty_sig; days_only and
-- end_only when the days are known (days_supply, or fill_date to end_date) but nothing gives the quantity:
-- loaded with quantity NULL, supply whose dose is unknown (queries/_rx_mme.sql mme_status no_quantity).
-- A row nothing gives days to is rejected (no_quantity, non_positive_quantity, missing_days_supply,
-- non_positive_days_supply); derived days over 3650 (10 years) are rejected (order_days_over_3650).
-- An order (quantity_source other than given) is loaded as `fills` consecutive fills of at most
-- max_fill_days days each (queries/prescription_fills.sql splits it); its later fills take the ids
-- <rx_id>~fill2, ~fill3, ..., so an order whose later fill id is held by another row of the file or by a
-- stored prescription is rejected (fill_id_taken).
-- Parameter :max_fill_days (integer) the longest fill an order is split into (rxdash load --max-fill-days).
-- A skipped row (skip_reason set) has no reason_code and takes no part in the id checks.
-- Returns one row per staged line: line_no, row_id, reason_code, reason, then the prescriptions table's
-- columns, then skip_reason, quantity_source and fills (how many fills a loaded line is stored as).
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
        trim(pharmacy_id) as pharmacy_id,
        trim(units_per_day) as units_per_day,
        trim(end_date) as end_date
    from stg_prescriptions
),

existing as (
    select distinct rx_id from prescriptions
),

known_patients as (
    select patient_id, max(record_start) as record_start, max(record_end) as record_end
    from patients
    group by patient_id
),

rejected_patients as (
    select patient_id, min(line_no) as patient_line
    from chk_patients
    where reason_code is not null
    group by patient_id
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
        rx_parse_number(s.units_per_day) as units_v,
        rx_parse_date(s.end_date) as end_date_v,
        d.ingredient as drug_ingredient,
        d.strength as drug_strength,
        d.strength_unit as drug_strength_unit,
        d.dose_form as drug_dose_form,
        d.long_acting as drug_long_acting,
        d.drug_class,
        d.drug_parsed,
        d.error as drug_error,
        d.form_group as drug_form_group,
        d.drug_source,
        d.skip_reason as drug_skip
    from staged as s
    left join stg_drugs as d
        on d.raw_drug_name = s.drug_name
        and d.raw_ingredient = s.ingredient
        and d.raw_strength = s.strength
        and d.raw_strength_unit = s.strength_unit
        and d.raw_dose_form = s.dose_form
        and d.raw_long_acting = s.long_acting
        and d.raw_ndc = s.ndc
        and d.raw_rxcui = s.rxcui
),

ids as (
    select
        rx_id,
        min(line_no) as first_line,
        count(distinct concat_ws(
            chr(31), patient_id, clinician_id, fill_date, drug_name, ingredient, strength, strength_unit,
            dose_form, quantity, days_supply, long_acting, ndc, rxcui, pharmacy_id, units_per_day, end_date
        )) as n_variants
    -- The rows of our drugs: a row skipped as another drug's (by its code) takes no part in the id checks.
    from typed
    where drug_skip is null
    group by rx_id
),

-- What gives an order's days (given wins): days_from given | end | sig (quantity / units_per_day) | open.
order_days as (
    select
        t.*,
        case
            when t.days_supply_v > 0 then 'given'
            when t.end_date_v >= t.fill_date_v then 'end'
            when t.quantity_v > 0 and t.units_v > 0 then 'sig'
            when t.units_v > 0 then 'open'
        end as days_from,
        case
            when t.days_supply_v > 0 then cast(t.days_supply_v as double precision)
            when t.end_date_v >= t.fill_date_v then cast(t.end_date_v - t.fill_date_v + 1 as double precision)
            -- 1e-9: a quotient such as 120 / 4 computed as 30.000000001 is still 30 days; at least 1 day.
            when t.quantity_v > 0 and t.units_v > 0 then greatest(ceil(t.quantity_v / t.units_v - 1e-9), 1)
            when t.units_v > 0 then cast(cast(:extract_date as date) - t.fill_date_v + 1 as double precision)
        end as order_days_raw
    from typed as t
),

supplied as (
    select
        o.*,
        case when o.order_days_raw between 1 and 3650 then cast(o.order_days_raw as integer) end as order_days,
        case
            when o.quantity_v > 0 then o.quantity_v
            when o.order_days_raw between 1 and 3650 then o.units_v * o.order_days_raw
        end as order_quantity,
        case
            when o.quantity_v > 0 and o.days_from = 'given' then 'given'
            when o.quantity_v > 0 and o.days_from = 'end' then 'qty_end'
            when o.quantity_v > 0 and o.days_from = 'sig' then 'qty_sig'
            -- The days are known (given, or to end_date) and nothing gives the quantity: supply with an
            -- unknown dose (quantity NULL), never a rejected row that would open a false gap in supply.
            when o.quantity = '' and o.units_v is null and o.days_from = 'given' then 'days_only'
            when o.quantity = '' and o.units_v is null and o.days_from = 'end' then 'end_only'
            when o.days_from = 'given' then 'sig_days'
            when o.days_from = 'end' then 'sig_end'
            when o.days_from = 'open' then 'sig_open'
        end as quantity_source,
        case
            when (o.quantity_v > 0 or (o.quantity = '' and o.units_v is null)) and o.days_from = 'given' then 1
            when o.order_days_raw between 1 and 3650
                then cast(ceil(o.order_days_raw / cast(:max_fill_days as integer)) as integer)
        end as fills
    from order_days as o
),

-- Ids of the form <order>~fill<k> (k >= 2, no leading zero) held by a staged or stored row: the smallest
-- such k per order id. An order split into k or more fills would repeat that id.
fill_ids_taken as (
    select order_id, min(fill_no) as first_taken
    from (
        select
            regexp_replace(rx_id, '~fill[1-9][0-9]*$', '') as order_id,
            rx_parse_whole(substr(rx_id, length(regexp_replace(rx_id, '~fill[1-9][0-9]*$', '')) + 6)) as fill_no
        from (select rx_id from staged union all select rx_id from prescriptions) as all_ids
        where strpos(rx_id, '~fill') > 0
    ) as suffixed
    where order_id <> '' and fill_no >= 2
    group by order_id
),

flagged as (
    select
        t.*,
        i.first_line,
        ft.first_taken,
        rp.patient_line,
        kp.record_start,
        kp.record_end,
        case
            when t.drug_skip is not null then null
            when t.rx_id = '' then 'missing_id'
            when i.n_variants > 1 then 'conflicting_duplicate'
            when t.line_no > i.first_line then 'duplicate'
            when e.rx_id is not null then 'already_loaded'
            when kp.patient_id is null and rp.patient_id is not null then 'rejected_patient'
            when kp.patient_id is null then 'unknown_patient'
            when kc.clinician_id is null then 'unknown_clinician'
            when t.fill_date_v is null then 'bad_fill_date'
            when t.fill_date_v > :as_of then 'future_fill_date'
            when t.fill_date_v > :extract_date then 'after_extract_date'
            when t.fill_date_v < kp.record_start or t.fill_date_v > kp.record_end then 'outside_record_window'
            when t.quantity <> '' and t.quantity_v is null then 'bad_quantity'
            when t.quantity_v < 0 then 'non_positive_quantity'
            when t.days_supply <> '' and t.days_supply_v is null then 'bad_days_supply'
            when t.days_supply_v < 0 then 'non_positive_days_supply'
            when t.days_supply_v > 365 then 'days_supply_over_365'
            when t.units_per_day <> '' and t.units_v is null then 'bad_units_per_day'
            when t.units_v <= 0 then 'non_positive_units_per_day'
            when t.end_date <> '' and t.end_date_v is null then 'bad_end_date'
            when t.end_date_v < t.fill_date_v then 'end_before_fill'
            -- Nothing gives the quantity (blank or 0, and no units_per_day) or the days.
            when t.quantity = '' and t.units_v is null and t.order_days_raw is null then 'no_quantity'
            when coalesce(t.quantity_v, 0) = 0 and t.units_v is null and t.quantity <> '' then 'non_positive_quantity'
            when t.order_days_raw is null and t.days_supply = '' then 'missing_days_supply'
            when t.order_days_raw is null then 'non_positive_days_supply'
            when t.order_days_raw > 3650 then 'order_days_over_3650'
            -- Only an open order starting after the extract date has no day (caught above as well).
            when t.order_days_raw < 1 then 'after_extract_date'
            when t.fills > 1 and ft.first_taken <= t.fills then 'fill_id_taken'
            when t.drug_error is not null then 'unparseable_drug'
        end as reason_code
    from supplied as t
    left join ids as i on i.rx_id = t.rx_id
    left join existing as e on e.rx_id = t.rx_id
    left join known_patients as kp on kp.patient_id = t.patient_id
    left join rejected_patients as rp on rp.patient_id = t.patient_id
    left join known_clinicians as kc on kc.clinician_id = t.clinician_id
    left join fill_ids_taken as ft on ft.order_id = t.rx_id
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
            when 'rejected_patient' then 'the patient''s row in patients.csv (line ' || cast(patient_line as varchar)
                || ') was rejected'
            when 'unknown_patient' then 'patient_id is not in patients.csv'
            when 'unknown_clinician' then 'clinician_id ''' || clinician_id || ''' is not in clinicians.csv'
            when 'bad_fill_date' then 'fill_date ''' || fill_date || ''' is not a real date in YYYY-MM-DD form'
            when 'future_fill_date' then 'fill_date ' || fill_date || ' is after the load date'
            when 'after_extract_date' then 'fill_date ' || fill_date || ' is after the extract date '
                || cast(cast(:extract_date as date) as varchar)
            when 'outside_record_window' then 'fill_date ' || fill_date || ' is outside the patient''s record ('
                || coalesce(cast(record_start as varchar), '…') || ' to ' || coalesce(cast(record_end as varchar), '…') || ')'
            when 'bad_quantity' then 'quantity ''' || quantity || ''' is not a number below 10^15'
            when 'non_positive_quantity' then 'quantity ' || quantity || ' must be greater than zero'
                || case when quantity_v = 0 then ' (or be derived: units_per_day is blank)' else '' end
            when 'no_quantity' then 'quantity, units_per_day, days_supply and end_date are blank: nothing gives '
                || 'the supply (give quantity and days_supply, or units_per_day, or the days the supply lasts)'
            when 'missing_days_supply' then 'days_supply is blank and neither end_date nor units_per_day gives it'
            when 'bad_days_supply' then 'days_supply ''' || days_supply || ''' is not a whole number'
            when 'non_positive_days_supply' then 'days_supply ' || days_supply || ' must be at least 1'
                || case when days_supply_v = 0 then ' (or be derived: end_date and units_per_day are blank)' else '' end
            when 'days_supply_over_365' then 'days_supply ' || days_supply || ' is over 365 days'
            when 'bad_units_per_day' then 'units_per_day ''' || units_per_day || ''' is not a number below 10^15'
            when 'non_positive_units_per_day' then 'units_per_day ' || units_per_day || ' must be greater than zero'
            when 'bad_end_date' then 'end_date ''' || end_date || ''' is not a real date in YYYY-MM-DD form'
            when 'end_before_fill' then 'end_date ' || end_date || ' is before fill_date ' || fill_date
            when 'order_days_over_3650' then case days_from
                when 'end' then 'fill_date ' || fill_date || ' to end_date ' || end_date
                    || ' is over 3650 days (10 years)'
                when 'open' then 'the open order (no end_date, days_supply or quantity) runs from ' || fill_date
                    || ' to the extract date ' || cast(cast(:extract_date as date) as varchar)
                    || ', over 3650 days (10 years); give end_date or days_supply'
                else 'quantity ' || quantity || ' at ' || units_per_day
                    || ' units a day lasts over 3650 days (10 years)' end
            when 'fill_id_taken' then 'the order is split into ' || cast(fills as varchar) || ' fills of at most '
                || cast(cast(:max_fill_days as integer) as varchar) || ' days, but the id of its fill '
                || cast(first_taken as varchar) || ', ' || rx_id || '~fill' || cast(first_taken as varchar)
                || ', is already used by another prescription'
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
        order_quantity as quantity,
        order_days as days_supply,
        drug_long_acting as long_acting,
        drug_class,
        drug_parsed,
        nullif(ndc, '') as ndc,
        nullif(rxcui, '') as rxcui,
        nullif(pharmacy_id, '') as pharmacy_id,
        drug_form_group as form_group,
        drug_source,
        drug_skip as skip_reason,
        quantity_source,
        fills
    from flagged
)

select * from final
