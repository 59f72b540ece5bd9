{#- The on-run-start hook, when this invocation runs one of segkit's models (a host's `dbt build --select orders` is
    left alone): stop with a plain message, before any model runs, when a var is unusable, a host node would build
    where segkit writes, or the input files are missing, of an unknown kind, empty or lack a mapped column (in any
    file or sheet), a line of them cannot be read (transactions_input names the file, the line and the var to set),
    or their dates or amounts cannot be read at all. It stops as SQL, `select error(...)`, so dbt reports the hook
    as failed and exits with 1. A relation input (var transactions_relation) may be built by a host model of this
    very run, so it is checked just before segkit reads it, by check_transactions_relation. -#}
{% macro validate_transactions_input() %}
    {%- do hook_reads_transactions_relation() -%}
    {%- if not execute or flags.WHICH not in ('build', 'run', 'test', 'seed') or not segkit_models_selected() -%}
        {{- return('select 1') -}}
    {%- endif -%}
    {%- set problem = vars_problem() or namespace_problem()
        or (none if var('transactions_relation') else input_files_problem()) -%}
    {{- return(stop_build(problem) if problem else 'select 1') -}}
{% endmacro %}

{% macro input_files_problem() %}
    {%- set path = var('transactions_path') -%}
    {%- if count_input_files(path) == 0 -%}
        {{- return("no input file matches transactions_path '" ~ path ~ "' (relative to the project folder, where "
            ~ "dbt runs). Set the var to your CSV, Parquet or Excel file or glob, e.g. --vars '{transactions_path: "
            ~ "data/orders.csv}', or transactions_relation to a table or model of yours.") -}}
    {%- endif -%}
    {%- set problem = register_transactions_source() -%}
    {%- if problem | trim -%}
        {{- return(problem | trim) -}}
    {%- endif -%}
    {%- set input = transactions_input(check=true) -%}
    {{- return(input.get('error') or input_rows_problem(input.relation, "the input '" ~ path ~ "'")) -}}
{% endmacro %}

