-- patient_period_ltot: patients on long-term opioid therapy in each period.
-- Parameters: :exclude (boolean); the ltot_* parameters (see _ltot_episodes.sql); :start, :months, :days,
-- :n_periods (see _periods.sql).
-- Returns one row per patient and period in which a long-term episode overlaps the period (DESIGN.md):
-- patient_id, period_index, period_start, period_end, ltot_days (days of the period inside such episodes).
with
-- @include opioid_rx
-- @include ltot_episodes
-- @include periods
-- @include period_ltot
final as (
    select * from period_ltot
)

select * from final
