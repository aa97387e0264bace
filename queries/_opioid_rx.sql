-- fragment opioid_rx: opioid analgesic prescriptions (buprenorphine, naloxone, benzodiazepines excluded:
-- CDC 2022 never sums them into MME), with the day the supply ends and the strength in base units.
-- Parameters: :exclude (boolean) leave out patients with cancer, hospice/palliative care or sickle cell
-- disease (DESIGN.md "Exclusions"; patient-level flags, so the whole patient is left out).
-- Defines: opioid_rx(rx_id, patient_id, clinician_id, fill_date, last_day, days_supply, quantity,
--   long_acting, ingredient, strength_unit, base_unit, base_strength, form_group).
-- A prescription covers fill_date ... fill_date + days_supply - 1 (DESIGN.md).
opioid_rx as (
    select
        p.rx_id,
        p.patient_id,
        p.clinician_id,
        p.fill_date,
        p.fill_date + p.days_supply - 1 as last_day,
        p.days_supply,
        p.quantity,
        p.long_acting,
        p.ingredient,
        p.strength_unit,
        -- Units were made canonical at load (analysis.vocabulary: MG/5ML is stored as MG/ML, ug as MCG).
        -- Liquids are dosed per mL and dispensed in mL, sprays per actuation and dispensed in actuations,
        -- so strength x quantity is still mg.
        case
            when p.strength_unit in ('MG', 'MG/ML', 'MG/ACTUAT', 'MCG', 'MCG/ML', 'MCG/ACTUAT') then 'MG'
            else p.strength_unit
        end as base_unit,
        case when p.strength_unit in ('MCG', 'MCG/ML', 'MCG/ACTUAT') then p.strength / 1000 else p.strength end
            as base_strength,
        -- The dose-form group was read at load by analysis.vocabulary.form_group, the one reading of every
        -- spelling ('Transdermal System', 'PATCH, EXTENDED RELEASE', 'TABLET; BUCCAL', 'SPRAY; NASAL', ...).
        coalesce(p.form_group, 'other') as form_group
    from prescriptions as p
    inner join patients as pt on pt.patient_id = p.patient_id
    where p.drug_class = 'opioid_analgesic'
        and not (:exclude and (pt.cancer or pt.hospice_palliative or pt.sickle_cell))
),
