{#- One spelling per customer: Unicode-normalised (NFC), trimmed of any Unicode space or zero-width mark, without
    the float suffix spreadsheets add ('13085.0' is 13085); a keyed pseudonym instead when the var
    pseudonymise_customer_ids is on (segkit/pseudonyms.py registers segkit_pseudonym on dbt's connection). -#}
{% macro customer_id(expression) -%}
    {{ return(adapter.dispatch('customer_id', 'segkit')(expression)) }}
{%- endmacro %}

{% macro default__customer_id(expression) -%}
    {%- set normalised -%}
        nullif(regexp_replace(regexp_replace(nfc_normalize({{ expression }}),
            '^[\pZ\s\x{200b}\x{feff}]+|[\pZ\s\x{200b}\x{feff}]+$', '', 'g'), '\.0+$', ''), '')
    {%- endset -%}
    {{- 'segkit_pseudonym(' ~ normalised ~ ')' if var('pseudonymise_customer_ids') else normalised -}}
{%- endmacro %}
