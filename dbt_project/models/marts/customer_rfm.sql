{#- One row per customer with a kept purchase: recency, frequency, monetary value and more,
    measured at the analysis date from kept lines dated before it. -#}
{%- set has_categories = var('columns').get('product_category') -%}

with lines_by_customer as (
    select * from {{ ref('int_lines_aggregated_to_customers') }}
),

analysis_date as (
    select * from {{ ref('int_analysis_date_resolved') }}
),
{%- if has_categories %}

kept_lines as (
    select * from {{ ref('int_lines_kept') }}
),
{%- endif %}

-- Customers whose lines passed the checks and include a purchase before the analysis date: their returns are
-- kept, the other customers' returns were rejected (return_without_purchase).
purchases as (
    select
        customer_id,
        first_purchase_date as first_order_date,
        last_purchase_date as last_order_date,
        orders as frequency,
        order_days,
        monetary_total,
        distinct_products,
        returns_total
    from lines_by_customer
    where rejection_reason is null and first_purchase_date is not null
),

{%- if has_categories %}

monetary_by_category as (
    select
        customer_id,
        product_category,
        sum(line_amount) as category_total
    from kept_lines
    where not is_return and product_category is not null
    group by customer_id, product_category
),

top_category_by_customer as (
    select
        customer_id,
        max(category_total) / sum(category_total) as top_category_share
    from monetary_by_category
    group by customer_id
),
{%- endif %}

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
        cast(coalesce(purchases.returns_total, 0) as decimal(18, 2)) as returns_total,
        -- in doubles, as DuckDB divides decimals: Spark's decimal division of wide sums keeps 6 decimals only
        cast(coalesce(purchases.returns_total, 0) as double) / cast(purchases.monetary_total as double) as return_rate,
        cast(purchases.distinct_products as integer) as distinct_products,
        {%- if has_categories %}
        cast(categories.top_category_share as double) as top_category_share,
        {%- else %}
        cast(null as double) as top_category_share,
        {%- endif %}
        purchases.first_order_date,
        purchases.last_order_date,
        analysis_date.analysis_date
    from purchases
    cross join analysis_date
    {%- if has_categories %}
    left join top_category_by_customer as categories on purchases.customer_id = categories.customer_id
    {%- endif %}
)

select * from customers_with_features
