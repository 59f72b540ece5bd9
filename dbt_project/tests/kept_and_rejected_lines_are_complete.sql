-- Every kept line has what features need, and every rejected line a reason. One pass over each view, in
-- place of a not_null test per column (the views rebuild the classification each time they are read).
with kept as (
    select * from {{ ref('int_transactions_cleaned') }}
),

rejected as (
    select * from {{ ref('int_transactions_rejected') }}
),

incomplete_lines as (
    select transaction_line_id, 'kept line without customer, order, date or amount' as problem
    from kept
    where customer_id is null or order_key is null or order_date is null or line_amount is null
    union all
    select transaction_line_id, 'rejected line without a reason' as problem
    from rejected
    where rejection_reason is null
)

select * from incomplete_lines
