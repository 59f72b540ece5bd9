{#- Lines dated after this are future_date defects: var extraction_date, or the day of the build. -#}
{% macro extraction_date() -%}
    {%- set extraction_date = var('extraction_date') -%}
    {{- 'cast(' ~ sql_string(extraction_date) ~ ' as date)' if extraction_date else 'current_date' -}}
{%- endmacro %}
