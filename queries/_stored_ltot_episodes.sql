-- fragment stored_ltot_episodes: the episodes of opioid supply measured at load time (table
-- stored_ltot_episodes, built by queries/build_ltot_episodes.sql with the default Von Korff parameters).
-- Same columns as the fragment ltot_episodes (_ltot_episodes.sql), which measures them from scratch.
-- Parameters: :exclude (boolean) leave out patients with cancer, hospice/palliative care or sickle cell.
-- Defines: ltot_episodes(patient_id, episode_no, episode_start, episode_end, duration_days, fills,
--   days_supply, is_ltot).
ltot_episodes as (
    select e.patient_id, e.episode_no, e.episode_start, e.episode_end, e.duration_days, e.fills, e.days_supply,
        e.is_ltot
    from stored_ltot_episodes as e
    inner join patients as pt on pt.patient_id = e.patient_id
    where not (:exclude and (pt.cancer or pt.hospice_palliative or pt.sickle_cell))
),
