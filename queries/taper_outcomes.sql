-- taper_outcomes: events (ED visits, overdoses, crises, ...) in the year after each taper's start.
-- Parameters: :factor_set, :exclude; :abrupt_fraction, :gradual_max_pct, :rapid_min_pct (the taper
-- parameters read at query time; the others were fixed when stored_tapers was built at load).
-- Returns one row per taper and event type with an event within 365 days of the taper start (tapers with
-- no such event have no row): patient_id, taper_start, category, max_monthly_reduction_pct, event_type,
-- days_to_first_event (0 = on the start day). Counting within 30/90/365 days is done on this.
with
-- @include stored_tapers
final as (
    select
        t.patient_id,
        t.taper_start,
        t.category,
        t.max_monthly_reduction_pct,
        e.event_type,
        min(e.event_date - t.taper_start) as days_to_first_event
    from tapers as t
    inner join events as e
        on e.patient_id = t.patient_id
        and e.event_date >= t.taper_start
        and e.event_date <= t.taper_start + 365
    group by t.patient_id, t.taper_start, t.category, t.max_monthly_reduction_pct, e.event_type
)

select * from final order by patient_id, taper_start, event_type
