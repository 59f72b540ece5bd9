-- Every possible (R score, FM score) pair matches at least one rule of seed rfm_segment_rules.
with rules as (
    select * from {{ ref('rfm_segment_rules') }}
),

score_pairs as (
    select r_score, f_score, m_score, (f_score + m_score) / 2.0 as fm_score
    from range(1, 6) as r (r_score)
    cross join range(1, 6) as f (f_score)
    cross join range(1, 6) as m (m_score)
),

uncovered_pairs as (
    select score_pairs.*
    from score_pairs
    where not exists (
        select 1
        from rules
        where score_pairs.r_score between rules.r_score_min and rules.r_score_max
          and score_pairs.fm_score between rules.fm_score_min and rules.fm_score_max
    )
)

select * from uncovered_pairs
