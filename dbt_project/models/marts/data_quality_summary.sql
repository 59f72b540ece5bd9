{#- Rows read, kept, and rejected per reason (every reason listed, zero when none): kept + rejected = read.
    Rows read are counted on staging, independently of cleaning, so a line lost in between would show. -#}
with transactions as (
    select * from {{ ref('stg_transactions') }}
),

lines as (
    select * from {{ ref('int_transaction_lines_classified') }}
),

reasons as (
    select * from {{ ref('rejection_reasons') }}
),

rows_read as (
    select count(*) as row_count from transactions
),

rows_per_reason as (
    select
        coalesce(rejection_reason, 'rows_kept') as reason,
        count(*) as row_count
    from lines
    group by 1
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
