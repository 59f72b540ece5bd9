with source as (
    select * from {{ source('segkit', 'segment_assignment_history') }}
)

select * from source
