{#- Every input line with the first data-quality check it fails, in the order of seed rejection_reasons.
    Checks that need the analysis date come later, in int_transaction_lines_classified. -#}
{%- set non_product_codes = var('non_product_codes') | map('upper') | list -%}
{%- set cancellation_prefix = var('cancellation_prefix') -%}

with transactions as (
    select * from {{ ref('stg_transactions') }}
),

-- Copies are ranked only among lines whose fingerprint repeats (a few percent), which spares a sort of
-- every line. These two read the view directly, not through the import CTE: DuckDB would store every
-- column of every line of a CTE read three times, while a direct read computes just the fingerprint.
repeated_fingerprints as (
    select line_fingerprint
    from {{ ref('stg_transactions') }}
    group by line_fingerprint
    having count(*) > 1
),

copies_ranked as (
    select
        transaction_line_id,
        row_number() over (
            partition by line_fingerprint order by transaction_line_id
        ) as copy_number
    from {{ ref('stg_transactions') }}
    where line_fingerprint in (select line_fingerprint from repeated_fingerprints)
),

lines_with_duplicate_rank as (
    select
        transactions.*,
        coalesce(copies_ranked.copy_number, 1) as copy_number
    from transactions
    left join copies_ranked on transactions.transaction_line_id = copies_ranked.transaction_line_id
),

lines_with_flags as (
    select
        *,
        (
            {%- if cancellation_prefix %}
            substr(coalesce(order_id, ''), 1, {{ cancellation_prefix | length }}) = {{ sql_string(cancellation_prefix) }} or
            {%- endif %}
            coalesce(quantity, line_amount) < 0
        ) as is_return,
        (
            order_date is null
            or (quantity_raw is not null and quantity is null)
            or (unit_price_raw is not null and unit_price is null)
            or (line_amount_raw is not null and line_amount_given is null)
            or line_amount is null
        ) as is_unparseable
    from lines_with_duplicate_rank
),

lines_checked as (
    select
        transaction_line_id,
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
            when copy_number > 1 then 'duplicate'
            when product_id in (
                {%- for code in non_product_codes %}{{ sql_string(code) }}{{ ', ' if not loop.last }}{% endfor -%}
            ) then 'non_product_code'
            when coalesce(unit_price, abs(line_amount)) <= 0 then 'zero_or_negative_price'
            when abs(quantity) >= {{ var('extreme_quantity') | float }} then 'extreme_quantity'
            -- A billion per line is no retail purchase, and keeps customer totals far from overflowing.
            when abs(line_amount) >= 1000000000 then 'extreme_amount'
            when order_date < date '1900-01-01' then 'date_before_1900'
            when order_date > {{ extraction_date() }} then 'future_date'
        end as rejection_reason
    from lines_with_flags
)

select * from lines_checked
