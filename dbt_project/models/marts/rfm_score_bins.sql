{#- The cut points behind each RFM score: value range and customer count per dimension and score.
    An empty score (customers = 0) means ties were too large to fill it. -#}
with customers as (
    select * from {{ ref('customer_rfm') }}
),

scores as (
    select * from {{ ref('customer_rfm_scores') }}
),

customer_values as (
    select
        scores.r_score,
        scores.f_score,
        scores.m_score,
        customers.recency_days,
        customers.frequency,
        customers.monetary_total
    from scores
    inner join customers on scores.customer_id = customers.customer_id
),

values_by_score as (
    select 'recency_days' as dimension, r_score as score, recency_days as value from customer_values
    union all
    select 'frequency' as dimension, f_score as score, frequency as value from customer_values
    union all
    select 'monetary_total' as dimension, m_score as score, monetary_total as value from customer_values
),

all_bins as (
    select dimension, score
    from (values ('recency_days'), ('frequency'), ('monetary_total')) as dimensions (dimension)
    cross join (values (1), (2), (3), (4), (5)) as scores (score)
),

bins as (
    select
        all_bins.dimension,
        cast(all_bins.score as integer) as score,
        cast(count(values_by_score.value) as integer) as customers,
        cast(min(values_by_score.value) as double) as min_value,
        cast(max(values_by_score.value) as double) as max_value
    from all_bins
    left join values_by_score
        on all_bins.dimension = values_by_score.dimension
        and all_bins.score = values_by_score.score
    group by all_bins.dimension, all_bins.score
)

select * from bins
