"""Customer segmentation: one interface over three algorithms, a sampled fit, and assignment in SQL.

`run_clustering` is a straight line of small steps, each a function of its own:

    read_features -> transform -> select_k            (read, then close the database; fit in memory)
    check_features_unchanged -> order_segments -> match_segments -> stage_assignment -> profile_segments
    -> name_segments -> check_drift -> write_run      (one write transaction; a failure rolls it all back)

The database is closed while fitting, so a `dbt build` may replace customer_rfm meanwhile:
`check_features_unchanged` then stops the run before anything is written. `match_segments` (segkit.lineage)
gives the segments the ids of the matching segments of the previous run, and drift is measured against that
run's model (segkit.drift).

Algorithms (Settings.algorithm) all give the same output, centroids in scaled space equal to the means of
their clusters, via `fit_centroids`: ``kmeans`` (KMeans, explicit random_state and n_init), ``gmm`` (a
full-covariance Gaussian mixture; clusters are its most likely components) and ``agglomerative`` (Ward;
one tree per sample, cut at every k). Every customer then goes to the nearest centroid, so the delivered
segments are nearest-centroid regions whatever the algorithm.

Sampling: the model is fitted on a seeded random sample of at most Settings.fit_sample_size customers
(all of them when there are fewer): on a large sample k-means reaches the inertia of a fit on every
customer in a fraction of the time. Agglomerative is capped at AGGLOMERATIVE_CAP because Ward needs the
n(n-1)/2 pairwise distances, which grow with the square of the sample. The measurements behind both limits
are in bench/README.md.

Assignment runs inside the engine, DuckDB or Spark, with the SQL that scores every stored run
(segkit.sql.nearest_segment_sql): the transform, squared distances to each centroid, and the first minimum,
so ties go to the lowest segment id. Segment ids 1..k are ordered by mean monetary_total over all customers,
descending: a first SQL pass (`order_segments`) measures it, the second assigns with the centroids in that
order.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
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

from segkit import drift, engine, feature_mart, lineage, sql, store
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.feature_mart import FEATURE_TABLE, FeatureData
from segkit.feature_pipeline import build_pipeline, transform_parameters
from segkit.features import unscale
from segkit.model_selection import KChoice, choose_k, scan_k
from segkit.naming import name_segments
from segkit.profiling import profile_segments
from segkit.store import StoredRun
from segkit.warehouse import exclusive_run

N_INIT = 4
AGGLOMERATIVE_CAP = 10_000


@dataclass(frozen=True, eq=False)
class ClusterRun(StoredRun):
    """A run of `segkit cluster`: the run as stored, where its tables are, the seconds per step, and the drift of
    the data from the previous run's model, measured before refitting."""

    location: dict[str, str | None]  # engine.location
    timings: dict[str, float]
    drift: drift.DriftReport | None

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN becomes null), for `segkit cluster --json`."""
        return _json_safe({
            "run_id": self.run_id, "chosen_k": self.chosen_k, "k_reason": self.k_reason, "algorithm": self.algorithm,
            "n_customers": self.n_customers, "n_fit_sample": self.n_fit_sample,
            "segments": [asdict(segment) for segment in self.segments],
            "k_selection": [asdict(score) for score in self.k_selection], "warnings": list(self.warnings),
            **self.location, "timings": self.timings, "drift": asdict(self.drift) if self.drift else None,
        })


def run_clustering(settings: Settings, progress: Callable[[str], None] | None = None,
                   model_run_id: str | None = None) -> ClusterRun:
    """Segment every customer in settings.db_path and store the results; see the module docstring.

    With model_run_id nothing is fitted: every customer is scored with that run's stored model (its transform,
    centroids, k and features), a run of kind 'scored', so its segments are that run's segments.
    Only one run at a time per database: a second one stops at once (exit code 3) instead of interleaving.
    """
    with exclusive_run(Path(settings.db_path), "cluster"):
        return _run_clustering(settings, progress, model_run_id)


def _run_clustering(settings: Settings, progress: Callable[[str], None] | None,
                    model_run_id: str | None = None) -> ClusterRun:
    timings: dict[str, float] = {}
    step = partial(_step, timings, progress or (lambda message: None))
    limits = drift.thresholds(settings)
    model = None
    with step("read", "reading features"), engine.connect(settings, read_only=True) as con:
        if model_run_id is not None:
            model = store.read_run(con, model_run_id)
            settings = dataclasses.replace(settings, features=model.features, algorithm=model.algorithm,
                                           k=model.chosen_k)
        features = list(settings.features)
        data = feature_mart.read_features(con, features, fit_sample_size(settings), settings.seed)
        check_customer_count(data.n_customers, settings)
    if model is None:
        with step("transform", "transforming features"):
            pipeline = build_pipeline(features, settings.winsor_quantiles)
            X = pipeline.fit_transform(data.sample[features].to_numpy(dtype=float))
            parameters = transform_parameters(pipeline, features)
        ks, warnings = k_range(X, settings)
        with step("select_k", f"scanning k {ks[0]}..{ks[-1]}" if len(ks) > 1 else f"fitting k={ks[0]}"):
            choice = select_k(X, ks, settings)
    else:
        parameters, choice, warnings = model.transform, stored_choice(model), []
    warnings += choice.warnings

    with engine.connect(settings) as con, store.transaction(con):
        feature_mart.check_features_unchanged(con, features, data)
        created_at = datetime.now(timezone.utc)
        run_id = store.new_run_id(con, data.fingerprint, created_at)
        with step("assign", f"assigning {data.n_customers:,} customers in {engine.engine_name(settings)}"):
            centroids = order_segments(con, parameters, choice.centroids) if model is None else choice.centroids
            matching = lineage.match_segments(con, features, parameters, centroids, limits.match_threshold,
                                              settings.algorithm, data.analysis_date)
            warnings += [matching.warning] if matching.warning else []
            fitted_on = data.sample["customer_id"] if model is None else pd.Series([], dtype=str)
            store.stage_assignment(con, sql.nearest_segment_sql(parameters, matching.centroids, matching.segment_ids),
                                   fitted_on)
        with step("profile", "profiling and naming segments"):
            profiles, population, feature_profiles = profile_segments(con, features)
            user = {i: n for i, n in settings.segment_names.items() if i in matching.segment_ids}
            kept = {i: n for i, n in lineage.name_overrides(matching, user).items() if i not in user}
            names = name_segments(profiles, population, user, kept)
            names = {s: names.get(s, f"Segment {s}") for s in matching.segment_ids}
            warnings += segment_size_warnings(profiles, names, settings.min_segment_size)
            # A scored run is measured against its model's data; a fit against the run it continues.
            reference = model.run_id if model is not None else matching.previous_run_id
            drifted = drift.check_drift(con, reference, limits) if reference else None
            warnings += [drifted.message] if drifted is not None and drifted.refit_advised else []
        with step("write", "writing results"):
            tables = result_tables(settings, data, parameters, matching, choice, profiles, feature_profiles,
                                   names, warnings, created_at)
            tables["cluster_runs"] = tables["cluster_runs"].assign(
                kind="fit" if model is None else "scored", model_run_id=run_id if model is None else model.run_id)
            if model is None:  # drift is measured against the data of the fit
                tables["feature_reference_bins"] = drift.reference_bins(
                    con, parameters, f"(select customer_id from {store.ASSIGNMENT} where is_in_fit_sample)")
            if drifted is not None:
                tables["drift_checks"] = drift.drift_rows(drifted)
            store.write_run(con, run_id, names, tables, matching.previous_run_id, FEATURE_TABLE)
            stored = store.read_run(con, run_id)
    return ClusterRun(**vars(stored), location=engine.location(settings), timings=timings, drift=drifted)


def stored_choice(model: StoredRun) -> KChoice:
    """The k, centroids and k scan of a stored fit, for a run scored with its model."""
    return KChoice(model.chosen_k, f"Scored with the model of run {model.run_id} (as of {model.analysis_date}), "
                   f"which chose k={model.chosen_k}: {model.k_reason}", (), model.k_selection, model.centroids,
                   model.metrics.get("knee_k"), bool(model.metrics.get("knee_is_clear")))


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
    # One OpenMP thread: scikit-learn's k-means threads spin-wait, and were slower than one thread at every
    # size measured (bench/README.md).
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


def order_segments(con: duckdb.DuckDBPyConnection, parameters: pd.DataFrame, centroids: np.ndarray) -> np.ndarray:
    """The centroids re-ordered by the mean monetary_total of all customers nearest to them, descending."""
    assigned = sql.nearest_segment_sql(parameters, centroids, keep=["monetary_total"])
    means = dict(con.execute(f"select segment_id, avg(monetary_total) from ({assigned}) as assigned group by all"
                             ).fetchall())
    order = sorted(range(len(centroids)), key=lambda i: (-float(means.get(i + 1, -np.inf)), i))
    return centroids[order]


def segment_size_warnings(profiles: pd.DataFrame, names: dict[int, str], min_size: int) -> list[str]:
    sizes = profiles["customers"].reindex(list(names), fill_value=0)
    # No exact count: the warning is printed in the report, where a small segment's size must stay hidden.
    return [f"Segment {s} ({names[s]}) has fewer than {min_size:,} customers (min_segment_size); "
            "consider a smaller k." for s, n in sizes.items() if n < min_size]


def result_tables(settings: Settings, data: FeatureData, parameters: pd.DataFrame, matching: lineage.Matching,
                  choice: KChoice, profiles: pd.DataFrame, feature_profiles: pd.DataFrame, names: dict[int, str],
                  warnings: Sequence[str], created_at: datetime) -> dict[str, pd.DataFrame]:
    """The rows (without run_id) of the run's tables that are neither per customer nor drift's."""
    features = list(parameters["feature"])
    centroids = matching.centroids
    ids = np.array(matching.segment_ids)  # the (stable) segment id of each row of centroids, ascending
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
        "segment_matches": lineage.match_rows(matching, names),
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
