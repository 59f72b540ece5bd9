"""Assign customers to the segments of a stored run without refitting (read-only on the database).

A stored run is its feature transform (table ``feature_transform``) and its centroids in scaled units
(table ``segment_centroids``). `segkit.features.apply_transform` is the contract's formula in numpy,

    scaled = (min(max(log1p(x) if log_transform else x, clip_lower), clip_upper) - center) / scale

and `score` sends each customer to the nearest centroid with scikit-learn's
``pairwise_distances_argmin`` (what ``KMeans.predict`` does; ties go to the lowest segment id). The dbt
model ``customer_segments_scored`` does the same in SQL for every customer of ``customer_rfm``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from sklearn.metrics import pairwise_distances_argmin

from segkit import engine
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.features import apply_transform
from segkit.history import latest_run_id
from segkit.warehouse import require_table

CLUSTER_HINT = "Run `segkit cluster` first to fit segments."


@dataclass(frozen=True)
class StoredModel:
    """One run's transform and centroids, as read from the database."""

    run_id: str
    features: tuple[str, ...]
    parameters: pd.DataFrame          # rows of feature_transform in feature_order
    segment_ids: tuple[int, ...]      # ascending
    segment_names: tuple[str, ...]
    centroids: np.ndarray             # scaled units, one row per segment id, columns in feature order


def load_model(con, run_id: str | None = None) -> StoredModel:
    """Read a run's transform and centroids (the latest run when run_id is None)."""
    for table in ("cluster_runs", "feature_transform", "segment_centroids"):
        require_table(con, table, CLUSTER_HINT)
    run_id = run_id or latest_run_id(con)
    if run_id is None:
        raise SegkitError(f"No clustering run is stored yet. {CLUSTER_HINT}")
    parameters = con.execute(
        "select * exclude (run_id) from feature_transform where run_id = ? order by feature_order", [run_id]).df()
    if parameters.empty:
        raise SegkitError(f"Run {run_id} is not in feature_transform. Check the run id "
                          "(`select run_id from cluster_runs`) and try again.")
    centroids = con.execute(
        "select segment_id, segment_name, feature, value_scaled from segment_centroids where run_id = ?", [run_id]).df()
    wide = centroids.pivot(index="segment_id", columns="feature", values="value_scaled").sort_index()
    names = centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"].reindex(wide.index)
    features = tuple(parameters["feature"])
    return StoredModel(run_id, features, parameters, tuple(int(i) for i in wide.index), tuple(names),
                       wide[list(features)].to_numpy(dtype=float))


def score(model: StoredModel, customers: pd.DataFrame) -> pd.DataFrame:
    """Nearest segment for each row of customers (which holds every model feature, in original units)."""
    _check_values(model, customers)
    X = apply_transform(model.parameters, customers[list(model.features)].to_numpy(dtype=float))
    nearest = pairwise_distances_argmin(X, model.centroids)
    distance = np.sqrt(((X - model.centroids[nearest]) ** 2).sum(axis=1))
    ids, names = np.asarray(model.segment_ids), np.asarray(model.segment_names, dtype=object)
    scored = pd.DataFrame({
        "segment_id": ids[nearest],
        "segment_name": names[nearest],
        "distance_to_centroid": distance,
        "assignment_method": "scored",
        "run_id": model.run_id,
    }, index=customers.index)
    if "customer_id" in customers.columns:
        scored.insert(0, "customer_id", customers["customer_id"].astype(str))
    return scored


def _check_values(model: StoredModel, customers: pd.DataFrame) -> None:
    missing = [f for f in model.features if f not in customers.columns]
    if missing:
        raise SegkitError(f"Run {model.run_id} was fitted on {', '.join(model.features)}; the input lacks "
                          f"{', '.join(missing)}. Give a value for every feature and try again.")
    for feature, log in zip(model.features, model.parameters["log_transform"]):
        values = pd.to_numeric(customers[feature], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=float))
        if bad.any():
            rows = ", ".join(str(row + 1) for row in np.flatnonzero(bad)[:5])
            raise SegkitError(f"{int(bad.sum()):,} value(s) of {feature} are missing or not numbers (data row "
                              f"{rows}). Give a number for every customer and feature and try again.")
        negative = (values < 0).to_numpy()
        if log and negative.any():
            rows = ", ".join(str(row + 1) for row in np.flatnonzero(negative)[:5])
            raise SegkitError(f"{feature} cannot be negative (it is log-transformed: days, counts or money); "
                              f"see data row {rows}. Fix the input and try again.")


def assign_customers(settings: Settings, values: Mapping[str, float] | None = None, csv_path: Path | None = None,
                     run_id: str | None = None) -> pd.DataFrame:
    """Score one customer (feature -> value) or every row of a CSV file against a stored run, read-only."""
    if (values is None) == (csv_path is None):
        raise SegkitError("Give either feature values (e.g. --value recency_days=30) or a CSV file (--csv), not both.")
    if csv_path is not None:
        try:
            customers = pd.read_csv(csv_path, dtype={"customer_id": str})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
            raise SegkitError(f"Could not read {csv_path} as CSV ({error}). Check the path and the header.") from None
    else:
        customers = pd.DataFrame([dict(values)])
    with engine.connect(settings, read_only=True) as con:
        model = load_model(con, run_id)
    unused = sorted(set(values or {}) - set(model.features))
    if unused:
        raise SegkitError(f"Run {model.run_id} does not use {', '.join(unused)}; it was fitted on "
                          f"{', '.join(model.features)}. Give --value for those features only.")
    return score(model, customers)


def parse_values(pairs: tuple[str, ...]) -> dict[str, float]:
    """`feature=value` pairs (from --value options) as a dict of floats."""
    parsed = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not sep or not name.strip() or not math.isfinite(number):
            raise SegkitError(f"--value {pair!r} is not of the form feature=number, e.g. --value recency_days=30.")
        parsed[name.strip()] = number
    return parsed


def to_json(scored: pd.DataFrame) -> str:
    records = json.loads(scored.to_json(orient="records", double_precision=10))
    return json.dumps(records[0] if len(records) == 1 and "customer_id" not in scored.columns else records, indent=2)
