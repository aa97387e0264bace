-- patient_period_ltot: patients on long-term opioid therapy in each period.
-- Parameters: :exclude (boolean); the ltot_* parameters (see _ltot_episodes.sql); :start, :months, :days,
-- :n_periods (see _periods.sql).
-- Returns one row per patient and period in which a long-term episode overlaps the period (DESIGN.md):
-- patient_id, period_index, period_start, period_end, ltot_days (days of the period inside such episodes).
with
-- @include opioid_rx
-- @include ltot_episodes
-- @include periods
final as (
    select
        e.patient_id,
        p.period_index,
        p.period_start,
        p.period_end,
        sum(least(e.episode_end, p.period_end) - greatest(e.episode_start, p.period_start) + 1) as ltot_days
    from ltot_episodes as e
    inner join periods as p
        on e.episode_start <= p.period_end
        and e.episode_end >= p.period_start
    where e.is_ltot
    group by e.patient_id, p.period_index, p.period_start, p.period_end
)

select * from final
