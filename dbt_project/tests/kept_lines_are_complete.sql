-- Every line that passes the checks has what features need. One pass over the checked lines (kept lines are
-- among them), in place of a not_null test per column of a view that classifies every line again.
with checked as (
    select * from {{ ref('int_transaction_lines_checked') }}
),

incomplete_lines as (
    select transaction_line_id
    from checked
    where rejection_reason is null
        and (customer_id is null or order_key is null or order_date is null or line_amount is null)
)

select * from incomplete_lines
