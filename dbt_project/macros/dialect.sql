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

{% macro default__try_cast_number(expression) -%}
    try_cast({{ expression }} as decimal(18, 4))
{%- endmacro %}

{#- A hash of every column of a row: equal hashes are exact duplicate lines. -#}
{% macro row_fingerprint(relation_alias) -%}
    {{ return(adapter.dispatch('row_fingerprint', 'segkit')(relation_alias)) }}
{%- endmacro %}

{% macro default__row_fingerprint(relation_alias) -%}
    md5(cast({{ relation_alias }} as {{ dbt.type_string() }}))
{%- endmacro %}

{#- A 64-bit hash of a value, null for null: a narrow key to group and join on in place of text. Different
    values share a key with probability about n^2 / 2^65 among n values. -#}
{% macro hash_key(expression) -%}
    case when {{ expression }} is not null then {{ adapter.dispatch('hash_function', 'segkit')() }}({{ expression }}) end
{%- endmacro %}

{% macro default__hash_function() -%}
    md5
{%- endmacro %}

{#- Each input line's position in the input, 1-based; `kind` is the input's (see transactions_input). -#}
{% macro input_line_number(kind) -%}
    {{ return(adapter.dispatch('input_line_number', 'segkit')(kind)) }}
{%- endmacro %}

{% macro default__input_line_number(kind) -%}
    row_number() over ()
{%- endmacro %}

{#- Run before any model: make source('raw', 'transactions') readable. DuckDB reads the files through the
    source's external_location, so it has nothing to do. -#}
{% macro register_transactions_source() -%}
    {{ return(adapter.dispatch('register_transactions_source', 'segkit')()) }}
{%- endmacro %}

{% macro default__register_transactions_source() -%}
{%- endmacro %}

{#- How many files the transactions_path glob matches. -#}
{% macro count_input_files(path) -%}
    {{ return(adapter.dispatch('count_input_files', 'segkit')(path)) }}
{%- endmacro %}

{% macro default__count_input_files(path) -%}
    {{ return(run_query("select count(*) from glob(" ~ sql_string(path) ~ ")").columns[0].values()[0]) }}
{%- endmacro %}
