-- A host model with the name of segkit's staging model: segkit's models must read their own, and both must build.
select order_number, sku, units
from {{ ref('orders') }}
