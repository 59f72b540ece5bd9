{#- Rejected lines, one named reason each; transaction_line_id is the line's position in the input. -#}
with lines as (
    select * from {{ ref('int_transaction_lines_classified') }}
),

rejected_lines as (
    select
        transaction_line_id,
        rejection_reason,
        product_id,
        order_date,
        line_amount
    from lines
    where rejection_reason is not null
)

select * from rejected_lines
