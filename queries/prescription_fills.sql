-- prescription_fills: the fills each loaded line of prescriptions.csv is stored as (the insert step of a load).
-- Reads chk_prescriptions (queries/checked_prescriptions.sql: per input line its rx_id, fill_date, the
-- order's days in days_supply and quantity, quantity_source, and fills: how many fills it becomes).
-- Parameters: :max_fill_days (integer) the longest fill an order becomes (rxdash load --max-fill-days, default
--   30); :extract_date (date) the end of the data (rxdash load --extract-date, else the last fill date).
-- Returns one row per fill: line_no (the input line), rx_id, fill_date, days_supply, quantity.
-- A dispensing (quantity_source given) is one fill, as given: its supply may run past the extract date, as
-- real supply does (the rules censor at each patient's record end).
-- An order of D days starting on F becomes n = ceil(D / M) consecutive fills (M = max_fill_days): fill k
-- (1 .. n) starts on F + (k - 1) x M and lasts M days, the last one the days left (D - (n - 1) x M); each
-- holds the order's quantity x its days / D. Fill 1 keeps the order's rx_id, fill k >= 2 is <rx_id>~fill<k>
-- (checked_prescriptions.sql rejects an order whose later ids are taken), so every fill traces back to its
-- line. The supply is unchanged: the same days at the same daily dose, except that an order's supply stops
-- at the extract date: what an order plans beyond it had not happened when the data were extracted (fills
-- starting after it are not made, and the one spanning it ends on it, with its quantity in proportion).
with pieces as (
    select
        c.line_no,
        case when g.k = 1 then c.rx_id else c.rx_id || '~fill' || cast(g.k as varchar) end as rx_id,
        c.quantity_source,
        c.days_supply as order_days,
        c.quantity as order_quantity,
        c.fill_date + cast((g.k - 1) * cast(:max_fill_days as integer) as integer) as fill_date,
        cast(least(cast(:max_fill_days as integer), c.days_supply - (g.k - 1) * cast(:max_fill_days as integer))
            as integer) as piece_days
    from chk_prescriptions as c
    cross join lateral generate_series(1, c.fills) as g(k)
    where c.reason_code is null and c.quantity_source <> 'given'
),

clipped as (
    select
        line_no,
        rx_id,
        fill_date,
        order_days,
        order_quantity,
        cast(least(piece_days, coalesce(cast(:extract_date as date) - fill_date + 1, piece_days)) as integer)
            as days_supply
    from pieces
)

select line_no, rx_id, fill_date, days_supply, quantity
from chk_prescriptions
where reason_code is null and quantity_source = 'given'

union all

select line_no, rx_id, fill_date, days_supply, order_quantity * days_supply / order_days as quantity
from clipped
where days_supply >= 1
