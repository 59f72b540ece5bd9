{#- Dialect-specific expressions, each behind adapter.dispatch so another engine can supply its own. -#}

{#- Parse order dates given as text or integers with the configured strptime format; null when unparseable. -#}
{% macro parse_timestamp(expression) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'segkit')(expression)) }}
{%- endmacro %}

{#- The configured format first; ISO dates and timestamps (e.g. a typed date column in Parquet) otherwise. -#}
{% macro default__parse_timestamp(expression) -%}
    {%- set format = var('order_date_format') -%}
    {%- if format -%}
        coalesce(try_strptime({{ expression }}, {{ sql_string(format) }}), try_cast({{ expression }} as timestamp))
    {%- else -%}
        try_cast({{ expression }} as timestamp)
    {%- endif -%}
{%- endmacro %}

{% macro try_cast_number(expression) -%}
    {{ return(adapter.dispatch('try_cast_number', 'segkit')(expression)) }}
{%- endmacro %}

{#- Plain numbers; otherwise one currency symbol before or after the number is dropped ('£3.00', '3.00 €'), and
    thousands separators only where a decimal point makes them unambiguous ('1,234.50'; '2,500' could be 2.5
    in a European export, so it stays unparseable). NaN and infinity never parse. -#}
{% macro default__try_cast_number(expression) -%}
    {%- set formatted = "'([+-]?)[£$€¥]?\s*([0-9]{1,3}(?:,[0-9]{3})+\.[0-9]+|[0-9]*\.?[0-9]+)\s*[£$€¥]?'" -%}
    coalesce(
        try_cast({{ expression }} as decimal(18, 4)),
        case when regexp_full_match({{ expression }}, {{ formatted }}) then
            try_cast(replace(regexp_replace({{ expression }}, {{ formatted }}, '\1\2'), ',', '') as decimal(18, 4))
        end
    )
{%- endmacro %}

{#- A hash of every column of a row: equal hashes are exact duplicate lines. -#}
{% macro row_fingerprint(relation_alias) -%}
    {{ return(adapter.dispatch('row_fingerprint', 'segkit')(relation_alias)) }}
{%- endmacro %}

{% macro default__row_fingerprint(relation_alias) -%}
    md5(cast({{ relation_alias }} as {{ dbt.type_string() }}))
{%- endmacro %}
