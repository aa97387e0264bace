-- fragment rx_mme: daily MME of each opioid prescription under one factor set. Requires opioid_rx.
-- Parameters: :factor_set (text) cdc2022 | cdc2016 | cdc_file_2018 (analysis/reference/mme_factors.csv).
-- Defines: rx_mme(opioid_rx columns, daily_mme, tiered_amount, mme_status).
--   A factor row matches on ingredient, strength unit and form group ('any' or the prescription's);
--   an ingredient and unit never has both an 'any' row and a form-specific one (tests/test_dose.py).
--   daily_mme = strength x quantity x quantity_multiplier / days supply x factor (DESIGN.md; a fentanyl
--   patch's multiplier is 3, the days a patch is worn). NULL when no factor applies or the factor is tiered.
--   tiered_amount = mg a day of an ingredient whose factor depends on the patient's total daily mg
--   (methadone under cdc2016); its MME is applied per patient-day in dose_segments.
--   mme_status: computed | tiered | no_factor | no_quantity (supply whose quantity is unknown: days known,
--   dose not; README "Prescribing orders"). no_factor and no_quantity rows still count as days with supply,
--   of unknown dose.
flat_factors as (
    -- A factor stated per mcg (transmucosal fentanyl, CDC MME file: 0.13 per mcg) is applied to strength in
    -- mg (opioid_rx.base_strength), so it counts 1000 times as much per mg.
    select
        ingredient,
        form_group,
        case when strength_unit = 'MCG' then 'MG' else strength_unit end as strength_unit,
        case when strength_unit = 'MCG' then mme_factor * 1000 else mme_factor end as mme_factor,
        quantity_multiplier
    from ref_mme_factors
    where factor_set = :factor_set and daily_mg_above is null
),

tiered_ingredients as (
    select distinct ingredient
    from ref_mme_factors
    where factor_set = :factor_set and daily_mg_above is not null
),

rx_mme as (
    select
        o.*,
        case when t.ingredient is null then
            o.base_strength * o.quantity * f.quantity_multiplier / o.days_supply * f.mme_factor
        end as daily_mme,
        case when t.ingredient is not null and o.quantity is not null
            then o.base_strength * o.quantity / o.days_supply else 0 end as tiered_amount,
        case
            when o.quantity is null then 'no_quantity'
            when t.ingredient is not null then 'tiered'
            when f.mme_factor is not null then 'computed'
            else 'no_factor'
        end as mme_status
    from opioid_rx as o
    left join flat_factors as f
        on f.ingredient = o.ingredient
        and f.strength_unit = o.base_unit
        and f.form_group in ('any', o.form_group)
    left join tiered_ingredients as t
        on t.ingredient = o.ingredient
        and o.base_unit = 'MG'
),
