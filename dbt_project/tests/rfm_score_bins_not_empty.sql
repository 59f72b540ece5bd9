{{ config(severity = 'warn') }}
-- Warns when ties leave an RFM score empty (e.g. most customers have one order), so it is never silent.
select * from {{ ref('rfm_score_bins') }} where customers = 0
