{#- The input files as something to select from, and their kind: 'csv', 'parquet' or 'workbook'. The one place
    that knows how they are read: staging selects from it, and the checks at the start of a build read it. -#}
{% macro transactions_input(check=false) -%}
    {{ return(adapter.dispatch('transactions_input', 'segkit')(check)) }}
{%- endmacro %}

{#- Other engines read the source as register_transactions_source left it (Spark: a table over the files). -#}
{% macro default__transactions_input(check=false) -%}
    {{ return({'kind': input_kind_by_name(var('transactions_path')), 'relation': source('raw', 'transactions')}) }}
{%- endmacro %}

{#- DuckDB: segkit/reader.py (a dbt-duckdb plugin, see profiles.yml) looks at the files and writes the read_csv or
    read_parquet call, with the dialect the vars give; with check, it also reads every file through once and
    answers the first problem as a message naming the file, the line and the var to set. -#}
{% macro duckdb__transactions_input(check=false) -%}
    {%- set relation = source('raw', 'transactions') -%}
    {%- if not execute -%}
        {{ return({'kind': input_kind_by_name(var('transactions_path')), 'relation': relation}) }}
    {%- endif -%}
    {%- if check and run_query("select count(*) from duckdb_functions() where function_name = 'segkit_read_input'")
                        .columns[0].values()[0] == 0 -%}
        {{ exceptions.raise_compiler_error(
            "segkit: dbt's DuckDB connection has no segkit_read_input: list segkit's reader among the plugins of "
            ~ "the target in profiles.yml (plugins: - module: segkit.reader), as the repository's profiles.yml does.") }}
    {%- endif -%}
    {%- set request = {'check': check, 'settings': {
        'path': var('transactions_path'), 'columns': var('columns'), 'database': target.path,
        'delimiter': var('csv_delimiter'), 'quote': var('csv_quote'), 'escape': var('csv_escape'),
        'encoding': var('encoding'), 'excel_sheets': var('excel_sheets')}} -%}
    {%- set answer = fromjson(run_query("select segkit_read_input(" ~ sql_string(tojson(request)) ~ ")")
                              .columns[0].values()[0]) -%}
    {%- if answer.get('error') -%}
        {{ exceptions.raise_compiler_error('segkit: ' ~ answer['error']) }}
    {%- endif -%}
    {{ return({'kind': answer['kind'], 'relation': answer['reader']}) }}
{%- endmacro %}

{#- The kind a path's name says, in any case: before the files are looked at (parsing), and on Spark. -#}
{% macro input_kind_by_name(path) -%}
    {%- set name = path | lower -%}
    {%- if name.endswith(('.parquet', '.parq', '.pq')) -%}
        {{ return('parquet') }}
    {%- elif name.endswith(('.xlsx', '.xlsm', '.xlsb', '.xls', '.ods')) -%}
        {{ return('workbook') }}
    {%- endif -%}
    {{ return('csv') }}
{%- endmacro %}
