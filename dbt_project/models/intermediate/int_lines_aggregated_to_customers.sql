{#- One pass over the lines (int_lines_keyed): one row per customer and check result (rejection_reason null for lines
    that passed the checks; customer_id null for lines without one). It holds what the later models need, so none of
    them reads every line again: the lines per check result, the dates behind the analysis date and the
    return_without_purchase rule, and the sums and distinct counts behind the features. -#}
{%- set analysis_date = var('analysis_date') -%}
{%- set group_columns = ['customer_key', 'product_hash', 'is_return', 'rejection_reason', 'is_in_window'] -%}
{%- set incomplete_lines -%}
    count(case
        when lines.rejection_reason is null
            and (lines.customer_key is null or lines.order_hash is null or lines.order_date is null
                or lines.line_amount is null)
        then 1
    end)
{%- endset -%}

-- The input is read once, here: the narrow lines are computed once and kept in memory for the queries below, which
-- costs less than writing them to a table (bench/README.md). is_in_window: passed the checks and dated before the
-- analysis date. The default analysis date follows the last line that passed, so only a set analysis_date leaves
-- lines out here (int_analysis_date_resolved).
with lines as {{ materialized_cte() }} (
    select
        *,
        rejection_reason is null
        {%- if analysis_date %} and order_date < cast({{ sql_string(analysis_date) }} as date){% endif %}
            as is_in_window
    from {{ ref('int_lines_keyed') }}
),

-- Duplicates are found without an aggregate over every fingerprint. Exact copies share every column, so they meet
-- in the groups that distinct products needs anyway: a group whose smallest fingerprint is its largest is n copies
-- of one line, a group of two different fingerprints holds none, and only groups of three or more lines with two or
-- more fingerprints (a few percent of the lines) are counted fingerprint by fingerprint. unparseable and
-- missing_customer_id are checked before duplicate: their copies keep the reason, and are counted apart.
line_groups as (
    select
        {{ group_columns | join(', ') }},
        count(*) as line_count,
        min(line_fingerprint) as first_fingerprint,
        max(line_fingerprint) as last_fingerprint,
        sum(abs(line_amount)) as amount_total,
        min(abs(line_amount)) as one_amount,
        {{ incomplete_lines }} as incomplete_lines
    from lines
    where rejection_reason is null or rejection_reason not in ('unparseable', 'missing_customer_id')
    group by {{ group_columns | join(', ') }}
),

mixed_groups as (
    select {{ group_columns | join(', ') }}
    from line_groups
    where line_count >= 3 and first_fingerprint <> last_fingerprint
),

fingerprints_of_mixed_groups as (
    select
        {%- for column in group_columns %}
        lines.{{ column }},
        {%- endfor %}
        count(*) as line_count,
        {{ incomplete_lines }} as incomplete_lines,
        min(abs(lines.line_amount)) as line_amount
    from lines
    inner join mixed_groups
        on {% for column in group_columns -%}
        lines.{{ column }} is not distinct from mixed_groups.{{ column }}{{ ' and ' if not loop.last }}
        {%- endfor %}
    group by {% for column in group_columns %}lines.{{ column }}, {% endfor %}lines.line_fingerprint
),

-- Per group, the lines kept (the first copy of each line) and their value, returns as a positive amount.
groups_kept as (
    select
        {{ group_columns | join(', ') }},
        line_count,
        incomplete_lines,
        case when first_fingerprint = last_fingerprint then 1 else line_count end as kept_lines,
        case when first_fingerprint = last_fingerprint then one_amount else amount_total end as kept_total
    from line_groups
    where line_count < 3 or first_fingerprint = last_fingerprint
    union all
    select
        {{ group_columns | join(', ') }},
        sum(line_count) as line_count,
        sum(incomplete_lines) as incomplete_lines,
        count(*) as kept_lines,
        sum(line_amount) as kept_total
    from fingerprints_of_mixed_groups
    group by {{ group_columns | join(', ') }}
),

