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

{% macro duckdb__hash_function() -%}
    hash
{%- endmacro %}
