"""Segment profiles: size, revenue and the typical customer of each segment of the run being written.

They are measured in SQL on the staged assignment (segkit.store.ASSIGNMENT) and the feature mart, so no
per-customer row leaves the engine.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from segkit.feature_mart import FEATURE_TABLE
from segkit.store import ASSIGNMENT
from segkit.warehouse import quote_identifier

PROFILE_STATS = ("recency_days", "frequency", "monetary_total")


def profile_segments(con, features: Sequence[str]) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Segment profiles (indexed by segment_id), the same stats for all customers, and per-feature profiles."""
    stats = ", ".join(
        f"cast(median({q}) as double) as median_{c}, cast(avg({q}) as double) as mean_{c}"
        for c, q in zip(PROFILE_STATS, map(quote_identifier, PROFILE_STATS))
    )
    joined = f"{ASSIGNMENT} as a join {FEATURE_TABLE} as r using (customer_id)"
    profiles = con.execute(f"""
        select a.segment_id, count(*) as customers, cast(sum(r.monetary_total) as double) as revenue, {stats}
        from {joined} group by a.segment_id order by a.segment_id
    """).df().set_index("segment_id")
    population = con.execute(f"select {stats} from {FEATURE_TABLE}").df().iloc[0]
    profiles.insert(1, "customer_share", profiles["customers"] / profiles["customers"].sum())
    profiles.insert(3, "revenue_share", profiles["revenue"] / profiles["revenue"].sum())
    profiles = profiles[["customers", "customer_share", "revenue", "revenue_share",
                         *(f"{kind}_{c}" for c in PROFILE_STATS for kind in ("median", "mean"))]]

    long = " union all ".join(
        f"select a.segment_id, '{feature}' as feature, cast({quote_identifier(feature)} as double) as value "
        f"from {joined}" for feature in features)
    # One pass over the values gives the figures of each segment and of the population (grouped by feature alone).
    feature_profiles = con.execute(f"""
        with feature_stats as (
            select segment_id, feature, avg(value) as mean, median(value) as median
            from ({long}) as feature_values
            group by grouping sets ((segment_id, feature), (feature))
        )
        select by_segment.segment_id, by_segment.feature, by_segment.mean, by_segment.median,
            overall.mean as population_mean, overall.median as population_median,
            by_segment.mean / nullif(overall.mean, 0) as index_vs_population
        from feature_stats as by_segment
        join feature_stats as overall
            on by_segment.feature = overall.feature and overall.segment_id is null
        where by_segment.segment_id is not null
        order by by_segment.segment_id, by_segment.feature
    """).df()
    return profiles, population, feature_profiles
