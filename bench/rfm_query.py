"""The yardstick for the dbt feature models: one hand-written DuckDB query, Parquet in, customer_rfm's features out.

    python bench/rfm_query.py 'FILES_GLOB' OUT.duckdb THREADS MEMORY_LIMIT

It applies the same cleaning rules as the dbt models where they change the features (rejection reasons are not
counted here) and writes table rfm_hand; bench/run.py checks it against customer_rfm. Prints the query's own
seconds, without Python's start-up.
"""

from __future__ import annotations

import sys
import time

import duckdb

NON_PRODUCT_CODES = ["POST", "DOT", "M", "BANK CHARGES", "D", "S", "AMAZONFEE", "C2", "ADJUST", "ADJUST2", "B",
                     "CRUK", "PADS", "TEST001", "TEST002"]

QUERY = """
create or replace table rfm_hand as
with lines as (
    -- Exact duplicates as the models find them: equal hashes of every column, one line kept.
    select
        any_value("Customer ID") as customer_id, any_value(Invoice) as invoice,
        any_value(StockCode) as stock_code, any_value(InvoiceDate) as ordered_at,
        any_value(Quantity) as quantity, any_value(Price) as price
    from read_parquet('{files}', union_by_name = true) as line
    group by hash(line)
),
typed as (
    select
        regexp_replace(nullif(trim(customer_id), ''), '\\.0+$', '') as customer_id,
        nullif(trim(invoice), '') as order_id,
        upper(nullif(trim(stock_code), '')) as product_id,
        cast(ordered_at as date) as order_date,
        cast(quantity as decimal(18, 4)) as quantity,
        cast(price as decimal(18, 4)) as unit_price,
        cast(cast(quantity as decimal(18, 4)) * cast(price as decimal(18, 4)) as decimal(18, 4)) as line_amount
    from lines
),
valid as (
    select *, coalesce(order_id, '') like 'C%' or quantity < 0 as is_return
    from typed
    where customer_id is not null and order_date is not null and line_amount is not null
        and coalesce(product_id, '') not in ({codes})
        and unit_price > 0 and abs(quantity) < 10000 and order_date <= current_date
),
analysis_date as (
    select max(order_date) + 1 as analysis_date from valid
),
by_customer as (
    select
        customer_id,
        min(order_date) filter (where not is_return) as first_order_date,
        max(order_date) filter (where not is_return) as last_order_date,
        count(distinct order_id) filter (where not is_return) as frequency,
        count(distinct order_date) filter (where not is_return) as order_days,
        sum(line_amount) filter (where not is_return) as monetary_total,
        count(distinct product_id) filter (where not is_return) as distinct_products,
        coalesce(sum(abs(line_amount)) filter (where is_return), 0) as returns_total
    from valid
    group by customer_id
    having count(*) filter (where not is_return) > 0
)
select
    customer_id,
    cast(analysis_date - last_order_date as integer) as recency_days,
    cast(analysis_date - first_order_date as integer) as tenure_days,
    cast(frequency as integer) as frequency,
    cast(monetary_total as decimal(18, 2)) as monetary_total,
    cast(monetary_total / frequency as decimal(18, 2)) as avg_order_value,
    case when order_days > 1 then (last_order_date - first_order_date) / (order_days - 1) end
        as avg_days_between_orders,
    cast(returns_total as decimal(18, 2)) as returns_total,
    cast(returns_total / monetary_total as double) as return_rate,
    cast(distinct_products as integer) as distinct_products,
    cast(null as double) as top_category_share,
    first_order_date,
    last_order_date,
    analysis_date
from by_customer cross join analysis_date
"""


def main(files: str, database: str, threads: str, memory_limit: str) -> None:
    with duckdb.connect(database, config={"threads": int(threads), "memory_limit": memory_limit}) as con:
        started = time.perf_counter()
        con.execute(QUERY.format(files=files, codes=", ".join(f"'{code}'" for code in NON_PRODUCT_CODES)))
        print(f"query seconds {time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
