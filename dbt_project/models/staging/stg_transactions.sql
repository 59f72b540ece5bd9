{#- The only model that reads the source. Renames the mapped columns, trims text and casts values;
    a value that does not parse becomes null next to its raw text, so cleaning can name the reason. -#}
-- The source is read here directly, not through an import CTE, because DuckDB's Parquet file_index and
-- file_row_number are only visible on the source itself (and stay out of the row fingerprint).
with lines_numbered as (
    select
        {{ input_line_number() }} as transaction_line_id,
        -- Exact-duplicate detection needs every raw column; a hash keeps free text out of later models.
        {{ row_fingerprint('source') }} as line_fingerprint,
        {{ mapped_column('customer_id') }} as customer_id_raw,
        {{ mapped_column('order_id') }} as order_id,
        {{ mapped_column('order_date') }} as order_date_raw,
        {{ mapped_column('quantity') }} as quantity_raw,
        {{ mapped_column('unit_price') }} as unit_price_raw,
        {{ mapped_column('line_amount') }} as line_amount_raw,
        upper({{ mapped_column('product_id') }}) as product_id,
        {{ mapped_column('product_category') }} as product_category
    from {{ source('raw', 'transactions') }} as source
),

lines_typed as (
    select
        transaction_line_id,
        line_fingerprint,
        {{ customer_id('customer_id_raw') }} as customer_id,
        order_id,
        product_id,
        product_category,
        order_date_raw,
        quantity_raw,
        unit_price_raw,
        line_amount_raw,
        {{ try_cast_number('quantity_raw') }} as quantity,
        {{ try_cast_number('unit_price_raw') }} as unit_price,
        {{ try_cast_number('line_amount_raw') }} as line_amount_given,
        {{ parse_timestamp('order_date_raw') }} as ordered_at
    from lines_numbered
),

lines_with_amounts as (
    select
        *,
        -- Wide enough for any quantity times price; an absurd product is then unparseable, not a failed build.
        try_cast(coalesce(line_amount_given, cast(quantity as decimal(38, 4)) * unit_price) as decimal(18, 4))
            as line_amount,
        cast(ordered_at as date) as order_date
    from lines_typed
)

select * from lines_with_amounts
