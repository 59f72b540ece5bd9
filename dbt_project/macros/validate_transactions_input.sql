{#- Run at the start of every dbt invocation: stop with a plain message, before any model runs, when the
    configured input is missing, empty, lacks a mapped column, or has dates the format cannot read. -#}
{% macro validate_transactions_input() %}
    {%- if execute and flags.WHICH in ('build', 'run', 'test', 'seed') -%}
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
        {%- set date_column = adapter.quote(columns['order_date']) -%}
        {%- set parsed = run_query(
            "select count(*), count(" ~ parse_timestamp("trim(cast(" ~ date_column ~ " as " ~ dbt.type_string() ~ "))") ~ ") from ("
            ~ "select " ~ date_column ~ " from " ~ relation ~ " limit 10000)").rows[0] -%}
        {%- if parsed[1] == 0 -%}
            {{ exceptions.raise_compiler_error(
                "segkit: none of the first " ~ parsed[0] ~ " order dates in column '" ~ columns['order_date']
                ~ "' parse with order_date_format '" ~ var('order_date_format') ~ "'. Set the var "
                ~ "order_date_format to your dates' strptime format, e.g. '%d/%m/%Y %H:%M' or '%Y%m%d'.") }}
        {%- endif -%}
    {%- endif -%}
    select 1
{% endmacro %}
