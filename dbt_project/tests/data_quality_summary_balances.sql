-- Nothing is lost silently: rows kept plus rows rejected for every reason equal the rows read.
with summary as (
    select * from {{ ref('data_quality_summary') }}
),

totals as (
    select
        sum(case when reason = 'rows_read' then row_count end) as rows_read,
        sum(case when reason <> 'rows_read' then row_count end) as rows_accounted_for
    from summary
)

select * from totals where rows_read <> rows_accounted_for
