with source as (
    select * from {{ source('segkit', 'segment_centroids') }}
)

select * from source
