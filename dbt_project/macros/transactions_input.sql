{#- The input as something to select from, and its kind: 'csv', 'parquet' or 'workbook' for files (var
    transactions_path), 'relation' for a table or view (var transactions_relation, which wins when set). The one
    place that knows how the input is read: staging selects from it, and the checks and the quality gate read it.
    With `error`, the input cannot be read, and why (check: files; a relation is checked whenever dbt executes). -#}
{% macro transactions_input(check=false) -%}
    {%- if var('transactions_relation') -%}
        {{ return(transactions_relation_input()) }}
    {%- endif -%}
    {{ return(adapter.dispatch('transactions_input', 'segkit')(check)) }}
{%- endmacro %}

{#- The var names a relation: a host's "{{ ref('orders') }}" or "{{ source('shop', 'orders') }}" (dbt renders
    the var in the model that reads it, so the model depends on it), or a name: table, schema.table or
    database.schema.table, where a missing schema or database is the target's. Each part is quoted again here (a
    part may not hold a double quote), so the var reaches SQL only as identifiers. -#}
{% macro transactions_relation_input() -%}
    {%- set name = var('transactions_relation') | string | trim -%}
    {%- set part = '"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*' -%}
    {%- if not modules.re.fullmatch('(' ~ part ~ ')(?:[.](' ~ part ~ ')){0,2}', name) -%}
        {{ return({'kind': 'relation', 'relation': none, 'error': "the var transactions_relation must name a table or "
            ~ "view: \"{{ ref('your_project', 'orders') }}\", \"{{ source('shop', 'orders') }}\", orders, or "
            ~ "schema.orders; got '"
            ~ name ~ "'."}) }}
    {%- endif -%}
    {%- set parts = [] -%}
    {%- for found in modules.re.findall(part, name) -%}
        {%- do parts.append(found[1:-1] if found.startswith('"') else found) -%}
    {%- endfor -%}
    {%- set parts = [target.database, target.schema][:3 - parts | length] + parts -%}
    {%- set relation = api.Relation.create(database=parts[0], schema=parts[1], identifier=parts[2]) -%}
    {%- if execute and adapter.get_relation(database=parts[0], schema=parts[1], identifier=parts[2]) is none -%}
        {{ return({'kind': 'relation', 'relation': relation, 'error': "the var transactions_relation names "
            ~ relation ~ ", which is not in the database. Point it at your transactions: a model or source of "
            ~ "your project (\"{{ ref('your_project', 'orders') }}\") or a table (schema.orders), and build that first."}) }}
    {%- endif -%}
    {{ return({'kind': 'relation', 'relation': relation}) }}
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
        {{ return({'kind': none, 'relation': relation, 'error': "dbt's DuckDB connection has no segkit_read_input: "
            ~ "list segkit's reader among the plugins of the target in profiles.yml (plugins: - module: "
            ~ "segkit.reader), as the repository's profiles.yml does, or read a table with the var "
            ~ "transactions_relation."}) }}
    {%- endif -%}
    {%- set request = {'check': check, 'settings': {
        'path': var('transactions_path'), 'columns': var('columns'), 'database': target.path,
        'delimiter': var('csv_delimiter'), 'quote': var('csv_quote'), 'escape': var('csv_escape'),
        'encoding': var('encoding'), 'excel_sheets': var('excel_sheets')}} -%}
    {%- set answer = fromjson(run_query("select segkit_read_input(" ~ sql_string(tojson(request)) ~ ")")
                              .columns[0].values()[0]) -%}
    {%- if answer.get('error') and check -%}
        {{ return({'kind': answer.get('kind'), 'relation': relation, 'error': answer['error']}) }}
    {%- elif answer.get('error') -%}
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