{#- The staging model's pre-hook (dbt_project.yml): a relation input exists, has rows and every mapped column, and
    its dates and amounts read. Files were checked by validate_transactions_input. -#}
{% macro check_transactions_relation() %}
    {%- if not execute or not var('transactions_relation') -%}
        {{- return('select 1') -}}
    {%- endif -%}
    {%- set input = transactions_input() -%}
    {%- set problem = input.get('error') or input_rows_problem(input.relation, "the relation " ~ input.relation) -%}
    {{- return(stop_build(problem) if problem else 'select 1') -}}
{% endmacro %}

{#- What both inputs must hold, as read: rows, every mapped column, dates and amounts that read. `described` names
    the input in the messages. The first 10,000 rows are read once, for every check on values: each query on a
    CSV input reads it again. -#}
{% macro input_rows_problem(relation, described) %}
    {%- set found = run_query("describe select * from " ~ relation).columns[0].values() | list -%}
    {%- set columns = var('columns') -%}
    {%- set missing = [] -%}
    {%- for name, source_column in columns.items() if source_column and source_column not in found -%}
        {%- do missing.append((name, source_column)) -%}
    {%- endfor -%}
    {%- set number_names = [] -%}
    {%- for name in ['quantity', 'unit_price', 'line_amount'] if columns.get(name) -%}
        {%- do number_names.append(name) -%}
    {%- endfor -%}
    {%- set sample = none -%}
    {%- if not missing -%}
        {%- set date_column = sql_identifier(columns['order_date']) -%}
        {%- set measures = ["count(*)", "count(" ~ parse_timestamp("trim(cast(" ~ date_column ~ " as "
            ~ dbt.type_string() ~ "))") ~ ")"] -%}
        {%- for name in number_names -%}
            {%- set column = mapped_column(name) -%}
            {%- do measures.extend(["count(" ~ column ~ ")", "count(" ~ try_cast_number(column) ~ ")",
                                    "min(" ~ column ~ ")"]) -%}
        {%- endfor -%}
        {%- set sample = run_query("select " ~ (measures | join(', ')) ~ " from (select * from " ~ relation
            ~ " limit 10000) as source").rows[0] -%}
    {%- endif -%}
    {%- if (sample[0] if sample else run_query("select count(*) from (select 1 from " ~ relation ~ " limit 1) as "
        ~ "source").columns[0].values()[0]) == 0 -%}
        {{- return(described ~ " has no data rows (it is empty or holds only a header). Point "
            ~ ("transactions_relation" if var('transactions_relation') else "transactions_path")
            ~ " at your transactions.") -}}
    {%- endif -%}
    {%- for name, source_column in missing -%}
        {{- return(described ~ " has no column '" ~ source_column ~ "' (mapped to " ~ name ~ "). "
            ~ "Columns found: " ~ (found | join(', ')) ~ ". Fix the mapping in the var 'columns'"
            ~ (", or the file's delimiter: it was read as a single column"
               if found | length == 1 and not var('transactions_relation') else "")
            ~ ".") -}}
    {%- endfor -%}
    {%- if sample[1] == 0 -%}
        {{- return("none of the first " ~ sample[0] ~ " order dates in column '" ~ columns['order_date']
            ~ "' of " ~ described ~ " parse with order_date_format '" ~ var('order_date_format') ~ "'. Set the var "
            ~ "order_date_format to your dates' strptime format, e.g. '%d/%m/%Y %H:%M' or '%Y%m%d'.") -}}
    {%- endif -%}
    {%- for name in number_names -%}
        {%- set found = sample[2 + 3 * loop.index0:5 + 3 * loop.index0] -%}
        {%- if found[0] > 0 and found[1] == 0 -%}
            {{- return(number_column_problem(name, found, described)) -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(none) -}}
{% endmacro %}

{#- A number column none of whose first values read as a number is almost always in another number format (a
    decimal comma): say which var reads it, rather than reject every line as unparseable. `found`: the count of its
    values, of those that read, and the least of them. -#}
{% macro number_column_problem(name, found, described) %}
    {%- set decimal = var('decimal_separator') or '.' -%}
    {%- set thousands = "'" ~ var('thousands_separator') ~ "'" if var('thousands_separator') else 'null' -%}
    {%- set fix = "If the file writes decimals with a comma, set the vars decimal_separator: ',' and, when "
                  ~ "it groups thousands with a point, thousands_separator: '.'."
                  if decimal == '.' and ',' in found[2]
                  else "Set the vars decimal_separator and thousands_separator to the file's number "
                  ~ "format, or fix the mapping in the var 'columns'." -%}
    {{- return("none of the first " ~ found[0] ~ " values in column '" ~ var('columns')[name] ~ "' (mapped to "
        ~ name ~ ") of " ~ described ~ " is a number with decimal_separator '" ~ decimal ~ "' and "
        ~ "thousands_separator " ~ thousands ~ " (for example '" ~ found[2] ~ "'). " ~ fix) -}}
{% endmacro %}

{#- Vars that reach SQL as values are quoted there; these checks make a wrong one a message, not a failed query. -#}
{% macro vars_problem() %}
    {%- set problem = quality_gate_vars_problem() or reader_vars_problem() -%}
    {%- if problem -%}
        {{- return(problem) -}}
    {%- endif -%}
    {%- set columns = var('columns') -%}
    {%- if columns is not mapping -%}
        {{- return("the var 'columns' must map segkit's names to your headers, "
            ~ "e.g. {customer_id: cust, order_date: day, line_amount: amount}.") }}
    {%- endif -%}
    {%- for required in ['customer_id', 'order_date'] if not columns.get(required) -%}
        {{- return("the var 'columns' must map " ~ required ~ ".") }}
    {%- endfor -%}
    {%- if not columns.get('line_amount') and not (columns.get('quantity') and columns.get('unit_price')) -%}
        {{- return("the var 'columns' must map either line_amount, or both quantity and unit_price.") }}
    {%- endif -%}
    {%- set quantity = var('extreme_quantity') | string -%}
    {%- if not modules.re.fullmatch('[0-9]+(\.[0-9]+)?', quantity) -%}
        {{- return("the var extreme_quantity must be a positive number of units, "
            ~ "e.g. 10000; got '" ~ quantity ~ "'.") }}
    {%- endif -%}
    {%- for name in ['extraction_date', 'analysis_date'] if var(name) -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', var(name) | string) -%}
            {{- return("the var " ~ name ~ " must be a date written YYYY-MM-DD, "
                ~ "e.g. 2011-12-10; got '" ~ var(name) ~ "'.") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if var('pseudonymise_customer_ids') and target.type != 'duckdb' -%}
        {{- return("pseudonymise_customer_ids works on DuckDB only (the keyed pseudonym is a DuckDB function). "
            ~ "On " ~ target.type ~ ", pseudonymise the customer ids in the input files, or build on DuckDB.") }}
    {%- endif -%}
    {%- if var('pseudonymise_customer_ids') and run_query("select count(*) from duckdb_functions() where "
        ~ "function_name = 'segkit_pseudonym_key_is_set'").columns[0].values()[0] == 0 -%}
        {{- return("the var pseudonymise_customer_ids is on but dbt's DuckDB connection has no segkit_pseudonym: list "
            ~ "segkit's plugin among the plugins of the target in profiles.yml (plugins: - module: "
            ~ "segkit.pseudonyms), as the repository's profiles.yml does.") }}
    {%- endif -%}
    {%- if var('pseudonymise_customer_ids') and not run_query("select segkit_pseudonym_key_is_set()").columns[0].values()[0] -%}
        {{- return("the var pseudonymise_customer_ids is on but the environment variable SEGKIT_PSEUDONYM_KEY is "
            ~ "not set. Export the secret key (the same key gives the same pseudonyms), or turn the var off.") }}
    {%- endif -%}
    {{- return(none) -}}
{% endmacro %}

{#- The vars that say how to read the files (transactions_input) and their numbers (number_format). -#}
{% macro reader_vars_problem() %}
    {%- set decimal = var('decimal_separator') -%}
    {%- set thousands = var('thousands_separator') -%}
    {%- if decimal not in (none, '.', ',') -%}
        {{- return("the var decimal_separator must be '.' or ','; got '"
            ~ decimal ~ "'.") }}
    {%- endif -%}
    {%- if thousands not in (none, '.', ',', ' ', "'") or thousands == decimal -%}
        {{- return("the var thousands_separator must be null, '.', ',', ' ' or \"'\", "
            ~ "and not the decimal separator; got '" ~ thousands ~ "'.") }}
    {%- endif -%}
    {%- set delimiter = var('csv_delimiter') -%}
    {%- if delimiter is not none and (delimiter is not string or delimiter | length != 1 or delimiter in '\r\n"') -%}
        {{- return("the var csv_delimiter must be one character (e.g. ';', or \"\\t\" "
            ~ "for a tab) or null to take it from the header line; got '" ~ delimiter ~ "'.") }}
    {%- endif -%}
    {%- for name in ['csv_quote', 'csv_escape'] if var(name) is not none
          and (var(name) is not string or var(name) | length > 1 or var(name) in ('\r', '\n')) -%}
        {{- return("the var " ~ name ~ " must be one character, or '' for none; got '"
            ~ var(name) ~ "'.") }}
    {%- endfor -%}
    {%- if var('encoding') is not none and (var('encoding') | lower) not in
          ('utf-8', 'utf8', 'utf-16', 'utf16', 'utf-16le', 'latin-1', 'latin1', 'iso-8859-1', 'iso8859-1') -%}
        {{- return("the var encoding must be null (UTF-8, or UTF-16 with a byte-order "
            ~ "mark), utf-8, utf-16 or latin-1 (also for Windows-1252 exports); got '" ~ var('encoding') ~ "'.") }}
    {%- endif -%}
    {%- set sheets = var('excel_sheets') -%}
    {%- if sheets is not none and sheets is not string and (sheets is mapping or sheets is not iterable
          or sheets | reject('string') | list | length > 0) -%}
        {{- return("the var excel_sheets must be null (every sheet) or a list of sheet "
            ~ "names, e.g. ['Year 2009-2010', 'Year 2010-2011']; got '" ~ sheets ~ "'.") }}
    {%- endif -%}
    {{- return(none) -}}
{% endmacro %}
