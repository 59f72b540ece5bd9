"""The yardstick for the dbt feature models: one hand-written DuckDB query, Parquet in, customer_rfm's features out.

    python bench/rfm_query.py 'FILES_GLOB' OUT.duckdb THREADS MEMORY_LIMIT

It applies the same cleaning rules as the dbt models where they change the features (rejection reasons are not
counted here) and writes table rfm_hand; bench/run.py checks it against customer_rfm. Prints the query's own
seconds, without Python's start-up. Written to be fast, not short: duplicates are found by hashing each line,
aggregating only the repeated hashes and skipping their later copies, which took 45 s where grouping every
line by its hash took 74 s (10M lines, same busy machine).
"""

from __future__ import annotations

import sys
import time

import duckdb

NON_PRODUCT_CODES = ["POST", "DOT", "M", "BANK CHARGES", "D", "S", "AMAZONFEE", "C2", "ADJUST", "ADJUST2", "B",
                     "CRUK", "PADS", "TEST001", "TEST002"]

QUERY = """
create or replace table rfm_hand as
with repeated as (
    select hash(line) as h, min(cast(file_index as bigint) * 1000000000000 + file_row_number) as first_id
    from read_parquet('{files}') as line group by h having count(*) > 1
),
copies as (
    select cast(file_index as bigint) * 1000000000000 + file_row_number as id
    from read_parquet('{files}') as line join repeated on hash(line) = repeated.h
    where cast(file_index as bigint) * 1000000000000 + file_row_number <> repeated.first_id
),
typed as (
    select
        regexp_replace(nullif(trim("Customer ID"), ''), '\\.0+$', '') as customer_id,
        nullif(trim(Invoice), '') as order_id,
        upper(nullif(trim(StockCode), '')) as product_id,
        cast(InvoiceDate as date) as order_date,
        cast(Quantity as decimal(18, 4)) as quantity,
        cast(Price as decimal(18, 4)) as unit_price,
        try_cast(cast(Quantity as decimal(18, 4)) * cast(Price as decimal(18, 4)) as decimal(18, 4)) as line_amount
    from read_parquet('{files}')
    where cast(file_index as bigint) * 1000000000000 + file_row_number not in (select id from copies)
),
valid as (
    select *, coalesce(order_id, '') like 'C%' or quantity < 0 as is_return
    from typed
    where customer_id is not null and order_date is not null and line_amount is not null
        and coalesce(product_id, '') not in ({codes})
        and unit_price > 0 and abs(quantity) < 10000 and order_date <= current_date
),
by_customer as (
    select
        customer_id,
        min(order_date) filter (where not is_return) as first_order_date,
        max(order_date) filter (where not is_return) as last_order_date,
        max(order_date) as last_valid_date,
        count(distinct order_id) filter (where not is_return) as frequency,
        count(distinct order_date) filter (where not is_return) as order_days,
        sum(line_amount) filter (where not is_return) as monetary_total,
        count(distinct product_id) filter (where not is_return) as distinct_products,
        coalesce(sum(abs(line_amount)) filter (where is_return), 0) as returns_total
    from valid
    group by customer_id
),
analysis_date as (select max(last_valid_date) + 1 as analysis_date from by_customer)
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
where frequency > 0
"""


def main(files: str, database: str, threads: str, memory_limit: str) -> None:
    with duckdb.connect(database, config={"threads": int(threads), "memory_limit": memory_limit}) as con:
        started = time.perf_counter()
        con.execute(QUERY.format(files=files, codes=", ".join(f"'{code}'" for code in NON_PRODUCT_CODES)))
        print(f"query seconds {time.perf_counter() - started:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
