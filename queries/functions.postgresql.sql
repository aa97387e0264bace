-- functions (PostgreSQL): parse text from a CSV staging table into typed values, NULL when the text is not valid.
-- Dialect override of queries/functions.duckdb.sql (PostgreSQL 15 has no try_cast); same names and results.
-- Nested CASE guarantees each cast only sees text that passed the check before it.
-- rx_parse_date(text) -> date: ISO YYYY-MM-DD, year 1800-2999, a real calendar day, else NULL.
create or replace function rx_parse_date(s text) returns date language sql immutable as $$
    select case when s ~ '^(1[89]|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$' then
        case when substr(s, 6, 2)::int between 1 and 12 then
            case when substr(s, 9, 2)::int between 1 and extract(day from
                make_date(substr(s, 1, 4)::int, substr(s, 6, 2)::int, 1) + interval '1 month - 1 day')::int
            then s::date end
        end
    end
$$;
-- rx_parse_number(text) -> double precision: a plain decimal number of at most 40 characters and
-- magnitude below 1e15, else NULL (numeric first: 1e999 is out of range for double precision).
create or replace function rx_parse_number(s text) returns double precision language sql immutable as $$
    select case when length(s) <= 40 and s ~ '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]{1,3})?$' then
        case when abs(s::numeric) < 1e15 then s::double precision end
    end
$$;
-- rx_parse_whole(text) -> integer: a whole number of at most 9 digits (a trailing .0 allowed), else NULL.
create or replace function rx_parse_whole(s text) returns integer language sql immutable as $$
    select case when s ~ '^[+-]?[0-9]{1,9}([.]0+)?$' then s::double precision::integer end
$$;
-- rx_parse_bool(text) -> boolean: true/false/1/0 (also t/f/yes/no/y/n, any case), else NULL.
create or replace function rx_parse_bool(s text) returns boolean language sql immutable as $$
    select case when lower(s) in ('true', '1', 't', 'yes', 'y') then true
                when lower(s) in ('false', '0', 'f', 'no', 'n') then false end
$$;
