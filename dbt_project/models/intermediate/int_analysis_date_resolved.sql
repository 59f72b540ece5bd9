{#- The one date every feature is measured at. Never the wall clock, so reruns reproduce. -#}
{%- set analysis_date = var('analysis_date') -%}

with lines_by_customer as (
    select * from {{ ref('int_lines_aggregated_to_customers') }}
),

last_valid_line as (
    select max(last_line_date) as last_order_date
    from lines_by_customer
    where rejection_reason is null
),

analysis_date as (
    select
        {%- if analysis_date %}
        cast({{ sql_string(analysis_date) }} as date) as analysis_date,
        false as is_default,
        {%- else %}
        cast({{ dbt.dateadd('day', 1, 'last_order_date') }} as date) as analysis_date,
        true as is_default,
        {%- endif %}
        -- Recorded because lines dated after it were rejected as future_date.
        {{ extraction_date() }} as extraction_date
    from last_valid_line
)

select * from analysis_date
