-- A host model that has nothing to do with segkit: `dbt build --select customer_orders` runs no segkit check.
select customer_number, count(distinct order_number) as orders
from {{ ref('stg_transactions') }}
group by customer_number
