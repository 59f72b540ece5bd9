{#- Configuration values reach SQL only through these: a quoted string literal, or a quoted identifier.
    Quotes inside the value are escaped, so a value can never end the literal and run as SQL. -#}
{% macro sql_string(value) -%}
    {{ return(adapter.dispatch('sql_string', 'segkit')(value)) }}
{%- endmacro %}

{% macro default__sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{% macro sql_identifier(name) -%}
    {{ return(adapter.dispatch('sql_identifier', 'segkit')(name)) }}
{%- endmacro %}

{% macro default__sql_identifier(name) -%}
    "{{ name | string | replace('"', '""') }}"
{%- endmacro %}
