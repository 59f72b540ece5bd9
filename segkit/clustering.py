"""Customer segmentation: one interface over three algorithms, a sampled fit, and assignment in SQL.

`run_clustering` is a straight line of small steps, each a function of its own:

    read_features -> transform -> select_k            (read, then close the database; fit in memory)
    check_features_unchanged -> order_segments -> store_assignment -> profile_segments -> name_segments
    -> write_run                                      (one write transaction; a failure rolls it all back)

The database is closed while fitting, so a `dbt build` may replace customer_rfm meanwhile:
`check_features_unchanged` then stops the run before anything is written.

Right after `order_segments`, `segkit.history` re-maps the ids to the previous run's (stable ids; the
previous run has the same features, algorithm and k) and checks drift against that model; after
`write_run` it records matches, drift and migration.

Algorithms (Settings.algorithm) all give the same output, centroids in scaled space equal to the means of
their clusters, via `fit_centroids`: ``kmeans`` (KMeans, explicit random_state and n_init), ``gmm`` (a
full-covariance Gaussian mixture; clusters are its most likely components) and ``agglomerative`` (Ward;
one tree per sample, cut at every k). Every customer then goes to the nearest centroid, so the delivered
segments are nearest-centroid regions whatever the algorithm.

Sampling: the model is fitted on a seeded random sample of at most Settings.fit_sample_size customers
(all of them when there are fewer); agglomerative is capped at AGGLOMERATIVE_CAP because Ward needs the
n(n-1)/2 pairwise distances: 10,000 points take about 400 MB and 5 s, 20,000 take 1.6 GB and 22 s.
Measured by bench/bench_cluster.py at k=8 on 2,000,000 customers: KMeans on all of them 4.7 s,
MiniBatchKMeans on all 11.4 s with a 1.8% worse inertia, KMeans on the 200,000 sample 0.6 s with the
same inertia (to 0.02%); hence KMeans on a sample. The default sample is 50,000: on the 332,500 customers
of 10M benchmark lines it chose the same k (7) as a 200,000 sample, and assigned every customer alike
but for 0.1% (adjusted Rand index 0.9989), while the k scan took 7.6 s instead of 12.9 s.

Assignment runs inside the engine, DuckDB or Spark (`assignment_sql`, plain SQL both run): the stored
transform, squared distances to each centroid, and the first minimum, so ties go to the lowest segment
id. Segment ids 1..k are ordered by mean monetary_total over all customers, descending: a first SQL pass
(`order_segments`) measures it, the second assigns with the centroids in that order.
"""

from __future__ import annotations

import json
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import cut_tree, ward
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from segkit import engine, history, segments_io
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.feature_pipeline import build_pipeline, transform_parameters
from segkit.features import scaled_sql, unscale
from segkit.model_selection import KChoice, KScore, choose_k, nearest_centroid, scan_k
from segkit.naming import name_segments
from segkit.warehouse import exclusive_run

N_INIT = 4
AGGLOMERATIVE_CAP = 10_000


@dataclass(frozen=True)
class SegmentSummary:
    segment_id: int
    name: str
    customers: int
    customer_share: float
    revenue_share: float


@dataclass(frozen=True)
class ClusterRun:
    """The outcome of one `segkit cluster` run, as the CLI, the report and the tests see it."""

    run_id: str
    chosen_k: int
    k_reason: str
    algorithm: str
    n_customers: int
    n_fit_sample: int
    segments: tuple[SegmentSummary, ...]
    k_selection: tuple[KScore, ...]
    warnings: tuple[str, ...]
    location: dict[str, str | None]  # where the tables are: engine.location
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    drift: history.DriftReport | None = None  # the data against the previous run's model, before refitting

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN becomes null), for `segkit cluster --json`; the location's keys in its place."""
        summary: dict[str, Any] = {}
        for key, value in asdict(self).items():
            summary.update(value if key == "location" else {key: value})
        return _json_safe(summary)


def run_clustering(settings: Settings, progress: Callable[[str], None] | None = None) -> ClusterRun:
    """Segment every customer in settings.db_path and store the results; see the module docstring.

    Only one run at a time per database: a second one stops at once (exit code 3) instead of interleaving.
    """
    with exclusive_run(Path(settings.db_path), "cluster"):
        return _run_clustering(settings, progress)


