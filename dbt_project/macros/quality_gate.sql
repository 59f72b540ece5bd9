{#- The quality gate: the data-quality summary as a guard, checked by the hook `publish` (publish.sql) before it
    publishes anything. The build stops, with one message naming the check, the share, three example input lines
    and the vars to set, when
    - the share of the lines read that were rejected for one reason is above max_rejected_share[reason];
    - the share of the input's customers who keep no line is above max_customers_lost_share;
    - no line is kept at all (whatever the size of the input);
    - another common date format reads far more of the first 10,000 order dates as plausible dates (1900 to the
      extraction date) than order_date_format does (check_order_date_format; DuckDB, dates read as text).
    A share counts only when it holds at least quality_gate_min_lines lines (or customers), so that one odd line in a
    small file does not stop the build. Returns the message, or none when the input passes. -#}

{#- Per rejection reason, the largest share of the lines read it may take. Online Retail II itself has about 22.8% of
    lines without a customer id, 3.2% duplicates and under 1% for each other reason; a wrong mapping or format
    rejects far more. after_analysis_date is left out on purpose: a set analysis_date excludes later lines. -#}
{% macro max_rejected_share_defaults() -%}
    {{- return({
        'unparseable': 0.02, 'missing_customer_id': 0.5, 'duplicate': 0.2, 'non_product_code': 0.2,
        'zero_or_negative_price': 0.2, 'extreme_quantity': 0.05, 'extreme_amount': 0.01, 'date_before_1900': 0.01,
        'future_date': 0.05, 'after_analysis_date': 1, 'return_without_purchase': 0.2, 'other': 0.2}) -}}
{%- endmacro %}

{% macro max_rejected_shares() -%}
    {%- set shares = max_rejected_share_defaults() -%}
    {%- do shares.update(var('max_rejected_share', {}) or {}) -%}
    {{- return(shares) -}}
{%- endmacro %}

{#- Called by vars_problem, before any model runs. -#}
{% macro quality_gate_vars_problem() -%}
    {%- set overrides = var('max_rejected_share', {}) or {} -%}
    {%- if overrides is not mapping -%}
        {{- return("the var max_rejected_share must map rejection reasons to shares "
            ~ "from 0 to 1, e.g. {unparseable: 0.1}; got '" ~ overrides ~ "'.") -}}
    {%- endif -%}
    {%- set shares = {'max_customers_lost_share': var('max_customers_lost_share')} -%}
    {%- for reason, share in overrides.items() -%}
        {%- do shares.update({'max_rejected_share.' ~ reason: share}) -%}
    {%- endfor -%}
    {%- for name, share in shares.items()
        if not modules.re.fullmatch('(0|1)(\.0*)?|0?\.[0-9]+', share | string) -%}
        {{- return("the var " ~ name ~ " must be a share from 0 to 1, e.g. 0.1 for "
            ~ "10%; got '" ~ share ~ "'.") -}}
    {%- endfor -%}
    {%- if not modules.re.fullmatch('[1-9][0-9]*', var('quality_gate_min_lines') | string) -%}
        {{- return("the var quality_gate_min_lines must be a whole number of lines, 1 "
            ~ "or more, e.g. 10; got '" ~ var('quality_gate_min_lines') ~ "'.") -}}
    {%- endif -%}
    {{- return(none) -}}
{%- endmacro %}

{% macro quality_gate(built) -%}
    {%- set counts = {} -%}
    {%- for row in run_query("select reason, row_count from " ~ build_relation('data_quality_summary')
        ~ " order by check_order").rows -%}
        {%- do counts.update({row[0]: row[1] | int}) -%}
    {%- endfor -%}
    {%- for reason in (var('max_rejected_share', {}) or {}) if reason != 'other' and reason not in counts -%}
        {{- return("the var max_rejected_share names '" ~ reason ~ "', which is no rejection reason. The reasons are: "
            ~ (counts.keys() | reject('in', ['rows_read', 'rows_kept']) | join(', ')) ~ ".") -}}
    {%- endfor -%}
    {%- set rows_read = counts.get('rows_read', 0) -%}
    {%- set min_lines = var('quality_gate_min_lines') | int -%}
    {%- set shares = max_rejected_shares() -%}
    {%- set input = transactions_input() -%}
    {%- for reason, count in counts.items() if reason not in ('rows_read', 'rows_kept') -%}
        {%- set limit = shares.get(reason, shares['other']) | float -%}
        {%- if count >= min_lines and count / rows_read > limit -%}
            {%- set lines = input_lines(rejected_line_ids(reason, built), input) -%}
            {{- return(gate_message(
                percent(count / rows_read) ~ " of the " ~ thousands(rows_read) ~ " lines read (" ~ thousands(count)
                    ~ ") were rejected as " ~ reason ~ ", more than max_rejected_share." ~ reason ~ " allows ("
                    ~ limit ~ ").",
                rejection_hint(reason, lines, input),
                lines,
                "--vars '{max_rejected_share: {" ~ reason ~ ": " ~ share_above(count / rows_read) ~ "}}'")) -}}
        {%- endif -%}
    {%- endfor -%}
    {%- set lost = customers_lost() -%}
    {%- set limit = var('max_customers_lost_share') | float -%}
    {%- if lost['lost'] >= min_lines and lost['lost'] / lost['customers'] > limit -%}
        {%- set lines = input_lines(lost['line_ids'], input) -%}
        {{- return(gate_message(
            percent(lost['lost'] / lost['customers']) ~ " of the " ~ thousands(lost['customers']) ~ " customers in "
                ~ "the input (" ~ thousands(lost['lost']) ~ ") keep no line, more than max_customers_lost_share "
                ~ "allows (" ~ limit ~ "). Most of their lines were rejected as " ~ lost['reason'] ~ ".",
            rejection_hint(lost['reason'], lines, input),
            lines,
            "--vars '{max_customers_lost_share: " ~ share_above(lost['lost'] / lost['customers']) ~ "}'")) -}}
    {%- endif -%}
    {#- Whatever its size, an input with no usable line never replaces the published tables with empty ones. -#}
    {%- if rows_read and not counts.get('rows_kept') -%}
        {%- set most = {'reason': none, 'count': 0} -%}
        {%- for reason, count in counts.items() if reason not in ('rows_read', 'rows_kept') and count > most['count'] -%}
            {%- do most.update({'reason': reason, 'count': count}) -%}
        {%- endfor -%}
        {%- set lines = input_lines(rejected_line_ids(most['reason'], built), input) -%}
        {{- return(gate_message(
            "None of the " ~ thousands(rows_read) ~ " lines read was kept; most (" ~ thousands(most['count'])
                ~ ", " ~ percent(most['count'] / rows_read) ~ ") were rejected as " ~ most['reason'] ~ ".",
            rejection_hint(most['reason'], lines, input), lines, none)) -}}
    {%- endif -%}
    {%- set dates = order_date_formats(input, min_lines) if var('check_order_date_format') else none -%}
    {%- if dates and dates['parsed'] - dates['configured'] >= [min_lines, 0.1 * dates['sample']] | max -%}
        {{- return(gate_message(
            "order_date_format '" ~ var('order_date_format') ~ "' reads "
                ~ percent(dates['configured'] / dates['sample']) ~ " of the first " ~ thousands(dates['sample'])
                ~ " order dates as dates from 1900 to the extraction date, and '" ~ dates['format'] ~ "' reads "
                ~ percent(dates['parsed'] / dates['sample']) ~ ".",
            "Set order_date_format: --vars '{order_date_format: \"" ~ dates['format'] ~ "\"}'.",
            input_lines(dates['line_ids'], input),
            "--vars '{check_order_date_format: false}' (if '" ~ var('order_date_format') ~ "' is right)")) -}}
    {%- endif -%}
    {{- return(none) -}}
{%- endmacro %}

{% macro gate_message(finding, hint, lines, threshold_vars) -%}
    {%- set message = ["the quality gate stopped the build before publishing; the tables you and segkit read are as "
        ~ "they were. " ~ finding ~ (" " ~ hint if hint else "")] -%}
    {%- if lines -%}
        {%- do message.append("Examples (line: its position in the input, then the mapped fields as read):") -%}
        {%- for line in lines -%}
            {%- do message.append("  " ~ line) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- do message.append(("If the data is right, raise the threshold: " ~ threshold_vars ~ ". " if threshold_vars
        else "") ~ "Every line and its reason is in " ~ build_schema() ~ ".int_lines_rejected.") -%}
    {{- return(message | join('\n')) -}}
{%- endmacro %}

{#- What to change, for the reason most lines were rejected for. -#}
{% macro rejection_hint(reason, lines, input) -%}
    {%- set dates = order_date_formats(input) if reason in ('unparseable', 'date_before_1900', 'future_date') else none -%}
    {%- set format_hint = ("order_date_format '" ~ var('order_date_format') ~ "' does not read them as dates from 1900 "
        ~ "to the extraction date, but '" ~ dates['format'] ~ "' reads " ~ percent(dates['parsed'] / dates['sample'])
        ~ " of the first " ~ thousands(dates['sample']) ~ " order dates: set --vars '{order_date_format: \""
        ~ dates['format'] ~ "\"}'.") if dates and dates['format'] else none -%}
    {%- if reason == 'unparseable' -%}
        {%- if lines | join(' ') | replace('"', '') != lines | join(' ') -%}
            {%- set stray = input_lines(unmatched_quote_lines(input), input) -%}
            {{- return("Their fields hold quote characters: the file's quoting was not recognised (one stray quote can "
                ~ "make the whole file read without quotes, so every quoted field with a comma splits). "
                ~ ("The first line with an unmatched quote is " ~ stray[0] ~ ". " if stray else "")
                ~ "Fix the quoting of the file, or say how it quotes: --vars '{csv_quote: \"\"}' when fields are never "
                ~ "quoted, csv_escape for the character before a quote inside a field.") -}}
        {%- endif -%}
        {%- set unread = run_query("select count(*), count(case when order_date is null then 1 end) from "
            ~ build_relation('int_lines_checked') ~ " where rejection_reason = 'unparseable'").rows[0] -%}
        {%- if unread[1] * 2 >= unread[0] -%}
            {{- return("Most have an order date that does not read: " ~ (format_hint or "set order_date_format to the "
                ~ "strptime format of your dates, e.g. '%d/%m/%Y %H:%M'.")) -}}
        {%- endif -%}
        {{- return("Most have a quantity, price or amount that does not read as a number: a decimal comma ('147,61'), "
            ~ "a thousands separator without decimals ('2,500'), or text. Say how the file writes numbers: "
            ~ "--vars '{decimal_separator: \",\", thousands_separator: \".\"}' for '1.234,50'.") -}}
    {%- endif -%}
    {%- set hints = {
        'date_before_1900': format_hint or "Check order_date_format ('" ~ var('order_date_format') ~ "').",
        'future_date': format_hint
            or "Check order_date_format ('" ~ var('order_date_format') ~ "') and extraction_date.",
        'missing_customer_id': "Check that the var columns maps customer_id to your column of customer ids ('"
            ~ var('columns').get('customer_id') ~ "').",
        'duplicate': "Each is an exact copy of an earlier line: check that transactions_path does not match one export "
            ~ "twice.",
        'non_product_code': "Check the vars non_product_codes and columns (product_id).",
        'zero_or_negative_price': "Check that the var columns maps unit_price or line_amount to your prices.",
        'extreme_quantity': "Check the vars extreme_quantity and columns (quantity).",
        'extreme_amount': "Check that the var columns maps unit_price or line_amount to your prices.",
        'after_analysis_date': "Check the var analysis_date.",
        'return_without_purchase': "Check the vars cancellation_prefix and columns (order_id)."} -%}
    {{- return(hints.get(reason)) -}}
{%- endmacro %}

{#- Customers with an id who keep no line and have none dated after the analysis date (those belong to a later
    snapshot), the reason most of their lines were rejected for, and three of their lines. -#}
{% macro customers_lost() -%}
    {%- set query -%}
        with customers as (
            select
                customer_id,
                max(case when rejection_reason is null and first_purchase_date is not null then 1 else 0 end) as kept,
                max(case when rejection_reason is null and line_count > lines_in_window then 1 else 0 end) as later
            from {{ build_relation('int_lines_aggregated_to_customers') }}
            where customer_id is not null
            group by customer_id
        ),

        lost_lines as (
            select
                coalesce(lines.rejection_reason, 'return_without_purchase') as reason,
                sum(lines.line_count) as line_count
            from {{ build_relation('int_lines_aggregated_to_customers') }} as lines
            inner join customers on lines.customer_id = customers.customer_id
            where customers.kept = 0 and customers.later = 0
            group by 1
        )

        select
            (select count(*) from customers) as customers,
            (select count(*) from customers where kept = 0 and later = 0) as lost,
            (select reason from lost_lines order by line_count desc, reason limit 1) as reason
    {%- endset -%}
    {%- set row = run_query(query).rows[0] -%}
    {%- set found = {'customers': row[0] | int, 'lost': row[1] | int, 'reason': row[2], 'line_ids': []} -%}
    {%- if found['lost'] >= var('quality_gate_min_lines') | int -%}
        {%- set lines -%}
            select lines.line_id
            from {{ build_relation('int_lines_checked') }} as lines
            inner join (
                select customer_id from {{ build_relation('int_lines_aggregated_to_customers') }}
                group by customer_id
                having max(case when rejection_reason is null and (first_purchase_date is not null
                    or line_count > lines_in_window) then 1 else 0 end) = 0
            ) as lost on lines.customer_id = lost.customer_id
            order by lines.line_id
            limit 3
        {%- endset -%}
        {%- do found.update({'line_ids': run_query(lines).columns[0].values() | list}) -%}
    {%- endif -%}
    {{- return(found) -}}
{%- endmacro %}

{#- The first three lines rejected for a reason. The checks' reasons come from int_lines_checked, which
    every build that checks the gate has built; the later two from int_lines_rejected, when built. -#}
{% macro rejected_line_ids(reason, built) -%}
    {%- set model = 'int_lines_rejected' if 'int_lines_rejected' in built
        else 'int_lines_checked' -%}
    {{- return(run_query("select line_id from " ~ build_relation(model) ~ " where rejection_reason = "
        ~ sql_string(reason) ~ " order by line_id limit 3").columns[0].values() | list) -}}
{%- endmacro %}

{#- The lines at these positions, read back from the input: 'line 14: InvoiceDate='13/01/2024', ...' with every
    mapped column (customer ids hidden when they are pseudonymised). -#}
{% macro input_lines(line_ids, input) -%}
    {%- if not line_ids -%}
        {{- return([]) -}}
    {%- endif -%}
    {%- set columns = [] -%}
    {%- for name, column in var('columns').items() if column and column not in columns -%}
        {%- do columns.append(column) -%}
    {%- endfor -%}
    {%- set query -%}
        select * from (
            select
                {{ input_line_number(input.kind) }} as line_number,
                {%- for column in columns %}
                cast({{ sql_identifier(column) }} as {{ dbt.type_string() }}) as field_{{ loop.index }}
                {{- ',' if not loop.last }}
                {%- endfor %}
            from {{ input.relation }}
        ) as numbered
        where line_number in ({{ line_ids | join(', ') }})
        limit {{ line_ids | length }}
    {%- endset -%}
    {%- set hidden = [var('columns').get('customer_id')] if var('pseudonymise_customer_ids') else [] -%}
    {%- set lines = [] -%}
    {%- for row in run_query(query).rows | sort(attribute='0') -%}
        {%- set fields = [] -%}
        {%- for column in columns -%}
            {%- set value = row[loop.index] -%}
            {%- set shown = '(hidden)' if column in hidden else ('(empty)' if value is none
                else "'" ~ (value[:60] ~ ('...' if value | length > 60 else '')) ~ "'") -%}
            {%- do fields.append(column ~ "=" ~ shown) -%}
        {%- endfor -%}
        {%- do lines.append("line " ~ row[0] ~ ": " ~ (fields | join(', '))) -%}
    {%- endfor -%}
    {{- return(lines) -}}
{%- endmacro %}

{#- How many of the first 10,000 order dates the configured format reads as plausible dates (1900 to the extraction
    date), against the common format that reads the most, with three lines only that one reads. None where the
    dates are not text. With min_lines, the other formats are tried only when the configured one leaves at least
    that many of the dates, and a tenth, unread: below that, no format can pass the gate's threshold. -#}
{% macro order_date_formats(input, min_lines=none) -%}
    {{- return(adapter.dispatch('order_date_formats', 'segkit')(input, min_lines)) -}}
{%- endmacro %}

{% macro default__order_date_formats(input, min_lines=none) -%}
    {{- return(none) -}}
{%- endmacro %}

{% macro duckdb__order_date_formats(input, min_lines=none) -%}
    {%- if source_column_kind('order_date', source_column_types(input)) != 'text' -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- if min_lines is not none -%}
        {%- set found = duckdb__order_date_formats_read(input, []) -%}
        {%- if found['sample'] - found['configured'] < [min_lines, 0.1 * found['sample']] | max -%}
            {{- return(found) -}}
        {%- endif -%}
    {%- endif -%}
    {%- set formats = [] -%}
    {%- for day in ['%d/%m/%Y', '%m/%d/%Y', '%d/%m/%y', '%m/%d/%y', '%d.%m.%Y', '%d.%m.%y', '%d-%m-%Y', '%m-%d-%Y',
                    '%Y-%m-%d', '%Y/%m/%d', '%Y%m%d', '%d-%b-%Y', '%d %b %Y'] -%}
        {%- for time in ['', ' %H:%M', ' %H:%M:%S', ' %I:%M %p', ' %I:%M:%S %p'] -%}
            {%- do formats.append(day ~ time) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{- return(duckdb__order_date_formats_read(input, formats)) -}}
{%- endmacro %}

{#- The order_date_formats of the configured format and these others. -#}
{% macro duckdb__order_date_formats_read(input, formats) -%}
    {%- set plausible = "between date '1900-01-01' and " ~ extraction_date() -%}
    {%- set parsed -%}
        with sample as (
            select {{ input_line_number(input.kind) }} as line_number, {{ mapped_column('order_date') }} as order_date_text
            from {{ input.relation }}
            limit 10000
        )

        select
            line_number,
            coalesce(cast({{ parse_timestamp('order_date_text') }} as date) {{ plausible }}, false) as configured
            {%- for format in formats %},
            coalesce(cast(try_strptime(order_date_text, {{ sql_string(format) }}) as date) {{ plausible }}, false)
                as format_{{ loop.index }}
            {%- endfor %}
        from sample
        where order_date_text is not null
    {%- endset -%}
    {%- set columns = ["count(*)", "count(case when configured then 1 end)"] -%}
    {%- for format in formats -%}
        {%- do columns.append("count(case when format_" ~ loop.index ~ " then 1 end)") -%}
    {%- endfor -%}
    {%- set row = run_query("select " ~ (columns | join(', ')) ~ " from (" ~ parsed ~ ") as parsed").rows[0] -%}
    {%- set found = {'sample': row[0] | int, 'configured': row[1] | int, 'parsed': row[1] | int, 'format': none,
                     'line_ids': []} -%}
    {%- for format in formats -%}
        {%- if row[loop.index + 1] > found['parsed'] -%}
            {%- do found.update({'parsed': row[loop.index + 1] | int, 'format': format, 'index': loop.index}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if found['format'] -%}
        {%- do found.update({'line_ids': run_query("select line_number from (" ~ parsed ~ ") as parsed where "
            ~ "not configured and format_" ~ found['index'] ~ " order by line_number limit 3").columns[0].values()
            | list}) -%}
    {%- endif -%}
    {{- return(found) -}}
{%- endmacro %}

{#- The first line whose fields hold an odd number of double quotes, read without the mapping (DuckDB). -#}
{% macro unmatched_quote_lines(input) -%}
    {{- return(adapter.dispatch('unmatched_quote_lines', 'segkit')(input)) -}}
{%- endmacro %}

{% macro default__unmatched_quote_lines(input) -%}
    {{- return([]) -}}
{%- endmacro %}

{% macro duckdb__unmatched_quote_lines(input) -%}
    {%- set query -%}
        select line_number from (
            select {{ input_line_number(input.kind) }} as line_number, cast(source as {{ dbt.type_string() }}) as line_text
            from {{ input.relation }} as source
        ) as numbered
        where (length(line_text) - length(replace(line_text, '"', ''))) % 2 = 1
        limit 1
    {%- endset -%}
    {{- return(run_query(query).columns[0].values() | list) -}}
{%- endmacro %}

{% macro build_relation(name) -%}
    {%- set node = graph.nodes['model.segkit.' ~ name] -%}
    {{- return(api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias)) -}}
{%- endmacro %}

{% macro percent(share) -%}
    {{- return('%.1f%%' | format(100 * share)) -}}
{%- endmacro %}

{% macro thousands(number) -%}
    {{- return('{:,}'.format(number | int)) -}}
{%- endmacro %}

{#- A round share above this one (to the next 5%), to suggest as a threshold. -#}
{% macro share_above(share) -%}
    {{- return('%g' | format([((share * 20) | round(0, 'floor') + 1) / 20, 1] | min)) -}}
{%- endmacro %}
