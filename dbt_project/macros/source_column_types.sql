{#- The input's column types by name, so staging can skip the text round trip for typed columns (Parquet and
    workbook numbers, dates and timestamps). Empty where the engine should read every column as text, and at parse
    time. `input` is what transactions_input() returns. -#}
{% macro source_column_types(input) -%}
    {{ return(adapter.dispatch('source_column_types', 'segkit')(input)) }}
{%- endmacro %}

{% macro default__source_column_types(input) -%}
    {{ return({}) }}
{%- endmacro %}

{#- CSV is read as text (all_varchar), so only Parquet, workbooks and relations have types to look up. -#}
{% macro duckdb__source_column_types(input) -%}
    {%- if not execute or input.get('error') or input.kind not in ('parquet', 'workbook', 'relation')
        or (input.kind != 'relation' and count_input_files(var('transactions_path')) == 0) -%}
        {{ return({}) }}
    {%- endif -%}
    {%- set described = run_query("describe select * from " ~ input.relation) -%}
    {%- set types = {} -%}
    {%- for row in described.rows -%}
        {%- do types.update({row[0]: row[1] | upper}) -%}
    {%- endfor -%}
    {{ return(types) }}
{%- endmacro %}

{#- 'number', 'temporal' or 'text': how staging reads the mapped column `name`. -#}
{% macro source_column_kind(name, types) -%}
    {%- set type = types.get(var('columns').get(name), 'VARCHAR') -%}
    {%- if type in ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER',
                    'UBIGINT', 'UHUGEINT', 'FLOAT', 'DOUBLE') or type.startswith('DECIMAL') -%}
        {{ return('number') }}
    {%- elif type == 'DATE' or type.startswith('TIMESTAMP') -%}
        {{ return('temporal') }}
    {%- endif -%}
    {{ return('text') }}
{%- endmacro %}
