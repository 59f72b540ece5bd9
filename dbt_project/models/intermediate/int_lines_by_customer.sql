{#- One pass over the checked lines: one row per customer and check result (rejection_reason null for lines that
    passed the checks; customer_id null for lines without one). It holds what the later models need, so none of
    them reads every line again: the lines per check result, the dates behind the analysis date and the
    return_without_purchase rule, and the sums and distinct counts behind the features. -#}
{%- set analysis_date = var('analysis_date') -%}

with lines as (
    select * from {{ ref('int_transaction_lines_checked') }}
),

lines_in_window as (
    select
        customer_id,
        rejection_reason,
        order_key,
        product_id,
        order_date,
        line_amount,
        is_return,
        -- Passed the checks and dated before the analysis date. The default analysis date follows the last
        -- line that passed, so only a set analysis_date leaves lines out here (int_analysis_date).
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
        count(
            case
                when rejection_reason is null
                    and (customer_id is null or order_key is null or order_date is null or line_amount is null)
                    then 1
            end
        ) as incomplete_lines,
        max(case when rejection_reason is null then order_date end) as last_line_date,
        min(case when is_in_window and not is_return then order_date end) as first_purchase_date,
        max(case when is_in_window and not is_return then order_date end) as last_purchase_date,
        count(distinct case when is_in_window and not is_return then order_key end) as orders,
        count(distinct case when is_in_window and not is_return then order_date end) as order_days,
        sum(case when is_in_window and not is_return then line_amount end) as purchases_total,
        count(distinct case when is_in_window and not is_return then product_id end) as distinct_products,
        sum(case when is_in_window and is_return then abs(line_amount) end) as returns_total
    from lines_in_window
    group by customer_id, rejection_reason
)

select * from lines_by_customer
