{#- Configuration values reach SQL only through these: a quoted string literal, or a quoted identifier.
    Quotes inside the value are doubled, so a value can never end the literal and run as SQL. -#}
{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{% macro sql_identifier(name) -%}
    "{{ name | string | replace('"', '""') }}"
{%- endmacro %}
