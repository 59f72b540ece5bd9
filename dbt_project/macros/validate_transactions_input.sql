{#- Run at the start of every dbt invocation: stop with a plain message, before any model runs, when a var is
    unusable, the configured input is missing, empty or lacks a mapped column, or its dates cannot be read. -#}
{% macro validate_transactions_input() %}
    {%- if execute and flags.WHICH in ('build', 'run', 'test', 'seed') -%}
        {{ validate_vars() }}
        {%- set path = var('transactions_path') -%}
        {%- set files = count_input_files(path) -%}
        {%- if files == 0 -%}
            {{ exceptions.raise_compiler_error(
                "segkit: no input file matches transactions_path '" ~ path ~ "' (relative to the repository root). "
                ~ "Set the var to your CSV or Parquet file or glob, e.g. --vars '{transactions_path: data/orders.csv}'.") }}
        {%- endif -%}
        {%- do register_transactions_source() -%}
        {%- set relation = source('raw', 'transactions') -%}
        {%- set rows = run_query("select count(*) from (select 1 from " ~ relation ~ " limit 1)").columns[0].values()[0] -%}
        {%- if rows == 0 -%}
            {{ exceptions.raise_compiler_error(
                "segkit: the input '" ~ path ~ "' has no data rows (it is empty or holds only a header). "
                ~ "Point transactions_path at your transactions.") }}
        {%- endif -%}
        {%- set described = run_query("describe select * from " ~ relation) -%}
        {%- set found = described.columns[0].values() | list -%}
        {%- set columns = var('columns') -%}
        {%- for name, source_column in columns.items() if source_column and source_column not in found -%}
            {{ exceptions.raise_compiler_error(
                "segkit: the input '" ~ path ~ "' has no column '" ~ source_column ~ "' (mapped to " ~ name ~ "). "
                ~ "Columns found: " ~ (found | join(', ')) ~ ". Fix the mapping in the var 'columns'"
                ~ (", or the file's delimiter: it was read as a single column" if found | length == 1 else "")
                ~ ".") }}
        {%- endfor -%}
        {%- set date_column = sql_identifier(columns['order_date']) -%}
        {%- set parsed = run_query(
            "select count(*), count(" ~ parse_timestamp("trim(cast(" ~ date_column ~ " as " ~ dbt.type_string() ~ "))") ~ ") from ("
            ~ "select " ~ date_column ~ " from " ~ relation ~ " limit 10000)").rows[0] -%}
        {%- if parsed[1] == 0 -%}
            {{ exceptions.raise_compiler_error(
                "segkit: none of the first " ~ parsed[0] ~ " order dates in column '" ~ columns['order_date']
                ~ "' of '" ~ path ~ "' parse with order_date_format '" ~ var('order_date_format') ~ "'. Set the var "
                ~ "order_date_format to your dates' strptime format, e.g. '%d/%m/%Y %H:%M' or '%Y%m%d'.") }}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}

{#- Vars that reach SQL as values are quoted there; these checks make a wrong one a message, not a failed query. -#}
{% macro validate_vars() %}
    {{- validate_quality_gate_vars() -}}
    {%- set columns = var('columns') -%}
    {%- if columns is not mapping -%}
        {{ exceptions.raise_compiler_error("segkit: the var 'columns' must map segkit's names to your headers, "
            ~ "e.g. {customer_id: cust, order_date: day, line_amount: amount}.") }}
    {%- endif -%}
    {%- for required in ['customer_id', 'order_date'] if not columns.get(required) -%}
        {{ exceptions.raise_compiler_error("segkit: the var 'columns' must map " ~ required ~ ".") }}
    {%- endfor -%}
    {%- if not columns.get('line_amount') and not (columns.get('quantity') and columns.get('unit_price')) -%}
        {{ exceptions.raise_compiler_error(
            "segkit: the var 'columns' must map either line_amount, or both quantity and unit_price.") }}
    {%- endif -%}
    {%- set quantity = var('extreme_quantity') | string -%}
    {%- if not modules.re.fullmatch('[0-9]+(\.[0-9]+)?', quantity) -%}
        {{ exceptions.raise_compiler_error("segkit: the var extreme_quantity must be a positive number of units, "
            ~ "e.g. 10000; got '" ~ quantity ~ "'.") }}
    {%- endif -%}
    {%- for name in ['extraction_date', 'analysis_date'] if var(name) -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', var(name) | string) -%}
            {{ exceptions.raise_compiler_error("segkit: the var " ~ name ~ " must be a date written YYYY-MM-DD, "
                ~ "e.g. 2011-12-10; got '" ~ var(name) ~ "'.") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if var('pseudonymise_customer_ids') and target.type != 'duckdb' -%}
        {{ exceptions.raise_compiler_error(
            "segkit: pseudonymise_customer_ids works on DuckDB only (the keyed pseudonym is a DuckDB function). "
            ~ "On " ~ target.type ~ ", pseudonymise the customer ids in the input files, or build on DuckDB.") }}
    {%- endif -%}
    {%- if var('pseudonymise_customer_ids') and not run_query("select segkit_pseudonym_key_is_set()").columns[0].values()[0] -%}
        {{ exceptions.raise_compiler_error(
            "segkit: the var pseudonymise_customer_ids is on but the environment variable SEGKIT_PSEUDONYM_KEY is "
            ~ "not set. Export the secret key (the same key gives the same pseudonyms), or turn the var off.") }}
    {%- endif -%}
{% endmacro %}
