{#- Spark's side of the dialect macros (see macros/dialect.sql): dbt-spark picks these spark__ versions. -#}

{#- Spark's parsers take Java date-time patterns: the strptime format is translated, letters quoted. -#}
{% macro spark__parse_timestamp(expression) -%}
    {%- set format = var('order_date_format') -%}
    {%- if format -%}
        coalesce(
            to_timestamp({{ expression }}, "{{ strptime_to_java_pattern(format) }}"),
            cast({{ expression }} as timestamp)
        )
    {%- else -%}
        cast({{ expression }} as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- Single-letter fields (M, d, H...) parse one or two digits, as strptime does. -#}
{% macro strptime_to_java_pattern(format) -%}
    {%- set fields = {
        '%Y': 'yyyy', '%y': 'yy', '%m': 'M', '%d': 'd', '%H': 'H', '%I': 'h', '%M': 'm', '%S': 's',
        '%f': 'SSSSSS', '%p': 'a', '%b': 'MMM', '%B': 'MMMM', '%j': 'D', '%z': 'Z', '%%': '%'} -%}
    {%- set pattern = [] -%}
    {%- for part in modules.re.split('(%.)', format) if part -%}
        {%- if part in fields -%}
            {%- do pattern.append(fields[part]) -%}
        {%- elif part.startswith('%') -%}
            {{ exceptions.raise_compiler_error(
                "segkit: order_date_format '" ~ format ~ "' uses " ~ part ~ ", which has no Spark equivalent here. "
                ~ "Use %Y %y %m %d %H %I %M %S %f %p %b %B %j %z, or null for ISO dates.") }}
        {%- elif modules.re.search('[A-Za-z]', part) -%}
            {%- do pattern.append("'" ~ part ~ "'") -%}
        {%- else -%}
            {%- do pattern.append(part) -%}
        {%- endif -%}
    {%- endfor -%}
    {{- pattern | join('') -}}
{%- endmacro %}

{#- A struct of every column, as JSON, so equal hashes are exact duplicate lines. -#}
{% macro spark__row_fingerprint(relation_alias) -%}
    md5(to_json(struct({{ relation_alias }}.*)))
{%- endmacro %}

{#- Spark numbers rows only in an ordered window; monotonically_increasing_id follows the files' order. -#}
{% macro spark__input_line_number() -%}
    row_number() over (order by monotonically_increasing_id())
{%- endmacro %}

{#- The input files as an external table over the files in place (dropping it never touches the files):
    Spark has no read_csv() to put in the source's external_location. -#}
{% macro spark__register_transactions_source() %}
    {%- set path = var('transactions_path') -%}
    {#- Relative paths are relative to the repository root, as on DuckDB, not to the table's folder. -#}
    {%- set path = path if path.startswith('/') or ':' in path
        else invocation_args_dict.get('project_dir', '.') ~ '/' ~ path -%}
    {%- set relation = source('raw', 'transactions') -%}
    {%- set options = "mergeSchema 'true'" if path.endswith('.parquet') else "header 'true'" -%}
    {%- do run_query("create schema if not exists " ~ relation.schema) -%}
    {%- do run_query("drop table if exists " ~ relation) -%}
    {%- do run_query("create table " ~ relation ~ " using " ~ ('parquet' if path.endswith('.parquet') else 'csv')
        ~ " options (path '" ~ path ~ "', " ~ options ~ ")") -%}
{% endmacro %}

{#- Spark SQL cannot list files: with no file behind the glob, creating the table above stops the build
    with Spark's UNABLE_TO_INFER_SCHEMA instead. -#}
{% macro spark__count_input_files(path) -%}
    {{ return(1) }}
{%- endmacro %}
