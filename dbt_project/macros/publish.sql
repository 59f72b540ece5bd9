{#- Write, audit, publish. Every model and seed is built into the build schema (the target schema + '_build',
    main_build on DuckDB). The tables users and segkit read, the models with meta `publish: true` (marts and
    scoring), are copied into the target schema by the on-run-end hook `publish`, at the end of a `dbt build`
    whose every node passed and whose input passed the quality gate (quality_gate.sql). On DuckDB the copy is one
    transaction, so a reader sees the previous tables or all the new ones; otherwise they stay as they were and the
    build fails with a message saying which check failed and why. -#}

{#- In a host project too, dbt names the schemas of segkit's nodes with this macro (a package's own
    generate_schema_name applies to its nodes), so the host's schema macro never moves them. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{- build_schema() -}}
{%- endmacro %}

{% macro build_schema() -%}
    {{- return(target.schema ~ '_build') -}}
{%- endmacro %}

{#- segkit's ref, used by its own nodes only (a host's models keep dbt's). A name of segkit's is looked up in
    segkit's package, so a host model of the same name is never read in its place (package.sql). A published model
    that this run does not build is read where users read it, in the target schema: a partial build (dbt build
    --select customer_segments_scored) reads the published customer_rfm, never a build-schema table left behind by a
    build that was not published. -#}
{% macro ref() %}
    {%- if varargs | length == 1 and 'package' not in kwargs and varargs[0] in segkit_node_names() -%}
        {%- set relation = builtins.ref('segkit', varargs[0], **kwargs) -%}
    {%- else -%}
        {%- set relation = builtins.ref(*varargs, **kwargs) -%}
    {%- endif -%}
    {%- if execute and selected_resources is defined and relation.schema == build_schema() -%}
        {%- set node = published_models().get(relation.identifier) -%}
        {%- if node and node.unique_id not in selected_resources -%}
            {%- set relation = relation.incorporate(path={'schema': target.schema}) -%}
        {%- endif -%}
    {%- endif -%}
    {{- return(relation) -}}
{% endmacro %}

{#- The models users and segkit read, by relation name. -#}
{% macro published_models() -%}
    {%- set models = {} -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' and node.package_name == 'segkit'
        and (node.config.meta or {}).get('publish') -%}
        {%- do models.update({node.alias or node.name: node}) -%}
    {%- endfor -%}
    {{- return(models) -}}
{%- endmacro %}

{#- The models a model is built from, through the models it reads in the build schema: those (`built_from`), and the
    published models where the walk stops (`published`), as they are read from the target schema when not rebuilt.
    segkit's only: a host model segkit reads (var transactions_relation) is the host's to build. -#}
{% macro upstream_models(unique_id, found=none) -%}
    {%- set found = found if found is not none else {'built_from': [], 'published': []} -%}
    {%- for parent_id in graph.nodes[unique_id].depends_on.nodes if parent_id.startswith('model.segkit.') -%}
        {%- set parent = graph.nodes[parent_id] -%}
        {%- if (parent.config.meta or {}).get('publish') -%}
            {%- do found['published'].append(parent.name) if parent.name not in found['published'] -%}
        {%- elif parent.name not in found['built_from'] -%}
            {%- do found['built_from'].append(parent.name) if parent.config.materialized != 'ephemeral' -%}
            {%- do upstream_models(parent_id, found) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(found) -}}
{%- endmacro %}

{#- The on-run-end hook. It publishes only in `dbt build`: `dbt run` tests nothing, so it only builds. It looks at
    segkit's nodes only, and does nothing when the invocation ran none of segkit's models. -#}
{% macro publish(results) -%}
    {%- do hook_reads_transactions_relation() -%}
    {%- if not execute or not segkit_models_selected() or flags.WHICH != 'build' -%}
        {%- if execute and flags.WHICH == 'run' -%}
            {{ log("dbt run builds into schema " ~ build_schema() ~ " and publishes nothing: `dbt build` tests the "
                ~ "models and publishes them to " ~ target.schema ~ ".", info=True) }}
        {%- endif -%}
        {{- return('select 1') -}}
    {%- endif -%}
    {%- set built = {} -%}
    {%- set in_run = [] -%}
    {%- set failed = [] -%}
    {%- for result in results if result.node.package_name == 'segkit' or result.node.resource_type == 'operation' -%}
        {%- do in_run.append(result.node.name) if result.node.resource_type == 'model' -%}
        {%- if result.node.resource_type == 'operation' and result.status == 'error' -%}
            {#- on-run-start stopped the build (validate_transactions_input): its message says why. -#}
            {{- return('select 1') -}}
        {%- elif result.node.resource_type == 'model' and result.status == 'error'
            and 'segkit: ' in (result.message or '') -%}
            {#- segkit's check before reading a relation (check_transactions_relation) said why. -#}
            {{- return('select 1') -}}
        {%- elif result.status in ('error', 'fail', 'runtime error') -%}
            {%- do failed.append(result) -%}
        {%- elif result.node.resource_type == 'model' and result.status == 'success' -%}
            {%- do built.update({result.node.name: result.node}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set published = published_models() -%}
    {%- set to_publish = built.keys() | select('in', published) | list -%}
    {%- set problem = none -%}
    {#- The gate reads the summary and the models under it: only when this build made them all. -#}
    {%- if 'data_quality_summary' in built and not (upstream_models(built['data_quality_summary'].unique_id)
        ['built_from'] | reject('in', built) | list) -%}
        {%- set problem = quality_gate(built) -%}
    {%- endif -%}
    {%- if problem is none -%}
        {%- set problem = stale_inputs_problem(built, to_publish) -%}
    {%- endif -%}
    {%- if problem is none -%}
        {%- set problem = out_of_step_problem(in_run, built, to_publish, published) -%}
    {%- endif -%}
    {%- if problem is none and failed -%}
        {%- set problem = failed_checks_message(failed) -%}
    {%- endif -%}
    {%- if problem is not none -%}
        {{- return(stop_build(problem)) -}}
    {%- endif -%}
    {%- if to_publish -%}
        {{ log("Publishing " ~ (to_publish | join(', ')) ~ " from schema " ~ build_schema() ~ " to "
            ~ target.schema ~ ".", info=True) }}
    {%- endif -%}
    {%- set nodes = [] -%}
    {%- for name in to_publish -%}
        {%- do nodes.append(built[name]) -%}
    {%- endfor -%}
    {{- return(publish_tables(nodes)) -}}
{%- endmacro %}

{#- The nodes that failed, and what each says; skipped nodes follow from these, so they are not listed. -#}
{% macro failed_checks_message(failed) -%}
    {%- set described = [] -%}
    {%- for result in failed[:3] -%}
        {%- set node = result.node -%}
        {%- set models = [] -%}
        {%- for parent in node.depends_on.nodes if parent.startswith('model.') -%}
            {%- do models.append(graph.nodes[parent].name) -%}
        {%- endfor -%}
        {%- set on = (" on " ~ (models | join(', '))) if node.resource_type != 'model' and models else "" -%}
        {%- set says = (result.failures ~ " failing row" ~ ("" if result.failures == 1 else "s"))
            if result.failures and node.resource_type != 'model'
            else ((result.message or result.status) | string).strip().splitlines() | first -%}
        {%- do described.append(node.resource_type | replace('_', ' ') ~ " " ~ node.name ~ on ~ " (" ~ says ~ ")") -%}
    {%- endfor -%}
    {{- return("the build did not pass, so nothing was published: the tables you and segkit read are as they "
        ~ "were. Failed: " ~ (described | join('; '))
        ~ (" and " ~ (failed | length - 3) ~ " more" if failed | length > 3 else "")
        ~ ". This build's tables are in schema " ~ build_schema() ~ " to inspect; fix the cause and run "
        ~ "dbt build again.") -}}
{%- endmacro %}

{#- A partial build publishes what it built only when that was built from this run's models (or published ones),
    never from build-schema tables an earlier build left behind, perhaps one that failed. -#}
{% macro stale_inputs_problem(built, to_publish) -%}
    {%- for name in to_publish -%}
        {%- set missing = upstream_models(built[name].unique_id)['built_from'] | reject('in', built) | list -%}
        {%- if missing -%}
            {{- return("nothing was published: " ~ name ~ " was built from " ~ (missing | join(', ')) ~ ", which this "
                ~ "build did not run, so it could mix in tables of an earlier build. Build them together: dbt build "
                ~ "--select +" ~ name ~ " (or the whole project).") -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(none) -}}
{%- endmacro %}

{#- Nor when a published table that reads one it replaces is left out of the run, or the gate's summary is. -#}
{% macro out_of_step_problem(in_run, built, to_publish, published) -%}
    {%- for name, node in published.items() if name not in in_run -%}
        {%- set replaced = upstream_models(node.unique_id)['published'] | select('in', to_publish) | list -%}
        {%- if replaced -%}
            {{- return("nothing was published: " ~ name ~ " reads " ~ (replaced | join(', ')) ~ ", which this build "
                ~ "replaces, but was not built with it, so the two would disagree. Build them together: dbt build "
                ~ "--select " ~ (replaced | join('+ ')) ~ "+ (or the whole project).") -}}
        {%- endif -%}
    {%- endfor -%}
    {%- if 'stg_raw__lines' in built and to_publish and 'data_quality_summary' not in built -%}
        {{- return("nothing was published: this build read the input but did not build data_quality_summary, which "
            ~ "the quality gate checks before publishing. Add it (--select ... +data_quality_summary) or build the "
            ~ "whole project.") -}}
    {%- endif -%}
    {{- return(none) -}}
{%- endmacro %}

{#- The hook's SQL when the build must not publish: it fails with the message, so dbt reports the hook as an error
    and exits with 1. Lines after the first start with 'segkit: ' too, for segkit's dbt runner. -#}
{% macro stop_build(message) -%}
    {{- return(adapter.dispatch('stop_build', 'segkit')("segkit: " ~ (message.split('\n') | join('\nsegkit: ')))) -}}
{%- endmacro %}

{% macro default__stop_build(message) -%}
    {{- return("select error(" ~ sql_string(message) ~ ")") -}}
{%- endmacro %}

{% macro spark__stop_build(message) -%}
    {{- return("select raise_error(" ~ sql_string(message) ~ ")") -}}
{%- endmacro %}

{#- Replace each published table by its new version. -#}
{% macro publish_tables(nodes) -%}
    {{- return(adapter.dispatch('publish_tables', 'segkit')(nodes)) -}}
{%- endmacro %}

{#- One transaction, as the hook's SQL: readers see every old table or every new one. The line-level models and
    seeds that earlier versions of segkit built in the target schema are dropped, so nobody reads stale ones there:
    only when segkit is the project itself, as a host's target schema holds the host's own tables. -#}
{% macro default__publish_tables(nodes) -%}
    {%- if not nodes -%}
        {{- return('select 1') -}}
    {%- endif -%}
    {%- set statements = ['begin transaction'] -%}
    {%- do statements.append('create schema if not exists ' ~ adapter.quote(target.schema)) -%}
    {#- Listed with a query, not adapter.get_relation, which would open a transaction before this one. -#}
    {%- set existing = {} -%}
    {%- for row in run_query("select table_name, table_type from information_schema.tables where table_catalog = "
        ~ sql_string(target.database) ~ " and table_schema = " ~ sql_string(target.schema)).rows -%}
        {%- do existing.update({row[0]: 'view' if row[1] == 'VIEW' else 'table'}) -%}
    {%- endfor -%}
    {%- for node in graph.nodes.values() if project_name == 'segkit' and node.package_name == 'segkit'
        and node.resource_type in ('model', 'seed') and node.alias in existing
        and not (node.config.meta or {}).get('publish') -%}
        {%- do statements.append('drop ' ~ existing[node.alias] ~ ' '
            ~ api.Relation.create(database=node.database, schema=target.schema, identifier=node.alias)) -%}
    {%- endfor -%}
    {#- formerly:begin  The line-level models under their former names (README "Migrating from earlier versions"). -#}
    {%- for name in ['stg_transactions', 'int_duplicate_lines', 'int_transaction_lines_checked',
        'int_lines_by_customer', 'int_analysis_date', 'int_transaction_lines_classified', 'int_transactions_cleaned',
        'int_transactions_rejected'] if project_name == 'segkit' and name in existing -%}
        {%- do statements.append('drop ' ~ existing[name] ~ ' '
            ~ api.Relation.create(database=target.database, schema=target.schema, identifier=name)) -%}
    {%- endfor -%}{#- formerly:end -#}
    {%- for node in nodes -%}
        {%- set built = api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- do statements.append('create or replace table ' ~ built.incorporate(path={'schema': target.schema})
            ~ ' as select * from ' ~ built) -%}
    {%- endfor -%}
    {%- do statements.append('commit') -%}
    {{- return(statements | join(';\n')) -}}
{%- endmacro %}

{#- Spark has no transaction over Parquet tables: each table is replaced in turn, so a failure half-way can leave
    some tables new and the others old (rerun dbt build). -#}
{% macro spark__publish_tables(nodes) -%}
    {%- if nodes -%}
        {%- do run_query('create schema if not exists ' ~ target.schema) -%}
    {%- endif -%}
    {%- for node in nodes -%}
        {%- set built = api.Relation.create(schema=node.schema, identifier=node.alias) -%}
        {%- set published = built.incorporate(path={'schema': target.schema}) -%}
        {%- do run_query('drop table if exists ' ~ published) -%}
        {#- the model's format: Parquet on Spark, Delta on Databricks (dbt_project.yml) -#}
        {%- do run_query('create table ' ~ published ~ ' using ' ~ node.config.get('file_format', 'parquet')
            ~ ' as select * from ' ~ built) -%}
    {%- endfor -%}
    {{- return('select 1') -}}
{%- endmacro %}
