{#- DuckDB's own versions of the dialect macros in dialect.sql, where a native function is much faster. -#}

{#- hash() of the row, a 64-bit integer: equal rows always get equal hashes, like md5, but it is 20 times
    cheaper (md5 first renders the whole row as text) and groups faster than text. Two different lines of n
    share a hash with probability about n^2 / 2^65 (3e-4 for 100 million lines); such a line would be counted
    as 'duplicate', never lost. -#}
{% macro duckdb__row_fingerprint(relation_alias) -%}
    hash({{ relation_alias }})
{%- endmacro %}

{#- Parquet numbers its rows, so lines are numbered in parallel: file number * 10^12 + row number, the same
    whatever order the scan runs in; a workbook is read from one Parquet file per sheet, so its number names the
    sheet. CSV lines are numbered as they are read. -#}
{% macro duckdb__input_line_number(kind) -%}
    {%- if kind in ('parquet', 'workbook') -%}
        cast(file_index as bigint) * 1000000000000 + file_row_number + 1
    {%- else -%}
        row_number() over ()
    {%- endif -%}
{%- endmacro %}

{#- Plain numbers; otherwise one currency symbol before or after the number is dropped ('£3.00', '3.00 €'), and
    thousands separators only where a decimal point makes them unambiguous ('1,234.50'; '2,500' could be 2.5
    in a European export, so it stays unparseable). NaN and infinity never parse. -#}
{% macro duckdb__try_cast_number(expression) -%}
    {%- set formatted = "'([+-]?)[£$€¥]?\s*([0-9]{1,3}(?:,[0-9]{3})+\.[0-9]+|[0-9]*\.?[0-9]+)\s*[£$€¥]?'" -%}
    coalesce(
        try_cast({{ expression }} as decimal(18, 4)),
        case when regexp_full_match({{ expression }}, {{ formatted }}) then
            try_cast(replace(regexp_replace({{ expression }}, {{ formatted }}, '\1\2'), ',', '') as decimal(18, 4))
        end
    )
{%- endmacro %}

{% macro duckdb__hash_function() -%}
    hash
{%- endmacro %}
