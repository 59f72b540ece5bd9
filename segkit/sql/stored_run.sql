{#- SQL over a run segkit stored, written once for segkit and for dbt. segkit renders these macros with Jinja
    (segkit.sql); dbt reads this file as a macro file (dbt_project.yml lists segkit/sql among its macro-paths) and
    the model customer_segments_scored calls them. So they use plain Jinja only: the caller passes quoted columns
    and the run's numbers. -#}

{#- The most recent runs first: the latest run is the one created last (on a tie, the highest run id). -#}
{% macro latest_runs_sql(cluster_runs, limit=1) -%}
select run_id from {{ cluster_runs }} order by created_at desc, run_id desc limit {{ limit }}
{%- endmacro %}

{% macro double_literal(value) -%}
cast({{ value }} as double)
{%- endmacro %}

{#- One feature in the run's scaled units (step: its row of feature_transform), the formula of the contract:
    (least(greatest(ln(1 + x) when log_transform else x, clip_lower), clip_upper) - center) / scale. -#}
{% macro scaled_feature_sql(column, step) -%}
{%- set value = 'cast(' ~ column ~ ' as double)' -%}
((least(greatest({{ 'ln(1 + ' ~ value ~ ')' if step.log_transform else value }}, {{ double_literal(step.clip_lower) }}), {{ double_literal(step.clip_upper) }}) - {{ double_literal(step.center) }}) / {{ double_literal(step.scale) }})
{%- endmacro %}

{#- Every row of `customers` with its nearest centroid: customer_id, segment_id, distance_to_centroid (Euclidean,
    in scaled units) and the `keep` columns. columns: the quoted column of each step of `transform`, in order;
    centroids: one list of scaled coordinates per segment, in the order of segment_ids. A tie goes to the
    earlier centroid, so with the ids ascending to the lowest id. A customer with a missing feature value has
    every distance missing, and no segment. -#}
{% macro nearest_segment_sql(customers, columns, transform, centroids, segment_ids, keep=[]) -%}
select customer_id,{% for column in keep %} {{ column }},{% endfor %}
    cast(case{% for segment_id in segment_ids %} when d{{ loop.index0 }} = nearest then {{ segment_id }}{% endfor %} end as integer) as segment_id,
    sqrt(nearest) as distance_to_centroid
from (
    select *,
        {% if centroids | length > 1 -%}
        least({% for centroid in centroids %}d{{ loop.index0 }}{{ ', ' if not loop.last }}{% endfor %})
        {%- else -%}
        d0
        {%- endif %} as nearest
    from (
        select customer_id,{% for column in keep %} {{ column }},{% endfor %}
        {%- for centroid in centroids %}
            {% for coordinate in centroid -%}
            (x{{ loop.index0 }} - {{ double_literal(coordinate) }}) * (x{{ loop.index0 }} - {{ double_literal(coordinate) }}){{ ' + ' if not loop.last }}
            {%- endfor %} as d{{ loop.index0 }}{{ ',' if not loop.last }}
        {%- endfor %}
        from (
            select customer_id,{% for column in keep %} {{ column }},{% endfor %}
            {%- for step in transform %}
                {{ scaled_feature_sql(columns[loop.index0], step) }} as x{{ loop.index0 }}{{ ',' if not loop.last }}
            {%- endfor %}
            from {{ customers }}
        ) as scaled
    ) as distances
) as nearest_distances
{%- endmacro %}
