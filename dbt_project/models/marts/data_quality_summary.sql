{#- Rows read, kept, and rejected per reason (every reason listed, zero when none): kept + rejected = read.
    Rows read are counted on staging, independently of cleaning, so a line lost in between would show. The
    other counts come from int_lines_aggregated_to_customers, which applies the rules of int_lines_classified
    to whole customers: after_analysis_date to lines that passed the checks but are dated on or after the
    analysis date, return_without_purchase to the other such lines of a customer without a purchase. -#}
with lines as (
    select * from {{ ref('stg_raw__lines') }}
),

lines_by_customer as (
    select * from {{ ref('int_lines_aggregated_to_customers') }}
),

reasons as (
    select * from {{ ref('rejection_reasons') }}
),

rows_read as (
    select count(*) as row_count from lines
),

rows_per_reason as (
    select
        case
            when rejection_reason is not null then rejection_reason
            when first_purchase_date is null then 'return_without_purchase'
            else 'rows_kept'
        end as reason,
        sum(case when rejection_reason is null then lines_in_window else line_count end) as row_count
    from lines_by_customer
    group by 1
    union all
    select
        'after_analysis_date' as reason,
        sum(line_count - lines_in_window) as row_count
    from lines_by_customer
    where rejection_reason is null
),

summary_rows as (
    select
        'rows_read' as reason,
        0 as check_order,
        row_count,
        'Every line in the input files.' as description
    from rows_read
    union all
    select
        'rows_kept' as reason,
        100 as check_order,
        coalesce((select row_count from rows_per_reason where reason = 'rows_kept'), 0) as row_count,
        'Lines used for features: purchases, and returns kept apart as returns.' as description
    union all
    select
        reasons.reason,
        reasons.check_order,
        coalesce(rows_per_reason.row_count, 0) as row_count,
        reasons.description
    from reasons
    left join rows_per_reason on reasons.reason = rows_per_reason.reason
),

summary as (
    select
        summary_rows.reason,
        summary_rows.description,
        cast(summary_rows.check_order as integer) as check_order,
        cast(summary_rows.row_count as bigint) as row_count,
        summary_rows.row_count / nullif(rows_read.row_count, 0) as share_of_rows_read
    from summary_rows
    cross join rows_read
)

select * from summary
