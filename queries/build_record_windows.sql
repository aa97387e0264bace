-- build_record_windows: each patient's record window, the days every rule that depends on "no supply"
-- may use (issue 13, section 3). Run by every load (analysis.ingest.rebuild_derived) before the stored
-- derivations, since the taper, new-start and long-term rules read patients.window_start and window_end.
-- Parameters: :data_start (date) the first fill date of the data set; :data_end (date) the extract date.
-- Sets patients.window_start = record_start (blank: :data_start) and window_end = record_end (blank:
-- :data_end), each clipped to :data_start .. :data_end: the data cannot speak for days before the first
-- fill of the extract or after the extract date, whatever the patient's record says.
update patients
set window_start = greatest(coalesce(record_start, cast(:data_start as date)), cast(:data_start as date)),
    window_end = least(coalesce(record_end, cast(:data_end as date)), cast(:data_end as date))
