{#- Every customer of customer_rfm assigned to the nearest stored centroid of the latest segkit run, without
    refitting, by the SQL segkit scores with (nearest_segment_sql, in segkit/sql/stored_run.sql): the run's
    transform, then the nearest centroid. Before the first `segkit cluster` the segkit tables do not exist; the
    model then builds an empty table with the same columns, so the very first `dbt build` still works. -#}
{%- set run = latest_stored_run() -%}

with customers as (
    select * from {{ ref('customer_rfm') }}
),

{%- if run %}
-- depends_on: {{ ref('stg_segkit__cluster_runs') }}, {{ ref('stg_segkit__feature_transform') }}

segments as (
    select distinct segment_id, segment_name
    from {{ ref('stg_segkit__segment_centroids') }}
    where run_id = {{ sql_string(run.run_id) }}
),

fitted_customers as (
    select customer_id
    from {{ ref('stg_segkit__segment_assignment_history') }}
    where run_id = {{ sql_string(run.run_id) }}
),

nearest_segments as (
    {{ nearest_segment_sql('customers', run.columns, run.transform, run.centroids, run.segment_ids) }}
),

customers_scored as (
    select
        customers.customer_id,
        cast({{ sql_string(run.run_id) }} as {{ dbt.type_string() }}) as run_id,
        segments.segment_name,
        cast('scored' as {{ dbt.type_string() }}) as assignment_method,
        nearest_segments.segment_id,
        nearest_segments.distance_to_centroid,
        fitted_customers.customer_id is not null as is_in_fitted_run,
        customers.analysis_date
    from customers
    left join nearest_segments on customers.customer_id = nearest_segments.customer_id
    left join segments on nearest_segments.segment_id = segments.segment_id
    left join fitted_customers on customers.customer_id = fitted_customers.customer_id
)

{%- else %}

customers_scored as (
    -- No segkit run yet: an empty, correctly typed table. Run `segkit cluster`, then `dbt build` again.
    select
        customer_id,
        cast(null as {{ dbt.type_string() }}) as run_id,
        cast(null as {{ dbt.type_string() }}) as segment_name,
        cast('scored' as {{ dbt.type_string() }}) as assignment_method,
        cast(null as integer) as segment_id,
        cast(null as double) as distance_to_centroid,
        false as is_in_fitted_run,
        analysis_date
    from customers
    where 1 = 0
)

{%- endif %}

select * from customers_scored
