-- fragment period_ltot: patients on long-term opioid therapy in each period. Requires ltot_episodes, periods.
-- Defines: period_ltot(patient_id, period_index, period_start, period_end, ltot_days): one row per patient
--   and period in which a long-term episode overlaps the period (DESIGN.md).
period_ltot as (
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
),
