-- functions (Spark SQL): parse text from a CSV staging table into typed values, NULL when the text is not valid.
-- Dialect override of queries/functions.duckdb.sql for Spark 4 (SQL user-defined functions, which Spark
-- inlines like DuckDB's macros); the names and results are the same, so checked_*.sql run unchanged.
-- rx_parse_date(text) -> date: ISO YYYY-MM-DD, year 1800-2999, a real calendar day, else NULL.
create or replace function rx_parse_date(s string) returns date return
    case when s rlike '^(1[89]|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$' then try_cast(s as date) end;
-- rx_parse_number(text) -> double: a plain decimal number (no thousands separators) of at most 40
-- characters and magnitude below 1e15, else NULL.
create or replace function rx_parse_number(s string) returns double return
    case when length(s) <= 40 and s rlike '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]{1,3})?$'
         and abs(try_cast(s as double)) < 1e15 then try_cast(s as double) end;
-- rx_parse_whole(text) -> integer: a whole number of at most 9 digits (a trailing .0 allowed), else NULL.
create or replace function rx_parse_whole(s string) returns int return
    case when s rlike '^[+-]?[0-9]{1,9}([.]0+)?$' then cast(cast(s as double) as int) end;
-- rx_parse_bool(text) -> boolean: true/false/1/0 (also t/f/yes/no/y/n, any case), else NULL.
create or replace function rx_parse_bool(s string) returns boolean return
    case when lower(s) in ('true', '1', 't', 'yes', 'y') then true
         when lower(s) in ('false', '0', 'f', 'no', 'n') then false end;
