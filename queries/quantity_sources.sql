-- quantity_sources: how the loaded prescriptions' quantity and days supply were obtained (the Data quality
-- page): measured (quantity_source given: a dispensing's quantity and days_supply) or inferred from a
-- prescribing order's sig and days (sig_days, sig_end, sig_open, qty_end, qty_sig; README "Prescribing
-- orders", analysis.ingest.QUANTITY_SOURCES).
-- No parameters.
-- Returns one row per quantity source: quantity_source ('not recorded' for rows loaded before the column
-- existed), prescriptions (stored fills: an order split into several counts each), opioid_prescriptions
-- (of them, opioid analgesics: the ones that enter MME), opioid_days_supply (their days of supply).
select
    coalesce(quantity_source, 'not recorded') as quantity_source,
    count(*) as prescriptions,
    count(case when drug_class = 'opioid_analgesic' then 1 end) as opioid_prescriptions,
    coalesce(sum(case when drug_class = 'opioid_analgesic' then days_supply end), 0) as opioid_days_supply
from prescriptions
group by coalesce(quantity_source, 'not recorded')
order by prescriptions desc, quantity_source
