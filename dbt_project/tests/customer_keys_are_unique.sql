-- int_lines_aggregated_to_customers joins each customer's distinct counts on a 64-bit hash of the customer id. Two
-- customers sharing a key (odds about 7 in 10 million for 5 million customers) would share counts, so the build stops
-- instead.
with lines_by_customer as (
    select * from {{ ref('int_lines_aggregated_to_customers') }}
),

shared_keys as (
    select {{ hash_key('customer_id') }} as customer_key, count(*) as customers
    from lines_by_customer
    where rejection_reason is null
    group by {{ hash_key('customer_id') }}
    having count(*) > 1
)

select * from shared_keys
