{#- One pass over the checked lines: one row per customer and check result (rejection_reason null for lines that
    passed the checks; customer_id null for lines without one). It holds what the later models need, so none of
    them reads every line again: the lines per check result, the dates behind the analysis date and the
    return_without_purchase rule, and the sums and distinct counts behind the features. -#}
{%- set analysis_date = var('analysis_date') -%}
{#- Each distinct count and the column of purchases it counts. -#}
{%- set distinct_counts = {'orders': 'order_hash', 'order_days': 'order_date', 'distinct_products': 'product_hash'} -%}

with lines as (
    select * from {{ ref('int_lines_checked') }}
),

-- Read by every aggregate below, so it is computed once. Orders, products and customers are reduced to 64-bit
-- hash keys: grouping by one narrow number instead of text took a third off this model's time at 10 and
-- 100 million lines (bench/README.md); customer_keys_are_unique guards against two customers sharing a key.
lines_in_window as (
    select
        customer_id,
        rejection_reason,
        {{ hash_key('customer_id') }} as customer_key,
        {{ hash_key('order_key') }} as order_hash,
        {{ hash_key('product_id') }} as product_hash,
        order_date,
        line_amount,
        is_return,
        rejection_reason is null
            and (customer_id is null or order_key is null or order_date is null or line_amount is null)
            as is_incomplete,
        -- Passed the checks and dated before the analysis date. The default analysis date follows the last
        -- line that passed, so only a set analysis_date leaves lines out here (int_analysis_date_resolved).
        rejection_reason is null
        {%- if analysis_date %} and order_date < cast({{ sql_string(analysis_date) }} as date){% endif %}
            as is_in_window
    from lines
),

lines_by_customer as (
    select
        customer_id,
        rejection_reason,
        count(*) as line_count,
        count(case when is_in_window then 1 end) as lines_in_window,
        count(case when is_incomplete then 1 end) as incomplete_lines,
        max(case when rejection_reason is null then order_date end) as last_line_date,
        min(case when is_in_window and not is_return then order_date end) as first_purchase_date,
        max(case when is_in_window and not is_return then order_date end) as last_purchase_date,
        sum(case when is_in_window and not is_return then line_amount end) as monetary_total,
        sum(case when is_in_window and is_return then abs(line_amount) end) as returns_total
    from lines_in_window
    group by customer_id, rejection_reason
),

-- The distinct counts, one small aggregate each over the purchases in the window (all of them passed the checks,
-- so each customer's counts belong to its row without a rejection_reason).
purchases as (
    select customer_key, order_hash, order_date, product_hash
    from lines_in_window
    where is_in_window and not is_return
),

{%- for count_name, column in distinct_counts.items() %}

{{ count_name }}_by_customer as (
    select customer_key, count(*) as {{ count_name }}
    from (select distinct customer_key, {{ column }} from purchases where {{ column }} is not null) as distinct_values
    group by customer_key
),
{%- endfor %}

customers_keyed as (
    select *, {{ hash_key('customer_id') }} as customer_key
    from lines_by_customer
),

lines_with_distinct_counts as (
    select
        customers_keyed.customer_id,
        customers_keyed.rejection_reason,
        customers_keyed.line_count,
        customers_keyed.lines_in_window,
        customers_keyed.incomplete_lines,
        customers_keyed.last_line_date,
        customers_keyed.first_purchase_date,
        customers_keyed.last_purchase_date,
        coalesce(orders_by_customer.orders, 0) as orders,
        coalesce(order_days_by_customer.order_days, 0) as order_days,
        customers_keyed.monetary_total,
        coalesce(distinct_products_by_customer.distinct_products, 0) as distinct_products,
        customers_keyed.returns_total
    from customers_keyed
    {%- for count_name in distinct_counts %}
    left join {{ count_name }}_by_customer
        on customers_keyed.rejection_reason is null
        and customers_keyed.customer_key = {{ count_name }}_by_customer.customer_key
    {%- endfor %}
)

select * from lines_with_distinct_counts
