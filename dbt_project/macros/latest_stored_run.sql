{#- The latest segkit run, read when the model runs: its id, and its features (quoted), transform and centroids in
    the shape the macros of segkit/sql/stored_run.sql take. None before the first `segkit cluster`, when segkit's
    tables do not exist yet. While dbt parses, an empty run, so that the model's refs are all seen. -#}
{% macro latest_stored_run() %}
    {%- if not execute -%}
        {{ return({'run_id': '', 'columns': [], 'transform': [], 'segment_ids': [], 'centroids': []}) }}
    {%- endif -%}
    {%- set relations = {} -%}
    {%- for name in ['cluster_runs', 'feature_transform', 'segment_centroids', 'segment_assignment_history'] -%}
        {%- set relation = adapter.get_relation(database=this.database, schema=target.schema, identifier=name) -%}
        {%- if relation is none -%}
            {{ return(none) }}
        {%- endif -%}
        {%- do relations.update({name: relation}) -%}
    {%- endfor -%}
    {%- set latest = run_query(latest_runs_sql(relations['cluster_runs'])).rows -%}
    {%- if latest | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set run_id = latest[0][0] -%}
    {%- set transform = run_query(
        'select feature, log_transform, clip_lower, clip_upper, center, scale from ' ~ relations['feature_transform']
        ~ ' where run_id = ' ~ sql_string(run_id) ~ ' order by feature_order').rows -%}
    {%- set centroid_rows = run_query(
        'select segment_id, value_scaled from ' ~ relations['segment_centroids']
        ~ ' where run_id = ' ~ sql_string(run_id) ~ ' order by segment_id, feature_order').rows -%}
    {%- set columns, segment_ids, centroids = [], [], [] -%}
    {%- for step in transform -%}
        {%- do columns.append(adapter.quote(step['feature'])) -%}
    {%- endfor -%}
    {%- for row in centroid_rows -%}
        {%- if segment_ids | length == 0 or segment_ids[-1] != row['segment_id'] -%}
            {%- do segment_ids.append(row['segment_id']) -%}
            {%- do centroids.append([]) -%}
        {%- endif -%}
        {%- do centroids[-1].append(row['value_scaled']) -%}
    {%- endfor -%}
    {%- if transform | length == 0 or centroids | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return({'run_id': run_id, 'columns': columns, 'transform': transform, 'segment_ids': segment_ids,
               'centroids': centroids}) }}
{% endmacro %}