def _run_clustering(settings: Settings, progress: Callable[[str], None] | None) -> ClusterRun:
    timings: dict[str, float] = {}
    step = partial(_step, timings, progress or (lambda message: None))
    features = list(settings.features)
    limits = history.thresholds(settings)
    with step("read", "reading features"), engine.connect(settings, read_only=True) as con:
        data = segments_io.read_features(con, features, fit_sample_size(settings), settings.seed)
        check_customer_count(data.n_customers, settings)
    with step("transform", "transforming features"):
        pipeline = build_pipeline(features, settings.winsor_quantiles)
        X = pipeline.fit_transform(data.sample[features].to_numpy(dtype=float))
        parameters = transform_parameters(pipeline, features)
    ks, warnings = k_range(X, settings)
    with step("select_k", f"scanning k {ks[0]}..{ks[-1]}" if len(ks) > 1 else f"fitting k={ks[0]}"):
        choice = select_k(X, ks, settings)
    warnings += choice.warnings

    with engine.connect(settings) as con, segments_io.transaction(con):
        segments_io.check_features_unchanged(con, features, data)
        created_at = datetime.now(timezone.utc)
        run_id = new_run_id(con, data.fingerprint, created_at)
        with step("assign", f"assigning {data.n_customers:,} customers in {engine.engine_name(settings)}"):
            centroids = order_segments(con, parameters, choice.centroids)
            # Stable ids: the previous run's ids for matching segments (segkit.history.match_segments).
            matching = history.match_segments(con, features, parameters, centroids, limits.match_threshold,
                                              settings.algorithm, data.analysis_date)
            centroids = matching.centroids
            warnings += [matching.warning] if matching.warning else []
            segments_io.store_assignment(con, assignment_sql(parameters, centroids, matching.segment_ids),
                                         data.sample["customer_id"])
        with step("profile", "profiling and naming segments"):
            profiles, population, feature_profiles = segments_io.profile_segments(con, features)
            names = name_segments(profiles, population, history.name_overrides(matching, settings.segment_names))
            names = {s: names.get(s, f"Segment {s}") for s in matching.segment_ids}
            warnings += segment_size_warnings(profiles, names, settings.min_segment_size)
            drift = history.check_drift(con, matching.previous_run_id, limits) if matching.previous_run_id else None
            warnings += [drift.message] if drift is not None and drift.refit_advised else []
        with step("write", "writing results"):
            tables = result_tables(settings, data, parameters, centroids, choice, profiles, feature_profiles,
                                   names, warnings, created_at)
            segments_io.write_run(con, run_id, names, tables)
            history.record_run(con, run_id, matching, names, drift)

    segments = tuple(SegmentSummary(s, names[s], int(p.customers), float(p.customer_share), float(p.revenue_share))
                     for s, p in profiles.iterrows())
    return ClusterRun(run_id, choice.k, choice.reason, settings.algorithm, data.n_customers, len(data.sample),
                      segments, choice.scores, tuple(warnings), engine.location(settings), timings, drift)


def fit_sample_size(settings: Settings) -> int:
    cap = AGGLOMERATIVE_CAP if settings.algorithm == "agglomerative" else settings.fit_sample_size
    return min(settings.fit_sample_size, cap)


def check_customer_count(n_customers: int, settings: Settings) -> None:
    smallest_k = settings.k or settings.k_min
    if n_customers <= smallest_k:
        raise SegkitError(f"There are only {n_customers:,} customers, too few for k={smallest_k} segments "
                          f"(at least {smallest_k + 1} are needed). Load more data, or lower k (or k_min).")


def k_range(X: np.ndarray, settings: Settings) -> tuple[list[int], list[str]]:
    """The ks to try (the forced k, or k_min..k_max limited by the distinct points) and a warning if limited."""
    distinct = len(np.unique(X, axis=0))
    smallest_k = settings.k or settings.k_min
    if distinct < smallest_k:
        raise SegkitError(f"The customers have only {distinct} distinct combinations of "
                          f"{', '.join(settings.features)} (after clipping outliers), so at most {distinct} "
                          f"segments can be told apart but k={smallest_k} was asked for. Lower k (or k_min), "
                          "or add features that tell customers apart, e.g. tenure_days.")
    if settings.k:
        return [settings.k], []
    k_max = min(settings.k_max, distinct, len(X) - 1)
    if k_max == settings.k_max:
        return list(range(settings.k_min, k_max + 1)), []
    return list(range(settings.k_min, k_max + 1)), [
        f"k was scanned over {settings.k_min}..{k_max} instead of {settings.k_min}..{settings.k_max}: the fit "
        f"sample has only {len(X):,} customers with {distinct:,} distinct profiles (after clipping outliers)."]


