-- The host's order lines, typed: a table segkit reads through the var transactions_relation. The test copies
-- segkit's demo file to data/orders.csv.gz (run dbt from this folder).
select
    "Invoice" as order_number,
    "StockCode" as sku,
    try_cast("Quantity" as integer) as units,
    try_strptime("InvoiceDate", '%Y-%m-%d %H:%M:%S') as ordered_at,
    try_cast("Price" as double) as unit_price,
    "Customer ID" as customer_number
from read_csv('data/orders.csv.gz', all_varchar = true)
