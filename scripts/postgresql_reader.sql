-- A read-only PostgreSQL role for the dashboard (README: "Read-only database access").
-- Run it as the owner of the tables (the account `rxdash load` uses), with psql variables for the
-- role and the schema:
--   psql "$OWNER_URL" -v reader=rxdash_reader -v schema=public -f scripts/postgresql_reader.sql
-- then point the dashboard at postgresql+psycopg://rxdash_reader@HOST/DB (add a password with
-- `alter role rxdash_reader password '...'` when the server asks for one).
create role :"reader" login;
grant usage on schema :"schema" to :"reader";
grant select on all tables in schema :"schema" to :"reader";
-- Tables made by later loads (rxdash load --replace recreates them) are readable too.
alter default privileges in schema :"schema" grant select on tables to :"reader";
-- Even a statement that slipped through could not write: every transaction of this role is read-only.
alter role :"reader" set default_transaction_read_only = on;
