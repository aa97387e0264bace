-- ndc_products: the NDC reference in force (ref_ndc; see analysis/ndc.py), for the loader's drug identification.
-- No parameters.
-- Returns one row per 11-digit NDC: ndc11, product_name, ingredient, strength (per unit of strength_unit),
-- strength_unit, dose_form, long_acting, drug_class.
select ndc11, product_name, ingredient, strength, strength_unit, dose_form, long_acting, drug_class
from ref_ndc
