{#- The only model that reads the source. Renames the mapped columns, trims text and casts values; a value that
    is present but does not parse becomes null and sets has_unparseable_value, so cleaning can name the reason.
    Typed columns (Parquet numbers and timestamps) are cast directly, never through text.
    A view where lines are numbered in parallel and reading is cheap (DuckDB on Parquet); elsewhere a table,
    read once: CSV is parsed serially, and Spark numbers lines in a window that should run once. -#}
{{ config(materialized=('view' if target.type == 'duckdb' and input_kind_by_name(var('transactions_path')) == 'parquet'
                        else 'table')) }}
{%- set input = transactions_input() -%}
{%- set types = source_column_types(input) -%}

-- The source is read here directly, not through an import CTE, because DuckDB's Parquet file_index and
-- file_row_number are only visible on the source itself (and stay out of the row fingerprint).
with lines_numbered as (
    select
        {{ input_line_number(input.kind) }} as line_id,
        -- Exact-duplicate detection needs every raw column; a hash keeps free text out of later models.
        {{ row_fingerprint('source') }} as line_fingerprint,
        {{ customer_id(mapped_column('customer_id')) }} as customer_id,
        {{ mapped_column('order_id') }} as order_id,
        upper({{ mapped_column('product_id') }}) as product_id,
        {{ mapped_column('product_category') }} as product_category,
        {%- for name in ['quantity', 'unit_price', 'line_amount'] %}
        {%- if source_column_kind(name, types) == 'number' %}
        {{ sql_identifier(var('columns')[name]) }} as {{ name }}_raw,
        try_cast({{ sql_identifier(var('columns')[name]) }} as decimal(18, 4)) as {{ name }}_parsed,
        {%- else %}
        {{ mapped_column(name) }} as {{ name }}_raw,
        {{ try_cast_number(mapped_column(name)) }} as {{ name }}_parsed,
        {%- endif %}
        {%- endfor %}
        {%- if types.get(var('columns')['order_date']) == 'TIMESTAMP WITH TIME ZONE' %}
        cast({{ utc_timestamp(sql_identifier(var('columns')['order_date'])) }} as date) as order_date
        {%- elif source_column_kind('order_date', types) == 'temporal' %}
        cast({{ sql_identifier(var('columns')['order_date']) }} as date) as order_date
        {%- else %}
        cast({{ parse_timestamp(mapped_column('order_date')) }} as date) as order_date
        {%- endif %}
    from {{ input.relation }} as source
),

lines_with_amounts as (
    select
        line_id,
        line_fingerprint,
        customer_id,
        order_id,
        product_id,
        product_category,
        quantity_parsed as quantity,
        unit_price_parsed as unit_price,
        -- DuckDB multiplies two decimal(18, 4) as decimal(18, 8), which overflows above 10^10, and narrowing a
        -- widened product is 20 times slower; so products far below that take the narrow path, the rest the
        -- wide one, where try_cast makes an absurd product null (unparseable), not a failed build.
        coalesce(
            line_amount_parsed,
            case
                when abs(cast(quantity_parsed as double) * cast(unit_price_parsed as double)) < 1e9
                    then cast(quantity_parsed * unit_price_parsed as decimal(18, 4))
                else try_cast(cast(quantity_parsed as decimal(38, 4)) * unit_price_parsed as decimal(18, 4))
            end
        ) as line_amount,
        order_date,
        (
            (quantity_raw is not null and quantity_parsed is null)
            or (unit_price_raw is not null and unit_price_parsed is null)
            or (line_amount_raw is not null and line_amount_parsed is null)
        ) as has_unparseable_value
    from lines_numbered
)

select * from lines_with_amounts
