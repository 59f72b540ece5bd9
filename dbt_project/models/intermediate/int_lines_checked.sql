{#- Every input line with the first data-quality check it fails, in the order of seed rejection_reasons.
    Checks that need the analysis date come later, in int_lines_classified. -#}
{%- set non_product_codes = var('non_product_codes') | map('upper') | list -%}
{%- set cancellation_prefix = var('cancellation_prefix') -%}

with lines as (
    select * from {{ ref('stg_raw__lines') }}
),

duplicate_lines as (
    select * from {{ ref('int_lines_duplicated') }}
),

lines_with_flags as (
    select
        lines.*,
        duplicate_lines.line_id is not null as is_duplicate,
        (
            {%- if cancellation_prefix %}
            substr(coalesce(lines.order_id, ''), 1, {{ cancellation_prefix | length }})
                = {{ sql_string(cancellation_prefix) }} or
            {%- endif %}
            coalesce(lines.quantity, 0) < 0 or coalesce(lines.line_amount, 0) < 0
        ) as is_return,
        (
            lines.has_unparseable_value
            or lines.order_date is null
            or lines.line_amount is null
        ) as is_unparseable
    from lines
    left join duplicate_lines on lines.line_id = duplicate_lines.line_id
),

lines_checked as (
    select
        line_id,
        customer_id,
        -- Without an order id, an order is one customer on one date.
        coalesce(order_id, customer_id || '|' || cast(order_date as {{ dbt.type_string() }})) as order_key,
        product_id,
        product_category,
        order_date,
        quantity,
        unit_price,
        line_amount,
        is_return,
        case
            when is_unparseable then 'unparseable'
            when customer_id is null then 'missing_customer_id'
            when is_duplicate then 'duplicate'
            when product_id in (
                {%- for code in non_product_codes %}{{ sql_string(code) }}{{ ', ' if not loop.last }}{% endfor -%}
            ) then 'non_product_code'
            when unit_price <= 0 then 'zero_or_negative_price'
            -- No units, or worth 0.00 in money: neither a purchase nor a return.
            when quantity = 0 or abs(line_amount) < 0.005 then 'zero_quantity_or_amount'
            when abs(quantity) >= {{ var('extreme_quantity') | float }} then 'extreme_quantity'
            -- A billion per line is no retail purchase, and keeps customer totals far from overflowing.
            when abs(line_amount) >= 1000000000 then 'extreme_amount'
            when order_date < date '1900-01-01' then 'date_before_1900'
            when order_date > {{ extraction_date() }} then 'future_date'
        end as rejection_reason
    from lines_with_flags
)

select * from lines_checked
