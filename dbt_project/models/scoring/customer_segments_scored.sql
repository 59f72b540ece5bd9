{#- Every customer of customer_rfm assigned to the nearest stored centroid of the latest segkit run,
    without refitting: the run's stored transform (table feature_transform) is applied here, in SQL,
    with the contract's formula. Before the first `segkit cluster` the segkit tables do not exist; the
    model then builds an empty table with the same columns, so the very first `dbt build` still works. -#}
{%- set state = namespace(ready=true, features=[], relations={}) -%}
{%- for name in ['cluster_runs', 'feature_transform', 'segment_centroids', 'segment_assignment_history'] -%}
    {%- set relation = adapter.get_relation(database=this.database, schema=target.schema, identifier=name)
        if execute else none -%}
    {%- if execute and relation is none -%}
        {%- set state.ready = false -%}
    {%- endif -%}
    {%- do state.relations.update({name: relation}) -%}
{%- endfor -%}
{%- if execute and state.ready -%}
    {#- The latest run's features, so only those columns are read (in the transform's order). -#}
    {%- set feature_query -%}
        select feature
        from {{ state.relations['feature_transform'] }}
        where run_id = (
            select run_id from {{ state.relations['cluster_runs'] }} order by created_at desc, run_id desc limit 1
        )
        order by feature_order
    {%- endset -%}
    {%- set state.features = run_query(feature_query).columns[0].values() | list -%}
    {%- if state.features | length == 0 -%}
        {%- set state.ready = false -%}
    {%- endif -%}
{%- endif -%}

with customers as (
    select * from {{ ref('customer_rfm') }}
),

{%- if state.ready %}

runs as (
    select * from {{ ref('stg_segkit__cluster_runs') }}
),

transforms as (
    select * from {{ ref('stg_segkit__feature_transform') }}
),

centroids as (
    select * from {{ ref('stg_segkit__segment_centroids') }}
),

assignment_history as (
    select * from {{ ref('stg_segkit__segment_assignment_history') }}
),

latest_run as (
    select run_id
    from runs
    order by created_at desc, run_id desc
    limit 1
),

latest_transform as (
    select transforms.*
    from transforms
    inner join latest_run on transforms.run_id = latest_run.run_id
),

latest_centroids as (
    select centroids.*
    from centroids
    inner join latest_run on centroids.run_id = latest_run.run_id
),

customer_feature_values as (
    {%- for feature in state.features %}
    select
        customer_id,
        '{{ feature }}' as feature,
        cast({{ adapter.quote(feature) }} as double) as feature_value
    from customers
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

customer_features_scaled as (
    select
        customer_feature_values.customer_id,
        customer_feature_values.feature,
        (
            least(
                greatest(
                    case
                        when latest_transform.log_transform then ln(1 + customer_feature_values.feature_value)
                        else customer_feature_values.feature_value
                    end,
                    latest_transform.clip_lower
                ),
                latest_transform.clip_upper
            ) - latest_transform.center
        ) / latest_transform.scale as value_scaled
    from customer_feature_values
    inner join latest_transform on customer_feature_values.feature = latest_transform.feature
),

squared_distances as (
    select
        customer_features_scaled.customer_id,
        latest_centroids.run_id,
        latest_centroids.segment_id,
        latest_centroids.segment_name,
        -- A customer with a missing feature value is not scored (the model was fitted on complete rows).
        case
            when count(customer_features_scaled.value_scaled) = count(*) then sum(
                (customer_features_scaled.value_scaled - latest_centroids.value_scaled)
                * (customer_features_scaled.value_scaled - latest_centroids.value_scaled)
            )
        end as squared_distance
    from customer_features_scaled
    inner join latest_centroids on customer_features_scaled.feature = latest_centroids.feature
    group by
        customer_features_scaled.customer_id,
        latest_centroids.run_id,
        latest_centroids.segment_id,
        latest_centroids.segment_name
),

nearest_centroids as (
    select
        *,
        -- Ties go to the lowest segment id, as in segkit's own assignment.
        row_number() over (
            partition by customer_id order by squared_distance asc nulls last, segment_id asc
        ) as distance_rank
    from squared_distances
),

customers_scored as (
    select
        customers.customer_id,
        latest_run.run_id,
        case when nearest.squared_distance is not null then nearest.segment_name end as segment_name,
        cast('scored' as {{ dbt.type_string() }}) as assignment_method,
        cast(case when nearest.squared_distance is not null then nearest.segment_id end as integer) as segment_id,
        cast(sqrt(nearest.squared_distance) as double) as distance_to_centroid,
        fitted.customer_id is not null as is_in_fitted_run,
        customers.analysis_date
    from customers
    cross join latest_run
    left join nearest_centroids as nearest
        on customers.customer_id = nearest.customer_id and nearest.distance_rank = 1
    left join assignment_history as fitted
        on customers.customer_id = fitted.customer_id and latest_run.run_id = fitted.run_id
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
