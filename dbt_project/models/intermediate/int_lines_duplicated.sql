{#- Every exact copy of an earlier line: its id, and the id of the first line it repeats. Small (only lines whose
    fingerprint repeats), so it is the one table cleaning writes; the checks read it beside the lines. -#}
with repeated_fingerprints as (
    -- Only the count: the smallest possible entry per line in the one aggregate over every line.
    select line_fingerprint
    from {{ ref('stg_raw__lines') }}
    group by line_fingerprint
    having count(*) > 1
),

repeated_lines as (
    select
        lines.line_id,
        min(lines.line_id) over (partition by lines.line_fingerprint) as first_line_id
    from {{ ref('stg_raw__lines') }} as lines
    inner join repeated_fingerprints on lines.line_fingerprint = repeated_fingerprints.line_fingerprint
),

copies as (
    select line_id, first_line_id
    from repeated_lines
    where line_id <> first_line_id
)

select * from copies
