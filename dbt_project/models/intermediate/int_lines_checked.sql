{#- Every input line with the first data-quality check it fails, in the order of seed rejection_reasons: the checks
    of int_lines_screened, and duplicate in its place among them (after unparseable and missing_customer_id).
    Checks that need the analysis date come later, in int_lines_classified. -#}
with lines as (
    select * from {{ ref('int_lines_screened') }}
),

duplicate_lines as (
    select * from {{ ref('int_lines_duplicated') }}
),

lines_checked as (
    select
        lines.line_id,
        lines.customer_id,
        lines.order_key,
        lines.product_id,
        lines.product_category,
        lines.order_date,
        lines.quantity,
        lines.unit_price,
        lines.line_amount,
        lines.is_return,
        case
            when lines.rejection_reason in ('unparseable', 'missing_customer_id') then lines.rejection_reason
            when duplicate_lines.line_id is not null then 'duplicate'
            else lines.rejection_reason
        end as rejection_reason
    from lines
    left join duplicate_lines on lines.line_id = duplicate_lines.line_id
)

select * from lines_checked
