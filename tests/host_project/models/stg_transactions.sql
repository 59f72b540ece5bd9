-- The host's own stg_transactions: segkit's models must not collide with it.
select order_number, customer_number, units * unit_price as amount
from {{ ref('orders') }}
