{#- segkit runs standalone (this repository is the root project) or as a package inside a host dbt project (README
    "Use segkit in your dbt project"). Either way its nodes are those of the package 'segkit', and its hooks act only
    when the invocation runs one of its models. -#}

{#- segkit's models and seeds. dbt resolves a one-argument ref() made in a package in the host project first
    (unless the host sets the flag require_ref_searches_node_package_before_root), so a host model of the same name would
    be read in place of segkit's. segkit's ref (publish.sql) names its own package for these names.
    tests/test_host_project.py checks the list against the model and seed files. -#}
{% macro segkit_node_names() -%}
    {{- return([
        'stg_raw__lines',
        'stg_segkit__cluster_runs', 'stg_segkit__feature_transform', 'stg_segkit__segment_assignment_history',
        'stg_segkit__segment_centroids',
        'int_analysis_date_resolved', 'int_lines_aggregated_to_customers', 'int_lines_checked', 'int_lines_classified',
        'int_lines_duplicated', 'int_lines_kept', 'int_lines_rejected',
        'customer_rfm', 'customer_rfm_scores', 'data_quality_summary', 'rfm_score_bins',
        'customer_segments_scored',
        'rejection_reasons', 'rfm_segment_rules']) -}}
{%- endmacro %}

{#- True when this invocation runs one of segkit's models: in a host, `dbt build --select orders` must not read
    segkit's input, check its gate or publish anything. -#}
{% macro segkit_models_selected() -%}
    {%- for unique_id in (selected_resources or []) if unique_id.startswith('model.segkit.') -%}
        {{- return(true) -}}
    {%- endfor -%}
    {{- return(false) -}}
{%- endmacro %}

{#- segkit's namespace in the database: its models build in the build schema, and publishing writes its published
    models and `segkit cluster` writes its own tables in the target schema. A host node that would build one of
    these relations stops the build before anything runs. -#}
{% macro namespace_problem() -%}
    {%- set published = [] -%}
    {%- for node in graph.nodes.values() if node.package_name == 'segkit' and (node.config.meta or {}).get('publish') -%}
        {%- do published.append(node.alias | lower) -%}
    {%- endfor -%}
    {%- for source in graph.sources.values() if source.package_name == 'segkit' and source.source_name == 'segkit' -%}
        {%- do published.append(source.identifier | lower) -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if node.package_name != 'segkit'
        and node.resource_type in ('model', 'seed', 'snapshot') and node.config.materialized != 'ephemeral' -%}
        {%- if (node.schema | lower) == (build_schema() | lower) -%}
            {{- return("your " ~ node.resource_type ~ " " ~ node.name ~ " builds in schema " ~ node.schema ~ ", "
                ~ "which segkit keeps for its own models (README, Use segkit in your dbt project). Give it another "
                ~ "schema.") -}}
        {%- elif (node.schema | lower) == (target.schema | lower) and (node.alias | lower) in published -%}
            {{- return("your " ~ node.resource_type ~ " " ~ node.name ~ " builds " ~ target.schema ~ "." ~ node.alias
                ~ ", a table segkit writes (its published tables and segkit cluster's are named in README, Use "
                ~ "segkit in your dbt project). Give yours another name with the config alias, or another schema.") -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(none) -}}
{%- endmacro %}

{#- A hook that reads the input renders the var transactions_relation while dbt parses it, so that dbt records the
    ref or source in it and lets the hook resolve it when it runs. -#}
{% macro hook_reads_transactions_relation() -%}
    {%- if not execute -%}
        {%- do var('transactions_relation') -%}
    {%- endif -%}
{%- endmacro %}
