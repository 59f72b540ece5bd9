{#- One row per customer with a kept purchase: recency, frequency, monetary value and more,
    measured at the analysis date from kept lines dated before it. -#}
with transactions as (
    select * from {{ ref('int_transactions_cleaned') }}
),

analysis_date as (
    select * from {{ ref('int_analysis_date') }}
),

purchases_by_customer as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(distinct order_key) as frequency,
        count(distinct order_date) as order_days,
        sum(line_amount) as monetary_total,
        count(distinct product_id) as distinct_products
    from transactions
    where not is_return
    group by customer_id
),

returns_by_customer as (
    select
        customer_id,
        sum(abs(line_amount)) as returns_total
    from transactions
    where is_return
    group by customer_id
),

spend_by_category as (
    select
        customer_id,
        product_category,
        sum(line_amount) as category_total
    from transactions
    where not is_return and product_category is not null
    group by customer_id, product_category
),

top_category_by_customer as (
    select
        customer_id,
        max(category_total) / sum(category_total) as top_category_share
    from spend_by_category
    group by customer_id
),

customers_with_features as (
    select
        purchases.customer_id,
        cast({{ dbt.datediff('purchases.last_order_date', 'analysis_date.analysis_date', 'day') }} as integer)
            as recency_days,
        cast({{ dbt.datediff('purchases.first_order_date', 'analysis_date.analysis_date', 'day') }} as integer)
            as tenure_days,
        cast(purchases.frequency as integer) as frequency,
        cast(purchases.monetary_total as decimal(18, 2)) as monetary_total,
        cast(purchases.monetary_total / purchases.frequency as decimal(18, 2)) as avg_order_value,
        case
            when purchases.order_days > 1 then
                cast({{ dbt.datediff('purchases.first_order_date', 'purchases.last_order_date', 'day') }} as double)
                / (purchases.order_days - 1)
        end as avg_days_between_orders,
        cast(coalesce(returns.returns_total, 0) as decimal(18, 2)) as returns_total,
        cast(coalesce(returns.returns_total, 0) / purchases.monetary_total as double) as return_rate,
        cast(purchases.distinct_products as integer) as distinct_products,
        cast(categories.top_category_share as double) as top_category_share,
        purchases.first_order_date,
        purchases.last_order_date,
        analysis_date.analysis_date
    from purchases_by_customer as purchases
    cross join analysis_date
    left join returns_by_customer as returns on purchases.customer_id = returns.customer_id
    left join top_category_by_customer as categories on purchases.customer_id = categories.customer_id
)

select * from customers_with_features
