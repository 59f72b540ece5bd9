"""Assign customers to the segments of a stored run without refitting (read-only on the database).

A stored run is its feature transform and its centroids (segkit.store.StoredRun). `score` runs the SQL that
scores customers against a run (segkit.sql.nearest_segment_sql) on an in-memory DuckDB holding the given
rows: the same SQL that assigned the run's customers and that the dbt model ``customer_segments_scored``
runs for every customer of ``customer_rfm``, so each gives a customer the same segment (ties go to the lowest
segment id).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import duckdb
import numpy as np
import pandas as pd

from segkit import engine, sql, store
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.store import StoredRun

INPUT = "segkit_customers"


def score(run: StoredRun, customers: pd.DataFrame) -> pd.DataFrame:
    """Nearest segment for each row of customers (which holds every feature of the run, in original units)."""
    _check_values(run, customers)
    rows = pd.DataFrame({"customer_id": np.arange(len(customers)),
                         **{f: pd.to_numeric(customers[f]).to_numpy(dtype=float) for f in run.features}})
    scoring = sql.nearest_segment_sql(run.transform, run.centroids, run.segment_ids, customers=INPUT)
    with duckdb.connect() as con:
        con.register(INPUT, rows)
        nearest = con.execute(f"select * from ({scoring}) as scored order by customer_id").df()
    names = dict(zip(run.segment_ids, run.segment_names))
    scored = pd.DataFrame({
        "segment_id": nearest["segment_id"].to_numpy(),
        "segment_name": nearest["segment_id"].map(names).to_numpy(),
        "distance_to_centroid": nearest["distance_to_centroid"].to_numpy(),
        "assignment_method": "scored",
        "run_id": run.run_id,
    }, index=customers.index)
    if "customer_id" in customers.columns:
        scored.insert(0, "customer_id", customers["customer_id"].astype(str))
    return scored


def _check_values(run: StoredRun, customers: pd.DataFrame) -> None:
    missing = [f for f in run.features if f not in customers.columns]
    if missing:
        raise SegkitError(f"Run {run.run_id} was fitted on {', '.join(run.features)}; the input lacks "
                          f"{', '.join(missing)}. Give a value for every feature and try again.")
    for feature, log in zip(run.transform["feature"], run.transform["log_transform"]):
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
        run = store.read_run(con, run_id)
    unused = sorted(set(values or {}) - set(run.features))
    if unused:
        raise SegkitError(f"Run {run.run_id} does not use {', '.join(unused)}; it was fitted on "
                          f"{', '.join(run.features)}. Give --value for those features only.")
    return score(run, customers)


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
