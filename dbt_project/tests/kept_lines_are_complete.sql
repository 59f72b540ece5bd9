-- Every kept line has what features need. One pass over the view, in place of a not_null test per column
-- (the view classifies every line again each time it is read).
with kept as (
    select * from {{ ref('int_transactions_cleaned') }}
),

incomplete_lines as (
    select transaction_line_id
    from kept
    where customer_id is null or order_key is null or order_date is null or line_amount is null
)

select * from incomplete_lines
