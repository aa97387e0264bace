-- dose_coverage: how many opioid analgesic prescriptions have a computable MME under a factor set, by drug.
-- Parameters: :factor_set (text); :exclude (boolean).
-- Returns one row per ingredient, strength unit and status: ingredient, strength_unit, mme_status
-- (computed | tiered | no_factor | no_quantity), prescriptions. "tiered" counts as computable: its factor is applied
-- to the patient's total daily mg.
with
-- @include opioid_rx
-- @include rx_mme
final as (
    select ingredient, strength_unit, mme_status, count(*) as prescriptions
    from rx_mme
    group by ingredient, strength_unit, mme_status
)

select * from final order by prescriptions desc, ingredient
