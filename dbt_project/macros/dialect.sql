{#- Dialect-specific expressions, each behind adapter.dispatch so another engine can supply its own. -#}

{#- Parse order dates given as text or integers with the configured strptime format; null when unparseable. -#}
{% macro parse_timestamp(expression) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'segkit')(expression)) }}
{%- endmacro %}

{#- The configured format first; ISO dates and timestamps (e.g. a typed date column in Parquet) otherwise. A time
    with a UTC offset (read with %z, or ISO text ending in one, such as +09:00) is taken in UTC, others as written. -#}
{% macro default__parse_timestamp(expression) -%}
    {%- set format = var('order_date_format') -%}
    {%- set ends_in_utc_offset = "'[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]*)?)? ?[+-][0-9]{2}(:?[0-9]{2})?$'" -%}
    {%- set iso -%}
        case
            when regexp_matches({{ expression }}, {{ ends_in_utc_offset }})
                then {{ utc_timestamp('try_cast(' ~ expression ~ ' as timestamptz)') }}
            else try_cast({{ expression }} as timestamp)
        end
    {%- endset -%}
    {%- if format and '%z' in format | lower -%}
        coalesce({{ utc_timestamp('try_strptime(' ~ expression ~ ', ' ~ sql_string(format) ~ ')') }}, {{ iso }})
    {%- elif format -%}
        coalesce(try_strptime({{ expression }}, {{ sql_string(format) }}), {{ iso }})
    {%- else -%}
        {{ iso }}
    {%- endif -%}
{%- endmacro %}

{#- The UTC wall-clock time of a timestamp with a time zone, so that its date never depends on the session's (the
    machine's) time zone. -#}
{% macro utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('utc_timestamp', 'segkit')(expression)) }}
{%- endmacro %}

{% macro default__utc_timestamp(expression) -%}
    timezone('UTC', {{ expression }})
{%- endmacro %}

{% macro try_cast_number(expression) -%}
    {{ return(adapter.dispatch('try_cast_number', 'segkit')(expression)) }}
{%- endmacro %}

{#- Plain numbers take the fast cast; the rest must match number_format() in full: the sign and digits are kept,
    the grouping characters dropped, the decimal mark made a point. NaN and infinity never parse. -#}
{% macro default__try_cast_number(expression) -%}
    {%- set format = number_format() -%}
    {%- set pattern = sql_string(format.pattern) -%}
    {%- set digits = "translate(regexp_replace(" ~ expression ~ ", " ~ pattern ~ ", " ~ regex_groups('1', '2') ~ "), "
                     ~ sql_string(format.grouping) ~ ", '')" -%}
    coalesce(
        {%- if format.decimal == '.' %}
        try_cast({{ expression }} as decimal(18, 4)),
        {%- else %}
        case when {{ expression }} not like '%.%' then try_cast(replace({{ expression }}, ',', '.') as decimal(18, 4)) end,
        {%- endif %}
        case when {{ regex_matches_in_full(expression, pattern) }} then
            try_cast({{ digits if format.decimal == '.' else 'replace(' ~ digits ~ ", ',', '.')" }} as decimal(18, 4))
        end
    )
{%- endmacro %}

{#- A replacement string for regexp_replace made of the numbered groups, e.g. '\1\2'. -#}
{% macro regex_groups(first, second) -%}
    {{ return(adapter.dispatch('regex_groups', 'segkit')(first, second)) }}
{%- endmacro %}

{% macro default__regex_groups(first, second) -%}
    '\{{ first }}\{{ second }}'
{%- endmacro %}

{#- True when the whole of expression matches pattern (a pattern anchored with ^ and $). -#}
{% macro regex_matches_in_full(expression, pattern) -%}
    {{ return(adapter.dispatch('regex_matches_in_full', 'segkit')(expression, pattern)) }}
{%- endmacro %}

{% macro default__regex_matches_in_full(expression, pattern) -%}
    regexp_full_match({{ expression }}, {{ pattern }})
{%- endmacro %}

{#- How numbers written as text are read (vars decimal_separator and thousands_separator): the regular expression a
    formatted number must match in full, capturing its sign and its digits, the characters that group thousands
    and the decimal mark. One currency symbol may stand before or after the number ('£3.00', '3.00 €'). With no
    thousands separator set, the mark that is not the decimal one groups digits only before a decimal part
    ('1,234.50'): alone, '2,500' could be 2.5 or 2500, so it does not match and the value is unparseable. A space
    as the separator also accepts the no-break spaces spreadsheets write. -#}
{% macro number_format() -%}
    {%- set decimal = var('decimal_separator') or '.' -%}
    {%- set thousands = var('thousands_separator') -%}
    {%- set point = '[' ~ decimal ~ ']' -%}
    {%- if thousands -%}
        {%- set grouping = ' \u00a0\u202f' if thousands == ' ' else thousands -%}
        {%- set number = '[0-9]{1,3}(?:[' ~ grouping ~ '][0-9]{3})+(?:' ~ point ~ '[0-9]+)?'
                         ~ '|[0-9]*' ~ point ~ '?[0-9]+' -%}
    {%- else -%}
        {%- set grouping = ',' if decimal == '.' else '.' -%}
        {%- set number = '[0-9]{1,3}(?:[' ~ grouping ~ '][0-9]{3})+' ~ point ~ '[0-9]+'
                         ~ '|[0-9]*' ~ point ~ '?[0-9]+' -%}
    {%- endif -%}
    {%- set pattern = '^([+-]?)[£$€¥]?\s*(' ~ number ~ ')\s*[£$€¥]?$' -%}
    {{ return({'pattern': pattern, 'grouping': grouping, 'decimal': decimal}) }}
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

{#- Run before any model: make source('raw', 'transactions') readable, or return why it cannot be. DuckDB reads
    the files through the source's external_location, so it has nothing to do. -#}
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
