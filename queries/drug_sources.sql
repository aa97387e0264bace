-- drug_sources: loaded prescriptions by how each one's drug was identified (analysis.drugs.identify_drug).
-- No parameters.
-- Returns one row per source: drug_source (given: its ingredient/strength/unit fields; ndc: its NDC in the
-- NDC reference; rxcui: its RxCUI in the RxCUI reference; name: its drug name read; unrecorded: loaded
-- before drug_source existed), prescriptions.
select
    coalesce(drug_source, 'unrecorded') as drug_source,
    count(*) as prescriptions
from prescriptions
group by coalesce(drug_source, 'unrecorded')
order by prescriptions desc, drug_source
