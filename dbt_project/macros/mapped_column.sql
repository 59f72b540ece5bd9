{#- The trimmed text of a mapped input column, or a typed null when the mapping leaves it out. -#}
{% macro mapped_column(name) -%}
    {%- set source_column = var('columns').get(name) -%}
    {%- if source_column -%}
        nullif(trim(cast({{ sql_identifier(source_column) }} as {{ dbt.type_string() }})), '')
    {%- else -%}
        cast(null as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
