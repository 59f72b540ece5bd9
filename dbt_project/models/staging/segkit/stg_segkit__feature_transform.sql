with source as (
    select * from {{ source('segkit', 'feature_transform') }}
)

select * from source
