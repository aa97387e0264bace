-- fragment ltot_episodes: episodes of opioid analgesic supply and whether each is long-term therapy.
-- Requires opioid_rx.
-- Parameters: :ltot_gap_days (integer, 30) longest gap in supply within an episode;
--   :ltot_min_days (integer, 90) an episode must last MORE than this; :ltot_min_fills (integer, 10);
--   :ltot_min_supply (integer, 120) days' supply. Von Korff et al., Clin J Pain 2008: an episode lasting
--   > 90 days with >= 10 fills or >= 120 days' supply is long-term opioid therapy.
-- Defines: ltot_episodes(patient_id, episode_no, episode_start, episode_end, duration_days, fills,
--   days_supply, is_ltot). Duration runs from the first fill to the last day of supply.
ltot_fills as (
    select
        patient_id,
        fill_date,
        last_day,
        days_supply,
        max(last_day) over (
            partition by patient_id order by fill_date, rx_id rows between unbounded preceding and 1 preceding
        ) as covered_until,
        row_number() over (partition by patient_id order by fill_date, rx_id) as fill_no
    from opioid_rx
),

ltot_numbered as (
    select
        *,
        sum(case when covered_until is null or fill_date - covered_until - 1 > :ltot_gap_days then 1 else 0 end)
            over (partition by patient_id order by fill_no rows between unbounded preceding and current row)
            as episode_no
    from ltot_fills
),

ltot_episodes as (
    select
        patient_id,
        episode_no,
        min(fill_date) as episode_start,
        max(last_day) as episode_end,
        max(last_day) - min(fill_date) + 1 as duration_days,
        count(*) as fills,
        sum(days_supply) as days_supply,
        (max(last_day) - min(fill_date) + 1 > :ltot_min_days
            and (count(*) >= :ltot_min_fills or sum(days_supply) >= :ltot_min_supply)) as is_ltot
    from ltot_numbered
    group by patient_id, episode_no
),
