with source as (
    select * from {{ source('segkit', 'cluster_runs') }}
)

select * from source
