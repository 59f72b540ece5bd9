{#- A 1-5 quantile score from a value's mid-rank percentile. Tied values always share one score,
    so a tie can never be split across bins at random; when ties are large, a score can be left empty,
    which rfm_score_bins shows and the test rfm_score_bins_not_empty warns about. -#}
{% macro quantile_score(value, descending=false) -%}
    cast(1 + floor(5 * (
        rank() over (order by {{ value }}{{ ' desc' if descending }}) - 1
        + 0.5 * count(*) over (partition by {{ value }})
    ) / count(*) over ()) as integer)
{%- endmacro %}
