{#- Parse order dates given as text or integers with the configured strptime format; null when unparseable. -#}
{% macro parse_timestamp(expression) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'segkit')(expression)) }}
{%- endmacro %}

{% macro default__parse_timestamp(expression) -%}
    {%- set format = var('order_date_format') -%}
    {%- if format -%}
        try_strptime({{ expression }}, '{{ format }}')
    {%- else -%}
        try_cast({{ expression }} as timestamp)
    {%- endif -%}
{%- endmacro %}

{% macro try_cast_number(expression) -%}
    {{ return(adapter.dispatch('try_cast_number', 'segkit')(expression)) }}
{%- endmacro %}

{% macro default__try_cast_number(expression) -%}
    try_cast({{ expression }} as decimal(18, 4))
{%- endmacro %}
