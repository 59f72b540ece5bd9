{#- Every line rejected as duplicate: an exact copy (equal line_fingerprint) of an earlier line, among the lines that
    pass unparseable and missing_customer_id (checked first, they keep their reason). Its id, and the id of the first
    copy, which is kept or rejected for a later check. A view: the build counts copies per customer without their ids
    (int_lines_aggregated_to_customers); their ids are needed only when the line views are queried. -#}
with lines as (
    select * from {{ ref('int_lines_keyed') }}
    where rejection_reason is null or rejection_reason not in ('unparseable', 'missing_customer_id')
),

repeated_fingerprints as (
    select line_fingerprint
    from lines
    group by line_fingerprint
    having count(*) > 1
),

-- Copies share every column, so the same customer, product, return flag and check result: partitioned as
-- int_lines_aggregated_to_customers groups them, the two always agree.
repeated_lines as (
    select
        lines.line_id,
        min(lines.line_id) over (
            partition by lines.customer_key, lines.product_hash, lines.is_return, lines.rejection_reason,
                lines.line_fingerprint
        ) as first_line_id
    from lines
    inner join repeated_fingerprints on lines.line_fingerprint = repeated_fingerprints.line_fingerprint
),

copies as (
    select line_id, first_line_id
    from repeated_lines
    where line_id <> first_line_id
)

select * from copies
