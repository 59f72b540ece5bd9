{#- Every exact copy of an earlier line: its id, and the id of the first line it repeats. Small (only lines whose
    fingerprint repeats), so it is the one table cleaning writes; the checks read it beside the lines. -#}
with repeated_fingerprints as (
    select
        line_fingerprint,
        min(transaction_line_id) as first_line_id
    from {{ ref('stg_transactions') }}
    group by line_fingerprint
    having count(*) > 1
),

copies as (
    select
        lines.transaction_line_id,
        repeated_fingerprints.first_line_id
    from {{ ref('stg_transactions') }} as lines
    inner join repeated_fingerprints on lines.line_fingerprint = repeated_fingerprints.line_fingerprint
    where lines.transaction_line_id <> repeated_fingerprints.first_line_id
)

select * from copies