def select_k(X: np.ndarray, ks: Sequence[int], settings: Settings) -> KChoice:
    scores, centroids = scan_k(X, ks, partial(fit_centroids, settings.algorithm), settings.seed,
                               settings.silhouette_sample_size, settings.stability_resamples)
    return choose_k(scores, centroids, settings.k)


def fit_centroids(algorithm: str, X: np.ndarray, ks: Sequence[int], seed: int) -> dict[int, np.ndarray]:
    """Cluster X for each k; the centroids are cluster means in scaled space, shape (k, n_features)."""
    # One OpenMP thread: scikit-learn's k-means threads spin, and lost to one thread at every size measured
    # on this 2-core machine: 9 ks x 4 inits on 200,000 customers took 3.5 s with 1 thread and 5.3 s with 2
    # when idle; on 50,000 with another process running, 1.1 s and 6.3 s; the 4,000-customer demo 2.4 s and 23 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit_centroids(algorithm, X, ks, seed)


def _fit_centroids(algorithm: str, X: np.ndarray, ks: Sequence[int], seed: int) -> dict[int, np.ndarray]:
    if algorithm == "agglomerative":
        cuts = cut_tree(ward(X), n_clusters=list(ks))
        return {k: _cluster_means(X, cuts[:, i], np.empty((k, X.shape[1]))) for i, k in enumerate(ks)}
    fits = {}
    for k in ks:
        if algorithm == "kmeans":
            model = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(X)
            fits[k] = _cluster_means(X, model.labels_, model.cluster_centers_)
        elif algorithm == "gmm":
            model = GaussianMixture(n_components=k, covariance_type="full", n_init=1, random_state=seed)
            try:
                fits[k] = _cluster_means(X, model.fit(X).predict(X), model.means_)
            except ValueError as error:  # ill-defined covariances, e.g. features with very few distinct values
                raise SegkitError(f"The Gaussian mixture could not be fitted with k={k} ({error}). Use "
                                  "--algorithm kmeans, a smaller k, or features with more distinct values.") from None
        else:
            raise SegkitError(f"Unknown algorithm {algorithm!r}; choose kmeans, gmm or agglomerative.")
    return fits


def _cluster_means(X: np.ndarray, labels: np.ndarray, own_centres: np.ndarray) -> np.ndarray:
    # A mixture component can end up with no points of its own; it then keeps the model's centre.
    means = np.array(own_centres, dtype=float)
    for label in np.unique(labels):
        means[label] = X[labels == label].mean(axis=0)
    return means


def assignment_sql(parameters: pd.DataFrame, centroids: np.ndarray, segment_ids: Sequence[int] | None = None) -> str:
    """SQL giving every customer's segment_id, distance_to_centroid and monetary_total (DuckDB and Spark alike).

    Row i of centroids is segment segment_ids[i] (default i + 1); ties go to the first row.
    """
    segment_ids = list(segment_ids) if segment_ids is not None else list(range(1, len(centroids) + 1))
    scaled = ",\n            ".join(f"{scaled_sql(row)} as x{i}" for i, (_, row) in enumerate(parameters.iterrows()))
    squared = ",\n            ".join(
        " + ".join(f"(x{i} - {_num(c)}) * (x{i} - {_num(c)})" for i, c in enumerate(centroid)) + f" as d{j}"
        for j, centroid in enumerate(centroids)
    )
    nearest = f"least({', '.join(f'd{j}' for j in range(len(centroids)))})" if len(centroids) > 1 else "d0"
    segment = " ".join(f"when d{j} = nearest then {int(s)}" for j, s in enumerate(segment_ids))
    return f"""
        with scaled as (
            select customer_id, monetary_total,
            {scaled}
            from {segments_io.FEATURE_TABLE}
        ),
        distances as (
            select customer_id, monetary_total,
            {squared}
            from scaled
        ),
        nearest_distances as (select *, {nearest} as nearest from distances)
        select customer_id, cast(case {segment} end as integer) as segment_id,
            sqrt(nearest) as distance_to_centroid, monetary_total
        from nearest_distances
    """


