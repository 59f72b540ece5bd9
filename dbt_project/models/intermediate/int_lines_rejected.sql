{#- Rejected lines, one named reason each; line_id is the line's position in the input. -#}
with lines as (
    select * from {{ ref('int_lines_classified') }}
),

rejected_lines as (
    select
        line_id,
        rejection_reason,
        product_id,
        order_date,
        line_amount
    from lines
    where rejection_reason is not null
)

select * from rejected_lines
