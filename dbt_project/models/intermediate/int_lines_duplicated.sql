{#- Every exact copy of an earlier line: its id, and the id of the first line it repeats. Small (only lines whose
    fingerprint repeats), so it is the one table cleaning writes; the checks read it beside the lines. -#}
with repeated_fingerprints as (
    -- The one aggregate over every line. A copy is most often one of two equal lines, whose ids it already holds.
    select
        line_fingerprint,
        count(*) as lines,
        min(line_id) as first_line_id,
        max(line_id) as last_line_id
    from {{ ref('stg_raw__lines') }}
    group by line_fingerprint
    having count(*) > 1
),

copies_of_pairs as (
    select last_line_id as line_id, first_line_id
    from repeated_fingerprints
    where lines = 2
),

-- Three or more equal lines: every one but the first, read again from the lines (no read when there are none).
larger_groups as (
    select line_fingerprint, first_line_id
    from repeated_fingerprints
    where lines > 2
),

copies_in_larger_groups as (
    select lines.line_id, larger_groups.first_line_id
    from {{ ref('stg_raw__lines') }} as lines
    inner join larger_groups on lines.line_fingerprint = larger_groups.line_fingerprint
    where lines.line_id <> larger_groups.first_line_id
),

copies as (
    select line_id, first_line_id from copies_of_pairs
    union all
    select line_id, first_line_id from copies_in_larger_groups
)

select * from copies
