-- staged_last_fill: the last fill date among the staged prescriptions that can be read and are not in the
-- future: the default extract date of a load (analysis.ingest._extract_date).
-- Reads stg_prescriptions (the staged text of prescriptions.csv).
-- Parameters: :as_of (date) the load date; later fill dates are rejected, so they cannot end the data.
-- Returns one row: last_fill (date, NULL when no fill date can be read).
select max(d) as last_fill
from (select rx_parse_date(trim(fill_date)) as d from stg_prescriptions) as s
where d <= :as_of
