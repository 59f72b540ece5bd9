{#- Kept lines: purchases, and returns kept apart (is_return) so features can use them. -#}
with lines as (
    select * from {{ ref('int_lines_classified') }}
),

kept_lines as (
    select
        line_id,
        customer_id,
        order_key,
        product_id,
        product_category,
        order_date,
        quantity,
        unit_price,
        line_amount,
        is_return
    from lines
    where rejection_reason is null
)

select * from kept_lines
