-- ndc_reference: which NDC reference is in force: each edition in ref_ndc, where it came from and its size.
-- No parameters.
-- Returns one row per edition: edition, origin ('bundled': shipped with rxdash and refreshed by every load;
-- 'loaded': loaded by `rxdash reference ndc FILE` and kept by later loads), products (NDCs), drug_classes
-- (the classes it covers, comma-separated).
select
    edition,
    origin,
    count(*) as products,
    string_agg(distinct drug_class, ', ' order by drug_class) as drug_classes
from ref_ndc
group by edition, origin
order by products desc, edition
