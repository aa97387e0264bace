-- schema: the data contract's tables (DESIGN.md "Data contract"), the reference tables and the load log.
-- No parameters. Safe to run again: every statement is `create ... if not exists`.
-- Keys are enforced by the loader's validation (queries/checked_*.sql), not by constraints, so that a
-- --replace load can delete and re-insert the same ids inside one transaction on DuckDB.
create table if not exists clinics (
    clinic_id varchar not null,
    clinic_name varchar not null
);
create table if not exists clinicians (
    clinician_id varchar not null,
    clinician_name varchar,
    specialty varchar,
    clinic_id varchar not null
);
create table if not exists patients (
    patient_id varchar not null,
    birth_date date,
    sex varchar,
    cancer boolean not null,
    hospice_palliative boolean not null,
    sickle_cell boolean not null,
    opioid_use_disorder boolean not null,
    -- The span over which the patient's data is complete (OMOP observation period, enrolment, death), as
    -- given in patients.csv (NULL when not given) ...
    record_start date,
    record_end date,
    -- ... and the window every rule uses: the given span clipped to the data set's first fill date and
    -- extract date (a blank record_start or record_end takes those). Set by every load (rebuild_derived).
    window_start date,
    window_end date
);
alter table patients add column if not exists record_start date;
alter table patients add column if not exists record_end date;
alter table patients add column if not exists window_start date;
alter table patients add column if not exists window_end date;
create table if not exists prescriptions (
    rx_id varchar not null,
    patient_id varchar not null,
    clinician_id varchar not null,
    fill_date date not null,
    drug_name varchar,
    ingredient varchar not null,
    strength double precision not null,
    strength_unit varchar not null,
    dose_form varchar,
    quantity double precision,
    days_supply integer not null,
    long_acting boolean not null,
    drug_class varchar,
    drug_parsed boolean not null,
    ndc varchar,
    rxcui varchar,
    pharmacy_id varchar,
    -- analysis.vocabulary.form_group of the dose form (transdermal, transmucosal_tablet, ..., other): the
    -- one reading of every dose-form spelling, which picks the MME factor row (mme_factors.form_group).
    form_group varchar
);
-- A database made before form_group existed gets the column (empty until loaded again with --replace;
-- analysis.db.is_current reports such a database as made by an older version).
alter table prescriptions add column if not exists form_group varchar;
-- How the drug was identified (analysis.drugs.DRUG_SOURCES): given (its ingredient/strength/unit fields),
-- ndc or rxcui (its code in a code reference), name (its drug name read). Empty on older loads.
alter table prescriptions add column if not exists drug_source varchar;
-- How the quantity and days supply were obtained (analysis.ingest.QUANTITY_SOURCES; README "Prescribing
-- orders"): given (both given: a dispensing), or derived from an order's units_per_day and days (sig_days,
-- sig_end, sig_open, qty_end, qty_sig). Empty on a database loaded before the column existed.
alter table prescriptions add column if not exists quantity_source varchar;
create table if not exists events (
    patient_id varchar not null,
    event_date date not null,
    event_type varchar not null
);
create table if not exists ref_drug_classes (
    ingredient varchar not null,
    drug_class varchar not null,
    always_long_acting boolean not null,
    source varchar not null
);
create table if not exists ref_mme_factors (
    factor_set varchar not null,
    ingredient varchar not null,
    form_group varchar not null,
    strength_unit varchar not null,
    mme_factor double precision not null,
    quantity_multiplier double precision not null,
    daily_mg_above double precision,
    daily_mg_up_to double precision,
    source varchar not null
);
create table if not exists load_runs (
    run_id varchar not null,
    loaded_at timestamp not null,
    source_dir varchar not null,
    replaced boolean not null,
    strict_mode boolean not null,
    extract_date date
);
alter table load_runs add column if not exists extract_date date;
-- The extract date in force (one row): the end of the data, given with rxdash load --extract-date or the
-- last fill date (analysis.ingest._extract_date); queries/data_bounds.sql reads it.
create table if not exists data_extract (
    extract_date date not null,
    given boolean not null
);
create table if not exists load_counts (
    run_id varchar not null,
    table_name varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    ignored_columns varchar
);
create table if not exists load_reject_reasons (
    run_id varchar not null,
    table_name varchar not null,
    reason_code varchar not null,
    n_rows bigint not null
);
-- Rows skipped by a load (prescriptions of other drugs, analysis.drugs.SKIP_REASONS), by file and reason.
create table if not exists load_skip_reasons (
    run_id varchar not null,
    table_name varchar not null,
    reason_code varchar not null,
    n_rows bigint not null
);
-- rows_read = rows_loaded + rows_skipped + rows_rejected (rows_skipped is empty on loads made before it).
alter table load_counts add column if not exists rows_skipped bigint;
-- The NDC reference in force (analysis/ndc.py): bundled (refreshed by every load) or loaded by
-- `rxdash reference ndc FILE` (kept by later loads). strength is per unit of strength_unit.
create table if not exists ref_ndc (
    ndc11 varchar not null,
    product_name varchar,
    ingredient varchar not null,
    strength double precision not null,
    strength_unit varchar not null,
    dose_form varchar,
    long_acting boolean not null,
    drug_class varchar,
    edition varchar not null,
    origin varchar not null
);
-- Derived: each patient's daily MME as stretches of constant dose, per factor set; rebuilt by every load
-- from queries/build_dose_segments.sql so that every query reads the daily series instead of recomputing it.
create table if not exists daily_dose_segments (
    factor_set varchar not null,
    patient_id varchar not null,
    seg_start date not null,
    seg_end date,
    daily_mme double precision not null,
    supplied boolean not null,
    -- false on a stretch where a prescription in supply has no MME factor in the set: the day's dose is
    -- unknown, not the daily_mme shown (which counts the prescriptions that have a factor).
    dose_known boolean
);
alter table daily_dose_segments add column if not exists dose_known boolean;
-- Derived: every taper and discontinuation per factor set, measured with the default taper parameters
-- (analysis.dose.TaperParams) over the whole data; rebuilt by every load from queries/build_tapers.sql.
-- The speed bands and the abrupt fraction are applied when it is read (queries/_stored_tapers.sql), so
-- the dashboard's taper thresholds still apply; the other taper parameters are fixed at load time.
create table if not exists stored_tapers (
    factor_set varchar not null,
    patient_id varchar not null,
    taper_start date not null,
    baseline_mme double precision not null,
    min_window_mme double precision,
    end_mme double precision,
    max_monthly_reduction_pct double precision not null,
    discontinued boolean not null,
    stop_day date,
    stop_mme double precision
);
-- Derived: every patient's episodes of opioid supply and whether each is long-term therapy, with the
-- default Von Korff parameters (analysis.dose.LtotParams); rebuilt by every load from
-- queries/build_ltot_episodes.sql and read through queries/_stored_ltot_episodes.sql.
create table if not exists stored_ltot_episodes (
    patient_id varchar not null,
    episode_no bigint not null,
    episode_start date not null,
    episode_end date not null,
    duration_days integer not null,
    fills bigint not null,
    days_supply bigint not null,
    is_ltot boolean not null
);
-- Derived: the answers to the questions the default views ask (analysis/precomputed.py), computed by every
-- load from the measure queries: one row per question (its key: the query's name and the bound parameters it
-- uses), and the per-patient rows of each answer. Read by analysis.db.read_frame instead of the query.
create table if not exists stored_questions (
    question_id integer not null,
    question_key varchar not null,
    query_name varchar not null,
    period_start date,
    period_end date,
    row_count bigint not null,
    returned_columns varchar not null
);
create table if not exists stored_measure_rows (
    question_id integer not null,
    patient_id varchar not null,
    clinician_id varchar,
    clinic_id varchar,
    in_numerator boolean,
    value double precision,
    baseline_mme double precision
);
-- The format a load read (analysis.sources.FORMATS), and for a format other than the contract, each source
-- file's rows read = loaded + skipped + rejected (analysis.ingest.SourceReport).
alter table load_runs add column if not exists source_format varchar;
create table if not exists load_source_files (
    run_id varchar not null,
    file_no integer not null,
    file_name varchar not null,
    feeds varchar,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_skipped bigint not null,
    rows_rejected bigint not null
);
-- What a source adapter told the user about the load (analysis.sources.Adapted.notes), one line each.
create table if not exists load_notes (
    run_id varchar not null,
    note_no integer not null,
    note varchar not null
);
-- Supply whose quantity nothing gives (quantity_source days_only, end_only) is loaded with quantity NULL: its
-- days count as supply, its dose is unknown (queries/_rx_mme.sql mme_status no_quantity).
alter table prescriptions alter column quantity drop not null;
