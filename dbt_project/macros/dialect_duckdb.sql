{#- DuckDB's own versions of the dialect macros in dialect.sql, where a native function is much faster. -#}

{#- hash() of the row, a 64-bit integer: equal rows always get equal hashes, like md5, but it is 20 times
    cheaper (md5 first renders the whole row as text) and groups faster than text. Two different lines of n
    share a hash with probability about n^2 / 2^65 (3e-4 for 100 million lines); such a line would be counted
    as 'duplicate', never lost. -#}
{% macro duckdb__row_fingerprint(relation_alias) -%}
    hash({{ relation_alias }})
{%- endmacro %}
