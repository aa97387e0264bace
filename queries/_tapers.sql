-- fragment tapers: dose tapers and discontinuations from a high baseline. Requires dose_segments.
-- Parameters (analysis.dose.TaperParams holds the defaults and their sources):
--   Each patient's record window (patients.window_start .. window_end: the patient's own record_start and
--   record_end clipped to the data's first fill and extract date; queries/build_record_windows.sql) holds
--   the days the data can speak for: days after window_end are unknown, not 0.
--   :baseline_days (integer, 180 = 6 months of 30 days; research value 360) the window before a taper start.
--   :baseline_min_mme (number, 50) lowest baseline mean daily MME that can taper (Fenton 2019, Agnoli 2021).
--   :taper_min_fall (number, 0.15) the fall from baseline, as a fraction, that makes a taper.
--   :window_months (integer, 2) the window (of 30-day months) whose mean must fall that far.
--   :followup_months (integer, 7) the follow-up after the start in which windows and speed are measured
--     (Agnoli 2021: six overlapping 60-day windows within seven months).
--   :min_level_days (integer, 7) how long a lower dose must last to be a possible taper start.
--   :stop_days (integer, 60) days without supply that make a discontinuation.
--   :abrupt_fraction (number, 0.5) a discontinuation is abrupt when the mean dose of the 30 days before
--     stopping is still at least this fraction of baseline (Neprash 2021).
--   :gradual_max_pct (number, 10) and :rapid_min_pct (number, 40): speed bands in % of baseline a month
--     (CDC 2022: about 10% a month; > 40% a month is about 10% a week).
-- Definitions (DESIGN.md "Tapers"; worked examples in tests/test_dose.py):
--   C(x) = cumulative MME from the first supply to day x, evaluated exactly from the dose segments.
--   A candidate start s is a day the daily dose settles below the previous sustained level (a level is
--   sustained when it lasts at least :min_level_days, or is the open stretch after the last supply). Its baseline is the mean daily MME over the
--   :baseline_days before s (a fixed window: days without supply count as 0). s qualifies when the
--   baseline is >= :baseline_min_mme and the mean of some :window_months window starting s, s+30, ...
--   (ending by s + 30 x :followup_months - 1 and by window_end) is <= (1 - :taper_min_fall) x baseline.
--   A qualifying start more than 30 x :followup_months days after the previous qualifying start begins a
--   new taper; closer ones continue the same taper.
--   Speed = the largest fall in mean daily MME between consecutive 30-day windows, slid one day at a time
--   over the follow-up (so a step counts at its true size whatever the calendar), as % of baseline per
--   month, capped to 0-100.
--   Discontinuation = the first stretch of >= :stop_days without supply that starts on or after s (and
--   before the next taper); a stretch still open at the patient's window_end counts only if it has lasted
--   :stop_days by then (right-censoring: a record that ends is not a stop).
-- Defines: tapers(patient_id, taper_start, baseline_mme, min_window_mme, end_mme, max_monthly_reduction_pct,
--   discontinued, stop_day, stop_mme, category).
taper_high_dose as (
    select patient_id
    from dose_segments
    group by patient_id
    having max(daily_mme) >= :baseline_min_mme
),

taper_breaks as (
    select
        s.patient_id,
        s.seg_start,
        s.seg_end,
        s.daily_mme,
        s.supplied,
        coalesce(sum(case when s.seg_end is null then 0 else (s.seg_end - s.seg_start + 1) * s.daily_mme end) over (
            partition by s.patient_id order by s.seg_start rows between unbounded preceding and 1 preceding
        ), 0) as cum_before,
        row_number() over (partition by s.patient_id order by s.seg_start) as break_no,
        w.window_start,
        w.window_end
    from dose_segments as s
    inner join taper_high_dose as h on h.patient_id = s.patient_id
    inner join patients as w on w.patient_id = s.patient_id
),

