"""The yardstick for the dbt feature models: the best DuckDB query we could write that applies the README's cleaning
rules in full, Parquet in, customer_rfm's features and data_quality_summary's reason counts out.

    python bench/rfm_query.py 'FILES_GLOB' OUT.duckdb THREADS MEMORY_LIMIT

It reads the bench's Parquet layout (Online Retail II's columns, typed) with the default vars, so the analysis date
is the day after the last line that passes the checks and no line is after_analysis_date. It writes the tables
rfm_hand (customer_rfm's columns) and reasons_hand (reason, row_count: data_quality_summary's), prints both
counts, and prints the statements' own wall seconds and CPU seconds (user + sys of this process, DuckDB's threads
included), without Python's start-up.

How it stays cheap while doing the models' work (issue 21):
1. One Parquet scan into a narrow temporary table: per line its fingerprint (hash of every column), 64-bit keys
   of customer, order and product, date, amount, return flag and the first failed check other than duplicate.
2. No aggregate over every fingerprint. Exact copies have equal keys and equal checks, so they meet in the
   (customer, product, return, check) aggregate that distinct products needs anyway: a group whose smallest
   fingerprint equals its largest is n copies of one line; a group of two different fingerprints has none; only
   groups of three or more lines with two or more fingerprints are counted fingerprint by fingerprint.
3. One (customer, order, date) aggregate of the purchases gives both frequency and order days.
4. The lines per check come from the same temporary table.
"""

from __future__ import annotations

import resource
import sys
import time

import duckdb

NON_PRODUCT_CODES = ["POST", "DOT", "M", "BANK CHARGES", "D", "S", "AMAZONFEE", "C2", "ADJUST", "ADJUST2", "B",
                     "CRUK", "PADS", "TEST001", "TEST002"]
EXTREME_QUANTITY = 10000

# Check numbers are the seed rejection_reasons' check_order; 0 passes every check. Duplicates (3), lines after the
# analysis date (11) and returns without a purchase (12) are decided later, from the aggregates.
REASONS = ["unparseable", "missing_customer_id", "duplicate", "non_product_code", "zero_or_negative_price",
           "zero_quantity_or_amount", "extreme_quantity", "extreme_amount", "date_before_1900", "future_date",
           "after_analysis_date", "return_without_purchase"]

