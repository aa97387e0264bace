-- load_notes: what the most recent load's source adapter said about the data (e.g. that every clinician is in the
-- clinic Unassigned because the source has no clinics).
-- No parameters.
-- Returns one row per note, in order: note.
with latest as (
    select run_id from load_runs order by loaded_at desc, run_id limit 1
)

select n.note
from load_notes as n
inner join latest as l on l.run_id = n.run_id
order by n.note_no