-- Sustained levels: stretches lasting at least :min_level_days (or the open stretch after the last
-- supply). Short stretches (an early refill's overlap, a day or two between fills) are skipped, so a
-- candidate start is a day the dose settles below the previous sustained level.
taper_levels as (
    select
        patient_id,
        seg_start,
        daily_mme,
        window_start,
        window_end,
        lag(daily_mme) over (partition by patient_id order by seg_start) as previous_level
    from taper_breaks
    where seg_end is null or seg_end - seg_start + 1 >= :min_level_days
),

taper_candidates as (
    select patient_id, seg_start as start_day
    from taper_levels
    where daily_mme < previous_level
        and seg_start - :baseline_days >= window_start
        and seg_start <= window_end
),

-- C(x) is needed at the baseline's first day - 1 (k = -1) and at s - 1 + 30k (k = 0 .. followup months).
taper_marks as (
    select
        c.patient_id,
        c.start_day,
        cast(g.k as integer) as k,
        case when g.k < 0 then c.start_day - 1 - :baseline_days else c.start_day - 1 + cast(30 * g.k as integer) end as day
    from taper_candidates as c
    cross join generate_series(-1, :followup_months) as g(k)
),

-- Locate each day among the patient's segments: sort days with segment starts; the number of the last
-- segment start on or before a day is the segment the day falls in (0 = before the first supply).
taper_mark_sorted as (
    select patient_id, day, 1 as is_mark, start_day, k, cast(null as bigint) as break_no from taper_marks
    union all
    select b.patient_id, b.seg_start, 0, null, null, b.break_no
    from taper_breaks as b
    where b.patient_id in (select patient_id from taper_candidates)
),

taper_mark_values as (
    select
        m.patient_id,
        m.start_day,
        m.k,
        case when m.located_break = 0 then 0 else b.cum_before + (m.day - b.seg_start + 1) * b.daily_mme end as cum
    from (
        select
            *,
            coalesce(max(break_no) over (
                partition by patient_id order by day, is_mark rows between unbounded preceding and current row
            ), 0) as located_break
        from taper_mark_sorted
    ) as m
    left join taper_breaks as b on b.patient_id = m.patient_id and b.break_no = m.located_break
    where m.is_mark = 1
),

taper_baselines as (
    select a.patient_id, a.start_day, (b.cum - a.cum) / :baseline_days as baseline_mme
    from taper_mark_values as a
    inner join taper_mark_values as b on b.patient_id = a.patient_id and b.start_day = a.start_day and b.k = 0
    where a.k = -1
),

taper_window_means as (
    select a.patient_id, a.start_day, min((b.cum - a.cum) / (30.0 * :window_months)) as min_window_mme
    from taper_mark_values as a
    inner join taper_mark_values as b
        on b.patient_id = a.patient_id and b.start_day = a.start_day and b.k = a.k + :window_months
    inner join patients as w on w.patient_id = a.patient_id
    where a.k >= 0
        and a.start_day - 1 + 30 * b.k <= w.window_end
    group by a.patient_id, a.start_day
),

taper_qualifying as (
    select
        b.patient_id,
        b.start_day,
        b.baseline_mme,
        w.min_window_mme,
        lag(b.start_day) over (partition by b.patient_id order by b.start_day) as previous_start
    from taper_baselines as b
    inner join taper_window_means as w on w.patient_id = b.patient_id and w.start_day = b.start_day
    where b.baseline_mme >= :baseline_min_mme
        and w.min_window_mme <= (1 - :taper_min_fall) * b.baseline_mme
),

taper_events as (
    select
        q.patient_id,
        q.start_day,
        q.baseline_mme,
        q.min_window_mme,
        lead(q.start_day) over (partition by q.patient_id order by q.start_day) as next_start,
        w.window_end
    from taper_qualifying as q
    inner join patients as w on w.patient_id = q.patient_id
    where q.previous_start is null or q.start_day - q.previous_start > 30 * :followup_months
),

taper_long_gaps as (
    select patient_id, seg_start as stop_day
    from taper_breaks
    where not supplied
        and break_no > 1
        and seg_start <= window_end
        and least(coalesce(seg_end, window_end), window_end) - seg_start + 1 >= :stop_days
),

taper_stops as (
    select e.patient_id, e.start_day, min(g.stop_day) as stop_day
    from taper_events as e
    inner join taper_long_gaps as g
        on g.patient_id = e.patient_id
        and g.stop_day >= e.start_day
        and (e.next_start is null or g.stop_day < e.next_start)
    group by e.patient_id, e.start_day
),

-- Speed: fall(t) = (2 C(t) - C(t-30) - C(t+30)) / 30, the drop from the 30 days ending t to the next 30.
-- Between days where t+1, t-29 or t+31 is a segment start b, fall(t) is linear in t, so its largest
-- value over the follow-up lies at one of those days (b-1, b+29, b-31) or at an end of the range.
taper_speed_days as (
    select e.patient_id, e.start_day, e.window_end, b.seg_start + o.shift as t
    from taper_events as e
    inner join taper_breaks as b
        on b.patient_id = e.patient_id
        and b.seg_start between e.start_day - 30 and e.start_day + 30 * :followup_months
    cross join (values (-1), (29), (-31)) as o(shift)
    union
    select patient_id, start_day, window_end, start_day - 1 from taper_events
    union
    select patient_id, start_day, window_end, least(start_day + 30 * :followup_months - 31, window_end - 30)
    from taper_events
),

taper_speed_range as (
    select *
    from taper_speed_days
    where t between start_day - 1 and least(start_day + 30 * :followup_months - 31, window_end - 30)
),

-- Second lookup: C at t - 30, t, t + 30 for those days, at the end of follow-up (end dose) and at the
-- two days that bound the 30 days before a stop.
taper_days as (
    select r.patient_id, r.start_day, r.t + o.shift as day
    from taper_speed_range as r
    cross join (values (-30), (0), (30)) as o(shift)
    union
    select e.patient_id, e.start_day, least(e.start_day + 30 * :followup_months - 1, e.window_end) - o.shift
    from taper_events as e
    cross join (values (0), (30)) as o(shift)
    union
    select s.patient_id, s.start_day, s.stop_day - 1 - o.shift
    from taper_stops as s
    cross join (values (0), (30)) as o(shift)
),

taper_day_sorted as (
    select patient_id, day, 1 as is_mark, start_day, cast(null as bigint) as break_no from taper_days
    union all
    select b.patient_id, b.seg_start, 0, null, b.break_no
    from taper_breaks as b
    where b.patient_id in (select patient_id from taper_events)
),

taper_day_values as (
    select
        m.patient_id,
        m.start_day,
        m.day,
        case when m.located_break = 0 then 0 else b.cum_before + (m.day - b.seg_start + 1) * b.daily_mme end as cum
    from (
        select
            *,
            coalesce(max(break_no) over (
                partition by patient_id order by day, is_mark rows between unbounded preceding and current row
            ), 0) as located_break
        from taper_day_sorted
    ) as m
    left join taper_breaks as b on b.patient_id = m.patient_id and b.break_no = m.located_break
    where m.is_mark = 1
),

taper_speeds as (
    select r.patient_id, r.start_day, max((2 * c.cum - before.cum - after.cum) / 30) as max_fall
    from taper_speed_range as r
    inner join taper_day_values as c
        on c.patient_id = r.patient_id and c.start_day = r.start_day and c.day = r.t
    inner join taper_day_values as before
        on before.patient_id = r.patient_id and before.start_day = r.start_day and before.day = r.t - 30
    inner join taper_day_values as after
        on after.patient_id = r.patient_id and after.start_day = r.start_day and after.day = r.t + 30
    group by r.patient_id, r.start_day
),

-- Mean daily MME over 30 days ending on a day: (C(day) - C(day - 30)) / 30.
taper_end_doses as (
    select e.patient_id, e.start_day, (a.cum - b.cum) / 30 as end_mme
    from taper_events as e
    inner join taper_day_values as a
        on a.patient_id = e.patient_id and a.start_day = e.start_day
        and a.day = least(e.start_day + 30 * :followup_months - 1, e.window_end)
    inner join taper_day_values as b
        on b.patient_id = e.patient_id and b.start_day = e.start_day and b.day = a.day - 30
),

taper_stop_doses as (
    select s.patient_id, s.start_day, (a.cum - b.cum) / 30 as stop_mme
    from taper_stops as s
    inner join taper_day_values as a
        on a.patient_id = s.patient_id and a.start_day = s.start_day and a.day = s.stop_day - 1
    inner join taper_day_values as b
        on b.patient_id = s.patient_id and b.start_day = s.start_day and b.day = s.stop_day - 31
),

taper_measured as (
    select
        e.patient_id,
        e.start_day as taper_start,
        e.baseline_mme,
        e.min_window_mme,
        d.end_mme,
        least(100, greatest(0, 100 * coalesce(v.max_fall, 0) / e.baseline_mme)) as max_monthly_reduction_pct,
        s.stop_day is not null as discontinued,
        s.stop_day,
        sd.stop_mme
    from taper_events as e
    left join taper_speeds as v on v.patient_id = e.patient_id and v.start_day = e.start_day
    left join taper_end_doses as d on d.patient_id = e.patient_id and d.start_day = e.start_day
    left join taper_stops as s on s.patient_id = e.patient_id and s.start_day = e.start_day
    left join taper_stop_doses as sd on sd.patient_id = e.patient_id and sd.start_day = e.start_day
),

tapers as (
    select
        *,
        case
            when discontinued and stop_mme >= :abrupt_fraction * baseline_mme then 'abrupt_discontinuation'
            when max_monthly_reduction_pct > :rapid_min_pct then 'rapid'
            when max_monthly_reduction_pct <= :gradual_max_pct then 'gradual'
            else 'moderate'
        end as category
    from taper_measured
),