STATEMENTS = [
    """
create temp table lines as
with typed as (
    select
        hash(line) as fingerprint,
        nullif(regexp_replace(regexp_replace(nfc_normalize("Customer ID"),
            '^[\\pZ\\s\\x{{200b}}\\x{{feff}}]+|[\\pZ\\s\\x{{200b}}\\x{{feff}}]+$', '', 'g'), '\\.0+$', ''), '')
            as customer_id,
        nullif(trim(Invoice), '') as order_id,
        upper(nullif(trim(StockCode), '')) as product_id,
        cast(InvoiceDate as date) as order_date,
        Quantity is not null and try_cast(Quantity as decimal(18, 4)) is null
            or Price is not null and try_cast(Price as decimal(18, 4)) is null as has_unparseable_value,
        try_cast(Quantity as decimal(18, 4)) as quantity,
        try_cast(Price as decimal(18, 4)) as unit_price
    from read_parquet('{files}') as line
),
amounts as (
    select
        *,
        -- The exact decimal product; the double only picks the cheap narrow multiplication where it cannot overflow.
        case
            when abs(cast(quantity as double) * cast(unit_price as double)) < 1e9
                then cast(quantity * unit_price as decimal(18, 4))
            else try_cast(cast(quantity as decimal(38, 4)) * unit_price as decimal(18, 4))
        end as amount
    from typed
)
select
    fingerprint,
    hash(customer_id) as customer_key,
    customer_id,
    hash(coalesce(order_id, customer_id || '|' || cast(order_date as varchar))) as order_key,
    case when product_id is not null then hash(product_id) end as product_key,
    order_date,
    abs(amount) as amount,
    starts_with(coalesce(order_id, ''), 'C') or quantity < 0 or amount < 0 as is_return,
    cast(case
        when has_unparseable_value or order_date is null or amount is null then 1
        when customer_id is null then 2
        when product_id in ({codes}) then 4
        when unit_price <= 0 then 5
        when quantity = 0 or abs(amount) < 0.005 then 6
        when abs(quantity) >= {extreme_quantity} then 7
        when abs(amount) >= 1000000000 then 8
        when order_date < date '1900-01-01' then 9
        when order_date > current_date then 10
        else 0
    end as utinyint) as check_failed
from amounts
""",
    # Unparseable lines and lines without a customer keep their reason even when copied: that check comes first.
    """
create temp table line_groups as
select
    customer_key,
    product_key,
    is_return,
    check_failed,
    count(*) as line_count,
    min(fingerprint) as first_fingerprint,
    max(fingerprint) as last_fingerprint,
    sum(amount) as amount_total,
    min(amount) as one_amount
from lines
where check_failed not in (1, 2)
group by all
""",
    """
create temp table groups_kept as
with mixed_groups as (
    select customer_key, product_key, is_return, check_failed
    from line_groups
    where line_count >= 3 and first_fingerprint <> last_fingerprint
),
fingerprints as (
    select lines.customer_key, lines.product_key, lines.is_return, lines.check_failed, min(lines.amount) as amount
    from lines
    semi join mixed_groups
        on lines.customer_key = mixed_groups.customer_key
        and lines.product_key is not distinct from mixed_groups.product_key
        and lines.is_return = mixed_groups.is_return
        and lines.check_failed = mixed_groups.check_failed
    group by lines.customer_key, lines.product_key, lines.is_return, lines.check_failed, lines.fingerprint
),
mixed_kept as (
    select customer_key, product_key, is_return, check_failed, count(*) as kept_lines, sum(amount) as kept_total
    from fingerprints
    group by all
)
select
    line_groups.customer_key,
    line_groups.product_key,
    line_groups.is_return,
    line_groups.check_failed,
    line_groups.line_count,
    case
        when first_fingerprint = last_fingerprint then 1
        when line_count = 2 then 2
        else mixed_kept.kept_lines
    end as kept_lines,
    case
        when first_fingerprint = last_fingerprint then one_amount
        when line_count = 2 then amount_total
        else mixed_kept.kept_total
    end as kept_total
from line_groups
left join mixed_kept
    on line_groups.customer_key = mixed_kept.customer_key
    and line_groups.product_key is not distinct from mixed_kept.product_key
    and line_groups.is_return = mixed_kept.is_return
    and line_groups.check_failed = mixed_kept.check_failed
""",
    # Copies share their order and date, so the orders and dates need no deduplication.
    """
create temp table customers as
with orders as (
    select customer_id, customer_key, order_key, order_date, is_return
    from lines
    where check_failed = 0
    group by all
),
order_counts as (
    select
        customer_key,
        any_value(customer_id) as customer_id,
        max(order_date) as last_line_date,
        min(order_date) filter (where not is_return) as first_order_date,
        max(order_date) filter (where not is_return) as last_order_date,
        count(distinct order_key) filter (where not is_return) as frequency,
        count(distinct order_date) filter (where not is_return) as order_days
    from orders
    group by customer_key
),
kept as (
    select
        customer_key,
        sum(kept_total) filter (where not is_return) as monetary_total,
        sum(kept_total) filter (where is_return) as returns_total,
        count(product_key) filter (where not is_return) as distinct_products,
        sum(kept_lines) as kept_lines
    from groups_kept
    where check_failed = 0
    group by customer_key
)
select order_counts.*, kept.monetary_total, kept.returns_total, kept.distinct_products, kept.kept_lines
from order_counts
inner join kept on order_counts.customer_key = kept.customer_key
""",
    """
create or replace table rfm_hand as
with analysis_date as (
    select cast(max(last_line_date) + 1 as date) as analysis_date from customers
)
select
    customer_id,
    cast(analysis_date - last_order_date as integer) as recency_days,
    cast(analysis_date - first_order_date as integer) as tenure_days,
    cast(frequency as integer) as frequency,
    cast(monetary_total as decimal(18, 2)) as monetary_total,
    cast(monetary_total / frequency as decimal(18, 2)) as avg_order_value,
    case when order_days > 1 then cast(last_order_date - first_order_date as double) / (order_days - 1) end
        as avg_days_between_orders,
    cast(coalesce(returns_total, 0) as decimal(18, 2)) as returns_total,
    cast(coalesce(returns_total, 0) / monetary_total as double) as return_rate,
    cast(distinct_products as integer) as distinct_products,
    cast(null as double) as top_category_share,
    first_order_date,
    last_order_date,
    analysis_date
from customers
cross join analysis_date
where first_order_date is not null
""",
    # With the default analysis date (the day after the last line that passed), no line is after it.
    """
create or replace table reasons_hand as
with reasons (check_order, reason) as (
    values {reason_rows}
),
per_check as (
    select check_failed, count(*) as line_count from lines group by check_failed
),
copies_per_check as (
    select check_failed, sum(line_count - kept_lines) as copies from groups_kept group by check_failed
),
counted as (
    select 'rows_read' as reason, (select count(*) from lines) as row_count
    union all
    select 'rows_kept', sum(kept_lines) from customers where first_order_date is not null
    union all
    select 'duplicate', sum(copies) from copies_per_check
    union all
    select 'after_analysis_date', 0
    union all
    select 'return_without_purchase', sum(kept_lines) from customers where first_order_date is null
    union all
    select reasons.reason, per_check.line_count - coalesce(copies_per_check.copies, 0)
    from per_check
    inner join reasons on per_check.check_failed = reasons.check_order
    left join copies_per_check on per_check.check_failed = copies_per_check.check_failed
),
every_reason as (
    select reason from reasons union all select 'rows_read' union all select 'rows_kept'
)
select every_reason.reason, cast(coalesce(sum(counted.row_count), 0) as bigint) as row_count
from every_reason
left join counted on every_reason.reason = counted.reason
group by every_reason.reason
""",
]


def main(files: str, database: str, threads: str, memory_limit: str) -> None:
    codes = ", ".join(f"'{code}'" for code in NON_PRODUCT_CODES)
    reason_rows = ", ".join(f"({order}, '{reason}')" for order, reason in enumerate(REASONS, start=1))
    statements = [statement.format(files=files, codes=codes, extreme_quantity=EXTREME_QUANTITY, reason_rows=reason_rows)
                  for statement in STATEMENTS]
    with duckdb.connect(database, config={"threads": int(threads), "memory_limit": memory_limit}) as con:
        con.execute("set enable_progress_bar = false")
        cpu_before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for statement in statements:
            before = resource.getrusage(resource.RUSAGE_SELF)
            con.execute(statement)
            after = resource.getrusage(resource.RUSAGE_SELF)
            print(f"statement {statement.split()[3]} cpu seconds "
                  f"{after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime:.3f}", flush=True)
        seconds, cpu_after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
        for reason, row_count in con.execute("select * from reasons_hand order by reason").fetchall():
            print(f"reason {reason} {row_count}")
        print(f"customers {con.execute('select count(*) from rfm_hand').fetchone()[0]}")
    print(f"query seconds {seconds:.3f}")
    print(f"query cpu seconds {cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
