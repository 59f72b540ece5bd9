{#- A 1-5 quantile score from a value's mid-rank percentile. Tied values always share one score,
    so a tie can never be split across bins at random; when ties are large, a score can be left empty,
    which rfm_score_bins shows and the test rfm_score_bins_not_empty warns about.
    One row per distinct value of the relation, with its score: a value's rank is one more than the rows before
    it, its ties are its rows, so the scores need a sort of the distinct values only, not of every row. -#}
{% macro quantile_scores(relation, value, descending=false) -%}
    select
        {{ value }} as value,
        cast(1 + floor(5 * (
            cast(coalesce(sum(count(*)) over (
                order by {{ value }}{{ ' desc' if descending }} rows between unbounded preceding and 1 preceding
            ), 0) as bigint)
            + 0.5 * count(*)
        ) / cast(sum(count(*)) over () as bigint)) as integer) as score
    from {{ relation }}
    group by {{ value }}
{%- endmacro %}
