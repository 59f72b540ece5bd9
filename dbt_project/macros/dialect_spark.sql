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
{% macro spark__input_line_number(kind) -%}
    row_number() over (order by monotonically_increasing_id())
{%- endmacro %}

{#- The input files as an external table over the files in place (dropping it never touches the files):
    Spark has no read_csv() to put in the source's external_location. Returns why it cannot, if it cannot. -#}
{% macro spark__register_transactions_source() %}
    {#- Order dates are UTC dates where a time zone is known; Spark takes them in its session time zone. -#}
    {%- set time_zone = run_query("select current_timezone()").columns[0].values()[0] -%}
    {%- if time_zone not in ('UTC', 'Etc/UTC', 'Z', '+00:00', 'GMT') -%}
        {{ return("Spark's session time zone is '" ~ time_zone ~ "', so timestamps with a time zone would be "
            ~ "dated in it. Set spark.sql.session.timeZone: UTC in the target's server_side_parameters in "
            ~ "profiles.yml (the spark target does).") }}
    {%- endif -%}
    {%- set path = var('transactions_path') -%}
    {#- Relative paths are relative to the repository root, as on DuckDB, not to the table's folder. -#}
    {%- set path = path if path.startswith('/') or ':' in path
        else invocation_args_dict.get('project_dir', '.') ~ '/' ~ path -%}
    {%- set relation = source('raw', 'transactions') -%}
    {%- set kind = input_kind_by_name(path) -%}
    {%- if kind == 'workbook' -%}
        {{ return("workbooks (.xlsx) are read on DuckDB only. On Spark, export the sheets as CSV or Parquet, "
            ~ "or build on DuckDB.") }}
    {%- endif -%}
    {%- set options = ["mergeSchema 'true'"] if kind == 'parquet' else ["header 'true'"] + spark_csv_options() -%}
    {%- do run_query("create schema if not exists " ~ relation.schema) -%}
    {%- do run_query("drop table if exists " ~ relation) -%}
    {%- do run_query("create table " ~ relation ~ " using " ~ kind
        ~ " options (path " ~ sql_string(path) ~ ", " ~ options | join(', ') ~ ")") -%}
{% endmacro %}

{#- The reader vars as options of Spark's CSV source: its own detection is left alone where a var is null. Spark
    takes an empty quote for none, and Java's names for the encodings. -#}
{% macro spark_csv_options() -%}
    {%- set options = [] -%}
    {%- for option, name in [('sep', 'csv_delimiter'), ('quote', 'csv_quote'), ('escape', 'csv_escape')]
          if var(name) is not none -%}
        {%- do options.append(option ~ ' ' ~ sql_string(var(name))) -%}
    {%- endfor -%}
    {%- if var('encoding') -%}
        {%- set java = {'utf-8': 'UTF-8', 'utf8': 'UTF-8', 'utf-16': 'UTF-16', 'utf16': 'UTF-16', 'utf-16le': 'UTF-16LE',
                        'latin-1': 'ISO-8859-1', 'latin1': 'ISO-8859-1', 'iso-8859-1': 'ISO-8859-1',
                        'iso8859-1': 'ISO-8859-1'} -%}
        {%- do options.append("encoding " ~ sql_string(java[var('encoding') | lower])) -%}
    {%- endif -%}
    {{ return(options) }}
{%- endmacro %}

{#- Spark SQL cannot list files: with no file behind the glob, creating the table above stops the build
    with Spark's UNABLE_TO_INFER_SCHEMA instead. -#}
{% macro spark__count_input_files(path) -%}
    {{ return(1) }}
{%- endmacro %}

{#- Spark has no NFC normalisation, so ids are only trimmed of Unicode space and the float suffix (validate_vars
    refuses pseudonymise_customer_ids here). Spark string literals take backslash escapes, hence the doubling. -#}
{% macro spark__customer_id(expression) -%}
    nullif(regexp_replace(regexp_replace({{ expression }},
        '^[\\p{Z}\\s\\x{200b}\\x{feff}]+|[\\p{Z}\\s\\x{200b}\\x{feff}]+$', ''), '[.]0+$', ''), '')
{%- endmacro %}

{#- Spark string literals take backslash escapes and join adjacent literals, so quotes are escaped with a
    backslash, not doubled; identifiers are quoted with backticks. -#}
{% macro spark__sql_string(value) -%}
    '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}

{% macro spark__sql_identifier(name) -%}
    `{{ name | string | replace('`', '``') }}`
{%- endmacro %}

{#- Spark's regex groups are $1, and its rlike finds rather than matches (number_format's pattern is anchored). -#}
{% macro spark__regex_groups(first, second) -%}
    '${{ first }}${{ second }}'
{%- endmacro %}

{% macro spark__regex_matches_in_full(expression, pattern) -%}
    {{ expression }} rlike {{ pattern }}
{%- endmacro %}

{#- Spark's hash() has only 32 bits; xxhash64 has 64. -#}
{% macro spark__hash_function() -%}
    xxhash64
{%- endmacro %}
