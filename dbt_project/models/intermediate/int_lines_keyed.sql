{#- Every line, narrow: what counting lines per customer needs, computed once per build (in memory, by
    int_lines_aggregated_to_customers). Orders, products and customers are reduced to 64-bit hash keys:
    grouping by one narrow number instead of text took a third off the time at 10 and 100 million lines
    (bench/README.md); customer_keys_are_unique guards against two customers sharing a key. -#}
with lines as (
    select * from {{ ref('int_lines_screened') }}
),

lines_keyed as (
    select
        line_id,
        line_fingerprint,
        customer_id,
        {{ hash_key('customer_id') }} as customer_key,
        {{ hash_key('order_key') }} as order_hash,
        {{ hash_key('product_id') }} as product_hash,
        order_date,
        line_amount,
        is_return,
        rejection_reason
    from lines
)

select * from lines_keyed
