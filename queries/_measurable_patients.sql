-- fragment measurable_patients: the patients whose own record window holds at least one day of the period
-- that the measure can measure (analysis.coverage, the same rule per patient as for the whole data set:
-- day d is measurable when d - need_before >= window_start and d + need_after - 1 <= window_end).
-- A patient outside it is "not measurable" for the measure and left out of numerator and denominator,
-- rather than counted as 0 (issue 13, section 3): a record that ends is not an outcome.
-- Parameters: :start, :end (date) the period; :need_before, :need_after (integer, days) the measure's
--   needs (analysis.measures.needs). With no record_start/record_end given every patient's window is the
--   data set's, and the period's own measurability already decides.
-- Defines: measurable_patients(patient_id).
measurable_patients as (
    select patient_id
    from patients
    where greatest(cast(:start as date), window_start + cast(:need_before as integer))
        <= least(cast(:end as date), window_end - greatest(cast(:need_after as integer) - 1, 0))
),
