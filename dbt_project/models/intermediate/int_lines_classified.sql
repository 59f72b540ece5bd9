{#- Every input line with its final rejection reason, or null when the line is kept. -#}
with lines as (
    select * from {{ ref('int_lines_checked') }}
),

analysis_date as (
    select * from {{ ref('int_analysis_date_resolved') }}
),

lines_in_window as (
    select
        lines.*,
        coalesce(
            lines.rejection_reason,
            case when lines.order_date >= analysis_date.analysis_date then 'after_analysis_date' end
        ) as reason_in_window
    from lines
    cross join analysis_date
),

customers_with_purchases as (
    -- first_purchase_date counts purchases before the analysis date only.
    select customer_id
    from {{ ref('int_lines_aggregated_to_customers') }}
    where rejection_reason is null and first_purchase_date is not null
),

lines_classified as (
    select
        lines_in_window.line_id,
        lines_in_window.customer_id,
        lines_in_window.order_key,
        lines_in_window.product_id,
        lines_in_window.product_category,
        lines_in_window.order_date,
        lines_in_window.quantity,
        lines_in_window.unit_price,
        lines_in_window.line_amount,
        lines_in_window.is_return,
        coalesce(
            lines_in_window.reason_in_window,
            case when customers_with_purchases.customer_id is null then 'return_without_purchase' end
        ) as rejection_reason
    from lines_in_window
    left join customers_with_purchases
        on lines_in_window.customer_id = customers_with_purchases.customer_id
)

select * from lines_classified
