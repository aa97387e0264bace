-- functions (DuckDB): parse text from a CSV staging table into typed values, NULL when the text is not valid.
-- Dialect override of queries/functions.postgresql.sql: DuckDB has try_cast and macros, PostgreSQL
-- needs SQL functions; the names and results are the same, so checked_*.sql run unchanged on both.
-- rx_parse_date(text) -> date: ISO YYYY-MM-DD, year 1800-2999, a real calendar day, else NULL.
create or replace macro rx_parse_date(s) as
    case when s ~ '^(1[89]|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$' then try_cast(s as date) end;
-- rx_parse_number(text) -> double: a plain decimal number (no thousands separators) of at most 40
-- characters and magnitude below 1e15, else NULL. The bound rejects 1e999 (infinity as a double) and
-- values no count, strength or supply can take; both dialects apply it, so both give the same answer.
create or replace macro rx_parse_number(s) as
    case when length(s) <= 40 and s ~ '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]{1,3})?$'
         and abs(try_cast(s as double)) < 1e15 then cast(s as double) end;
-- rx_parse_whole(text) -> integer: a whole number of at most 9 digits (a trailing .0 allowed), else NULL.
create or replace macro rx_parse_whole(s) as
    case when s ~ '^[+-]?[0-9]{1,9}([.]0+)?$' then cast(cast(s as double) as integer) end;
-- rx_parse_bool(text) -> boolean: true/false/1/0 (also t/f/yes/no/y/n, any case), else NULL.
create or replace macro rx_parse_bool(s) as
    case when lower(s) in ('true', '1', 't', 'yes', 'y') then true
         when lower(s) in ('false', '0', 'f', 'no', 'n') then false end;
