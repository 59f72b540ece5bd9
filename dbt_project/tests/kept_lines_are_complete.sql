-- Every line that passes the checks has what features need (customer, order, date and amount). Counted in the one
-- pass of int_lines_aggregated_to_customers, in place of a not_null test per column that would read every line again.
with lines_by_customer as (
    select * from {{ ref('int_lines_aggregated_to_customers') }}
),

incomplete as (
    select customer_id, incomplete_lines
    from lines_by_customer
    where incomplete_lines > 0
)

select * from incomplete
