{#- Run at the start of every dbt invocation: stop with a plain message, before any model runs, when the
    configured input is missing, empty, or lacks a mapped column. -#}
{% macro validate_transactions_input() %}
    {%- if execute and flags.WHICH in ('build', 'run', 'test', 'seed') -%}
        {%- set path = var('transactions_path') -%}
        {%- set files = run_query("select count(*) from glob('" ~ path ~ "')").columns[0].values()[0] -%}
        {%- if files == 0 -%}
            {{ exceptions.raise_compiler_error(
                "segkit: no input file matches transactions_path '" ~ path ~ "' (relative to the repository root). "
                ~ "Set the var to your CSV or Parquet file or glob, e.g. --vars '{transactions_path: data/orders.csv}'.") }}
        {%- endif -%}
        {%- set relation = source('raw', 'transactions') -%}
        {%- set described = run_query("describe select * from " ~ relation) -%}
        {%- set found = described.columns[0].values() | list -%}
        {%- set columns = var('columns') -%}
        {%- for name, source_column in columns.items() if source_column and source_column not in found -%}
            {{ exceptions.raise_compiler_error(
                "segkit: the input has no column '" ~ source_column ~ "' (mapped to " ~ name ~ "). "
                ~ "Columns found: " ~ (found | join(', ')) ~ ". Fix the mapping in the var 'columns'.") }}
        {%- endfor -%}
        {%- for required in ['customer_id', 'order_date'] if not columns.get(required) -%}
            {{ exceptions.raise_compiler_error("segkit: the var 'columns' must map " ~ required ~ ".") }}
        {%- endfor -%}
        {%- if not columns.get('line_amount') and not (columns.get('quantity') and columns.get('unit_price')) -%}
            {{ exceptions.raise_compiler_error(
                "segkit: the var 'columns' must map either line_amount, or both quantity and unit_price.") }}
        {%- endif -%}
        {%- set rows = run_query("select count(*) from " ~ relation).columns[0].values()[0] -%}
        {%- if rows == 0 -%}
            {{ exceptions.raise_compiler_error(
                "segkit: the input '" ~ path ~ "' has a header but no rows. Point transactions_path at data.") }}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}
