"""SQL over a stored run, from the macros of stored_run.sql, which dbt reads too: which run is the latest, a
customer's features in a run's scaled units, and a customer's nearest segment.

segkit's own assignment, `segkit assign`, drift and the dbt model customer_segments_scored all score with
`nearest_segment_sql`, so they give every customer the same segment. The SQL runs on DuckDB and on Spark.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import jinja2
import numpy as np
import pandas as pd

from segkit.warehouse import quote_identifier

TRANSFORM_COLUMNS = ("feature", "log_transform", "clip_lower", "clip_upper", "center", "scale")


@lru_cache(maxsize=None)
def _macros() -> Any:
    text = resources.files("segkit").joinpath("sql", "stored_run.sql").read_text(encoding="utf-8")
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(text).module


def latest_runs_sql(limit: int = 1) -> str:
    """The run ids of table cluster_runs, latest first, at most `limit` of them."""
    return str(_macros().latest_runs_sql("cluster_runs", int(limit)))


def scaled_sql(step: Any) -> str:
    """The SQL expression of one feature in scaled units; step is its row of feature_transform."""
    return str(_macros().scaled_feature_sql(quote_identifier(step["feature"]), _step(step)))


def scaled_values_sql(transform: pd.DataFrame, customers: str) -> str:
    """customer_id, feature, value_scaled: every feature of every row of `customers`, one row each."""
    return "\n        union all ".join(
        f"select customer_id, '{step['feature']}' as feature, {scaled_sql(step)} as value_scaled from {customers}"
        for _, step in transform.iterrows())


def nearest_segment_sql(transform: pd.DataFrame, centroids: np.ndarray, segment_ids: Sequence[int] | None = None,
                        customers: str = "customer_rfm", keep: Sequence[str] = ()) -> str:
    """customer_id, segment_id, distance_to_centroid and the `keep` columns of every row of `customers`.

    transform: rows of feature_transform in feature order; row i of centroids (scaled units) is segment
    segment_ids[i] (default i + 1). Ties go to the first row.
    """
    centroids = np.asarray(centroids, dtype=float)
    segment_ids = list(segment_ids) if segment_ids is not None else list(range(1, len(centroids) + 1))
    steps = [_step(step) for _, step in transform.iterrows()]
    return str(_macros().nearest_segment_sql(
        customers, [quote_identifier(step["feature"]) for step in steps], steps,
        [[float(value) for value in row] for row in centroids], [int(i) for i in segment_ids], list(keep)))


def _step(step: Any) -> dict[str, Any]:
    """A feature_transform row as plain Python values: Jinja writes a float as repr writes it, exactly."""
    return {"feature": str(step["feature"]), "log_transform": bool(step["log_transform"]),
            **{name: float(step[name]) for name in TRANSFORM_COLUMNS[2:]}}
