{#- Classic RFM: 1-5 quantile scores (5 is best) and the named segment from seed rfm_segment_rules.
    fm_score is the mean of the F and M scores; the first rule by priority that matches wins. -#}
with customers as (
    select * from {{ ref('customer_rfm') }}
),

rules as (
    select * from {{ ref('rfm_segment_rules') }}
),

recency_scores as (
    {{ quantile_scores('customers', 'recency_days', descending=true) }}
),

frequency_scores as (
    {{ quantile_scores('customers', 'frequency') }}
),

monetary_scores as (
    {{ quantile_scores('customers', 'monetary_total') }}
),

customers_scored as (
    select
        customers.customer_id,
        recency_scores.score as r_score,
        frequency_scores.score as f_score,
        monetary_scores.score as m_score
    from customers
    inner join recency_scores on customers.recency_days = recency_scores.value
    inner join frequency_scores on customers.frequency = frequency_scores.value
    inner join monetary_scores on customers.monetary_total = monetary_scores.value
),

customers_with_fm as (
    select
        *,
        cast(f_score + m_score as double) / 2 as fm_score
    from customers_scored
),

-- The first matching rule for each combination of scores that occurs (at most 5 x 9), not for each customer.
score_combinations as (
    select distinct r_score, fm_score
    from customers_with_fm
),

combinations_matched as (
    select
        score_combinations.r_score,
        score_combinations.fm_score,
        rules.rfm_segment,
        row_number() over (
            partition by score_combinations.r_score, score_combinations.fm_score order by rules.priority
        ) as match_order
    from score_combinations
    inner join rules
        on score_combinations.r_score between rules.r_score_min and rules.r_score_max
        and score_combinations.fm_score between rules.fm_score_min and rules.fm_score_max
),

customers_segmented as (
    select
        customers_with_fm.customer_id,
        cast(customers_with_fm.r_score as {{ dbt.type_string() }})
            || cast(customers_with_fm.f_score as {{ dbt.type_string() }})
            || cast(customers_with_fm.m_score as {{ dbt.type_string() }}) as rfm_score,
        combinations_matched.rfm_segment,
        customers_with_fm.r_score,
        customers_with_fm.f_score,
        customers_with_fm.m_score,
        customers_with_fm.fm_score
    from customers_with_fm
    left join combinations_matched
        on customers_with_fm.r_score = combinations_matched.r_score
        and customers_with_fm.fm_score = combinations_matched.fm_score
        and combinations_matched.match_order = 1
)

select * from customers_segmented
