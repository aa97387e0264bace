-- fragment periods: consecutive analysis periods. No requirements.
-- Parameters: :start (date) first day; :months (integer) period length in calendar months, or 0 to use
-- :days (integer) period length in days; :n_periods (integer) how many. analysis.dose.period_grid
-- computes these for months, quarters, years, N-day windows or the whole analysis period.
-- Defines: periods(period_index, period_start, period_end, period_days).
period_bounds as (
    select
        cast(i as integer) as period_index,
        case when :months > 0
            then cast(cast(:start as date) + i * :months * interval '1 month' as date)
            else cast(:start as date) + cast(i * :days as integer)
        end as period_start,
        case when :months > 0
            then cast(cast(:start as date) + (i + 1) * :months * interval '1 month' as date) - 1
            else cast(:start as date) + cast((i + 1) * :days as integer) - 1
        end as period_end
    from generate_series(0, :n_periods - 1) as g(i)
),

periods as (
    select period_index, period_start, period_end, period_end - period_start + 1 as period_days
    from period_bounds
),