-- Copies share their order and date, so orders and order days need no deduplication: one aggregate of the lines
-- that passed gives both distinct counts and the dates.
orders as (
    select customer_key, order_hash, order_date, is_return, is_in_window
    from lines
    where rejection_reason is null
    group by customer_key, order_hash, order_date, is_return, is_in_window
),

orders_by_customer as (
    select
        customer_key,
        max(order_date) as last_line_date,
        min(case when is_in_window and not is_return then order_date end) as first_purchase_date,
        max(case when is_in_window and not is_return then order_date end) as last_purchase_date,
        count(distinct case when is_in_window and not is_return then order_hash end) as orders,
        count(distinct case when is_in_window and not is_return then order_date end) as order_days
    from orders
    group by customer_key
),

groups_by_customer as (
    select
        customer_key,
        rejection_reason,
        sum(kept_lines) as line_count,
        sum(line_count - kept_lines) as copies,
        sum(case when is_in_window then kept_lines else 0 end) as lines_in_window,
        sum(incomplete_lines) as incomplete_lines,
        sum(case when is_in_window and not is_return then kept_total end) as monetary_total,
        count(case when is_in_window and not is_return then product_hash end) as distinct_products,
        sum(case when is_in_window and is_return then kept_total end) as returns_total
    from groups_kept
    group by customer_key, rejection_reason
),

rejected_by_customer as (
    select customer_key, rejection_reason, line_count
    from groups_by_customer
    where rejection_reason is not null
    union all
    select customer_key, 'duplicate' as rejection_reason, sum(copies) as line_count
    from groups_by_customer
    group by customer_key
    having sum(copies) > 0
    union all
    select customer_key, rejection_reason, count(*) as line_count
    from lines
    where rejection_reason in ('unparseable', 'missing_customer_id')
    group by customer_key, rejection_reason
),

lines_by_customer as (
    select
        passed.customer_key,
        passed.rejection_reason,
        passed.line_count,
        passed.lines_in_window,
        passed.incomplete_lines,
        orders_by_customer.last_line_date,
        orders_by_customer.first_purchase_date,
        orders_by_customer.last_purchase_date,
        orders_by_customer.orders,
        orders_by_customer.order_days,
        passed.monetary_total,
        passed.distinct_products,
        passed.returns_total
    from groups_by_customer as passed
    left join orders_by_customer on passed.customer_key = orders_by_customer.customer_key
    where passed.rejection_reason is null
    union all
    select
        customer_key,
        rejection_reason,
        line_count,
        0 as lines_in_window,
        0 as incomplete_lines,
        cast(null as date) as last_line_date,
        cast(null as date) as first_purchase_date,
        cast(null as date) as last_purchase_date,
        0 as orders,
        0 as order_days,
        null as monetary_total,
        0 as distinct_products,
        null as returns_total
    from rejected_by_customer
),

-- Each customer's id once per key; two ids sharing a key would give two rows, which customer_keys_are_unique finds.
customer_ids as (
    select customer_key, customer_id
    from lines
    where customer_key is not null
    group by customer_key, customer_id
),

lines_with_customer_ids as (
    select
        customer_ids.customer_id,
        lines_by_customer.rejection_reason,
        cast(lines_by_customer.line_count as bigint) as line_count,
        cast(lines_by_customer.lines_in_window as bigint) as lines_in_window,
        cast(lines_by_customer.incomplete_lines as bigint) as incomplete_lines,
        lines_by_customer.last_line_date,
        lines_by_customer.first_purchase_date,
        lines_by_customer.last_purchase_date,
        cast(coalesce(lines_by_customer.orders, 0) as bigint) as orders,
        cast(coalesce(lines_by_customer.order_days, 0) as bigint) as order_days,
        lines_by_customer.monetary_total,
        cast(coalesce(lines_by_customer.distinct_products, 0) as bigint) as distinct_products,
        lines_by_customer.returns_total
    from lines_by_customer
    left join customer_ids on lines_by_customer.customer_key = customer_ids.customer_key
)

select * from lines_with_customer_ids
