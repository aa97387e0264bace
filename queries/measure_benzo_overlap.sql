-- measure_benzo_overlap: concurrent opioid and benzodiazepine use (PQA COB).
-- Parameters: :factor_set, :exclude; :start, :end (date); :opioid_min_fills (2), :opioid_min_days (15),
--   :benzo_min_fills (2), :benzo_min_overlap (30).
-- Returns one row per patient with >= :opioid_min_fills opioid fills (on different days) and >=
-- :opioid_min_days days' supply filled in the period: patient_id, clinician_id, clinic_id, in_numerator
-- (>= :benzo_min_fills benzodiazepine fills on different days in the period and >= :benzo_min_overlap
-- days in the period with both opioid and benzodiazepine supply), value (the overlap days).
with
-- @include opioid_rx
-- @include measurable_patients
-- @include dose_segments
-- @include attribution
opioid_patients as (
    select patient_id
    from opioid_rx
    where fill_date between :start and :end
    group by patient_id
    having count(distinct fill_date) >= :opioid_min_fills and sum(days_supply) >= :opioid_min_days
),

benzo_rx as (
    select p.patient_id, p.fill_date, p.fill_date + p.days_supply - 1 as last_day
    from prescriptions as p
    inner join patients as pt on pt.patient_id = p.patient_id
    where p.drug_class = 'benzodiazepine'
        and not (:exclude and (pt.cancer or pt.hospice_palliative or pt.sickle_cell))
),

benzo_fills as (
    select patient_id, count(distinct fill_date) as fills
    from benzo_rx
    where fill_date between :start and :end
    group by patient_id
),

-- Days with benzodiazepine supply as non-overlapping stretches (+1 on fill, -1 after the last day).
benzo_changes as (
    select patient_id, day, sum(delta) as delta
    from (
        select patient_id, fill_date as day, 1 as delta from benzo_rx
        union all
        select patient_id, last_day + 1, -1 from benzo_rx
    ) as d
    group by patient_id, day
),

benzo_cover as (
    select
        patient_id,
        day as piece_start,
        lead(day) over (partition by patient_id order by day) - 1 as piece_end,
        sum(delta) over (partition by patient_id order by day rows between unbounded preceding and current row) as active
    from benzo_changes
),

overlap as (
    select
        b.patient_id,
        sum(least(b.piece_end, o.seg_end, :end) - greatest(b.piece_start, o.seg_start, :start) + 1) as days
    from benzo_cover as b
    inner join dose_segments as o
        on o.patient_id = b.patient_id
        and o.supplied
        and b.active > 0
        and greatest(b.piece_start, o.seg_start, :start) <= least(b.piece_end, o.seg_end, :end)
    group by b.patient_id
),

final as (
    select
        a.patient_id,
        a.clinician_id,
        a.clinic_id,
        coalesce(f.fills, 0) >= :benzo_min_fills and coalesce(v.days, 0) >= :benzo_min_overlap as in_numerator,
        cast(coalesce(v.days, 0) as double precision) as value
    from opioid_patients as op
    inner join attribution as a on a.patient_id = op.patient_id
    left join benzo_fills as f on f.patient_id = op.patient_id
    left join overlap as v on v.patient_id = op.patient_id
)

select * from final
where patient_id in (select patient_id from measurable_patients)
