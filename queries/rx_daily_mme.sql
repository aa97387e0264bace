-- rx_daily_mme: daily MME of every opioid analgesic prescription under one factor set.
-- Parameters: :factor_set (text); :exclude (boolean) leave out excluded patients (see _opioid_rx.sql).
-- Returns one row per opioid prescription: rx_id, patient_id, clinician_id, fill_date, last_day, days_supply,
-- ingredient, long_acting, daily_mme (NULL when not computable per prescription), mme_status
-- (computed | tiered | no_factor).
with
-- @include opioid_rx
-- @include rx_mme
final as (
    select rx_id, patient_id, clinician_id, fill_date, last_day, days_supply, ingredient, long_acting,
        daily_mme, mme_status
    from rx_mme
)

select * from final
