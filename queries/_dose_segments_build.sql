-- fragment dose_segments_build: each patient's daily MME as stretches of constant dose. Requires opioid_rx,
-- rx_mme. Used by build_dose_segments.sql when data is loaded; queries read the stored result through
-- the dose_segments fragment.
-- Parameters: :factor_set (text), as rx_mme.
-- Defines: built_segments(patient_id, seg_start, seg_end, daily_mme, supplied, dose_known).
--   dose_known is false on a stretch where a prescription in supply has no factor in the set, or no
--   quantity (mme_status no_factor, no_quantity): that day's dose is unknown, and daily_mme counts only
--   the others.
--   Built from interval boundaries: +dose on fill_date, -dose the day after last_day, running sums per
--   patient (never one row per day). A patient's daily MME is the sum over prescriptions covering the day
--   (DESIGN.md), so early refills add up on the days they overlap. Gaps in supply are segments with
--   supplied = false and daily_mme 0; the last segment (after the final supply) has seg_end NULL.
--   Tiered factors (methadone under cdc2016) apply to the patient's total mg a day on each stretch.
--   Doses are rounded to 1e-6 MME so that running sums of fractions compare exactly.
dose_deltas as (
    select patient_id, fill_date as day, coalesce(daily_mme, 0) as d_mme, tiered_amount as d_tiered, 1 as d_active,
        case when mme_status in ('no_factor', 'no_quantity') then 1 else 0 end as d_unknown
    from rx_mme
    union all
    select patient_id, last_day + 1 as day, -coalesce(daily_mme, 0), -tiered_amount, -1,
        case when mme_status in ('no_factor', 'no_quantity') then -1 else 0 end
    from rx_mme
),

dose_changes as (
    select patient_id, day, sum(d_mme) as d_mme, sum(d_tiered) as d_tiered, sum(d_active) as d_active,
        sum(d_unknown) as d_unknown
    from dose_deltas
    group by patient_id, day
),

dose_running as (
    select
        patient_id,
        day as seg_start,
        lead(day) over (partition by patient_id order by day) - 1 as seg_end,
        sum(d_mme) over running as flat_mme,
        sum(d_tiered) over running as tiered_amount,
        sum(d_active) over running as active,
        sum(d_unknown) over running as unknown
    from dose_changes
    window running as (partition by patient_id order by day rows between unbounded preceding and current row)
),

tier_factors as (
    select daily_mg_above, daily_mg_up_to, mme_factor
    from ref_mme_factors
    where factor_set = :factor_set and daily_mg_above is not null
),

built_segments as (
    select
        r.patient_id,
        r.seg_start,
        r.seg_end,
        case when r.active > 0
            then floor((r.flat_mme + coalesce(r.tiered_amount * tf.mme_factor, 0)) * 1000000 + 0.5) / 1000000
            else 0
        end as daily_mme,
        r.active > 0 as supplied,
        r.unknown = 0 as dose_known
    from dose_running as r
    left join tier_factors as tf
        on r.tiered_amount > tf.daily_mg_above + 0.000001
        and (tf.daily_mg_up_to is null or r.tiered_amount <= tf.daily_mg_up_to + 0.000001)
),
