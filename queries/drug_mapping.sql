-- drug_mapping: how each loaded drug description was read, and whether its ingredient has a class.
-- No parameters.
-- Returns one row per drug description: drug_name, ingredient, strength, strength_unit, dose_form,
-- long_acting, drug_class ('unmapped' when the ingredient is not in ref_drug_classes), drug_parsed,
-- prescriptions.
select
    drug_name,
    ingredient,
    strength,
    strength_unit,
    dose_form,
    long_acting,
    coalesce(drug_class, 'unmapped') as drug_class,
    drug_parsed,
    count(*) as prescriptions
from prescriptions
group by drug_name, ingredient, strength, strength_unit, dose_form, long_acting, drug_class, drug_parsed
order by prescriptions desc
