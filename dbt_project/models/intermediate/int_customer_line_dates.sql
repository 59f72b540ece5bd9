{#- One row per customer with a line that passed the checks: the first purchase date (null when the customer
    only returned goods) and the last date of any such line. Small, so the default analysis date and the
    return_without_purchase check read it instead of every line again. -#}
with lines as (
    select * from {{ ref('int_transaction_lines_checked') }}
),

dates_by_customer as (
    select
        customer_id,
        min(case when not is_return then order_date end) as first_purchase_date,
        max(order_date) as last_line_date
    from lines
    where rejection_reason is null
    group by customer_id
)

select * from dates_by_customer
