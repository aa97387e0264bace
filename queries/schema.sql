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
    opioid_use_disorder boolean not null
);
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
    quantity double precision not null,
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
    strict_mode boolean not null
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