def order_segments(con: duckdb.DuckDBPyConnection, parameters: pd.DataFrame, centroids: np.ndarray) -> np.ndarray:
    """The centroids re-ordered by the mean monetary_total of all customers nearest to them, descending."""
    means = dict(con.execute(
        f"select segment_id, avg(monetary_total) from ({assignment_sql(parameters, centroids)}) as assigned "
        "group by all"
    ).fetchall())
    order = sorted(range(len(centroids)), key=lambda i: (-float(means.get(i + 1, -np.inf)), i))
    return centroids[order]


def new_run_id(con: duckdb.DuckDBPyConnection, fingerprint: str, created_at: datetime) -> str:
    """UTC time + 8 hex of the data fingerprint; a second run in the same second gets a -2, -3 ... suffix."""
    base = f"{created_at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{fingerprint[:8]}"
    run_id, n = base, 1
    while segments_io.run_id_taken(con, run_id):
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def segment_size_warnings(profiles: pd.DataFrame, names: dict[int, str], min_size: int) -> list[str]:
    sizes = profiles["customers"].reindex(list(names), fill_value=0)
    # No exact count: the warning is printed in the report, where a small segment's size must stay hidden.
    return [f"Segment {s} ({names[s]}) has fewer than {min_size:,} customers (min_segment_size); "
            "consider a smaller k." for s, n in sizes.items() if n < min_size]


def result_tables(settings: Settings, data: segments_io.FeatureData, parameters: pd.DataFrame,
                  centroids: np.ndarray, choice: KChoice, profiles: pd.DataFrame, feature_profiles: pd.DataFrame,
                  names: dict[int, str], warnings: Sequence[str], created_at: datetime) -> dict[str, pd.DataFrame]:
    """The rows (without run_id) of every history table that is not filled in SQL."""
    features = list(parameters["feature"])
    ids = np.array(sorted(names))  # the (stable) segment id of each row of centroids, ascending
    centroid_rows = pd.DataFrame({
        "segment_id": np.repeat(ids, len(features)),
        "segment_name": [names[s] for s in np.repeat(ids, len(features))],
        "feature": features * len(ids),
        "feature_order": list(parameters["feature_order"]) * len(ids),
        "value": unscale(parameters, centroids).ravel(),
        "value_scaled": centroids.ravel(),
    })
    z_scores = centroid_rows[["segment_id", "feature", "value_scaled"]].rename(columns={"value_scaled": "z_score"})
    chosen = next(score for score in choice.scores if score.is_chosen)
    run = {
        "created_at": created_at.astimezone(timezone.utc).replace(tzinfo=None),
        "analysis_date": data.analysis_date,
        "algorithm": settings.algorithm,
        "features": json.dumps(features),
        "settings": json.dumps(settings.to_json_dict(), default=str),
        "chosen_k": choice.k,
        "k_reason": choice.reason,
        "metrics": json.dumps(_json_safe({**asdict(chosen), "knee_k": choice.knee_k,
                                          "knee_is_clear": choice.knee_is_clear})),
        "n_customers": data.n_customers,
        "n_fit_sample": len(data.sample),
        "data_fingerprint": data.fingerprint,
        "library_versions": json.dumps(library_versions()),
        "warnings": json.dumps(list(warnings)),
    }
    return {
        "cluster_runs": pd.DataFrame([run]),
        "k_selection": pd.DataFrame([asdict(score) for score in choice.scores]),
        "feature_transform": parameters,
        "segment_centroids": centroid_rows,
        "segment_profiles": profiles.assign(segment_name=[names[s] for s in profiles.index]).reset_index(),
        "segment_feature_profiles": feature_profiles.merge(z_scores, on=["segment_id", "feature"], how="left"),
    }


def library_versions() -> dict[str, str]:
    packages = ("scikit-learn", "scipy", "numpy", "pandas", "duckdb")
    return {"python": platform.python_version(), **{package: version(package) for package in packages}}


@contextmanager
def _step(timings: dict[str, float], progress: Callable[[str], None], name: str, message: str) -> Iterator[None]:
    progress(message)
    start = time.perf_counter()
    yield
    timings[name] = round(time.perf_counter() - start, 3)


def _num(value: float) -> str:
    return f"cast({float(value)!r} as double)"


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    return value
