"""Benchmark `segkit cluster` on 2,000,000 synthetic customers, and KMeans vs MiniBatchKMeans vs a sampled fit.

Usage: .venv/bin/python bench/bench_cluster.py [--customers 2000000] [--db /tmp/bench.duckdb]
Prints the total time, the time per step and the peak memory of run_clustering with default settings,
then fit times (and inertia on all customers) of the three ways of fitting k-means at the chosen k.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans

from segkit.clustering import N_INIT, run_clustering
from segkit.config import Settings
from segkit.feature_pipeline import build_pipeline
from segkit.model_selection import nearest_centroid


def make_customers(n: int, seed: int = 7) -> pd.DataFrame:
    """Heavy-tailed RFM data: a few loose groups, log-normal spend, geometric order counts, long recency tail."""
    rng = np.random.default_rng(seed)
    group = rng.choice(4, size=n, p=[0.1, 0.25, 0.35, 0.3])
    frequency = 1 + rng.geometric(1 / np.array([12.0, 4.0, 1.5, 1.2])[group]) - 1
    recency = np.minimum(730, np.ceil(rng.lognormal(np.log([10, 40, 120, 350])[group], 0.6))).astype(int)
    monetary = np.round(frequency * rng.lognormal(np.log([80, 50, 35, 25])[group], 0.8), 2) + 0.01
    return pd.DataFrame({
        "customer_id": np.char.add("C", np.arange(n).astype(str)),
        "recency_days": recency,
        "frequency": frequency,
        "monetary_total": monetary,
    })


def write_database(path: Path, customers: pd.DataFrame) -> None:
    with duckdb.connect(str(path)) as con:
        con.register("customers", customers)
        con.execute("""
            create or replace table customer_rfm as
            select customer_id, date '2024-01-01' - cast(recency_days + 30 as integer) as first_order_date,
                date '2024-01-01' - cast(recency_days as integer) as last_order_date,
                date '2024-01-01' as analysis_date,
                cast(recency_days as integer) as recency_days, cast(recency_days + 30 as integer) as tenure_days,
                cast(frequency as integer) as frequency, cast(monetary_total as decimal(18,2)) as monetary_total,
                cast(monetary_total / frequency as decimal(18,2)) as avg_order_value,
                case when frequency > 1 then 30.0 / (frequency - 1) end as avg_days_between_orders,
                cast(0 as decimal(18,2)) as returns_total, 0.0 as return_rate,
                cast(frequency as integer) as distinct_products, cast(null as double) as top_category_share
            from customers
        """)


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=2_000_000)
    parser.add_argument("--db", type=Path, default=Path(tempfile.mkdtemp()) / "bench.duckdb")
    args = parser.parse_args()

    # Generated in a child process, so the peak memory below is that of run_clustering alone.
    child = multiprocessing.get_context("fork").Process(
        target=lambda: write_database(args.db, make_customers(args.customers)))
    _, seconds = timed(lambda: (child.start(), child.join()))
    print(f"data: {args.customers:,} customers generated and written to {args.db} in {seconds:.1f}s")
    settings = Settings(db_path=args.db, project_dir=args.db.parent)

    run, total = timed(run_clustering, settings, progress=lambda message: print(f"  .. {message}", flush=True))
    print(f"run_clustering (defaults): {total:.1f}s total, k={run.chosen_k}, fit sample {run.n_fit_sample:,}")
    for step, step_seconds in run.timings.items():
        print(f"  {step:<10} {step_seconds:7.2f}s")
    print(f"  peak memory of run_clustering: {peak_memory_mb():,.0f} MB")
    print(f"  k reason: {run.k_reason}")
    for warning in run.warnings:
        print(f"  warning: {warning}")

    features = list(settings.features)
    with duckdb.connect(str(args.db), read_only=True) as con:
        customers = con.execute(f"select {', '.join(features)} from customer_rfm order by customer_id").df()
    X = build_pipeline(features, settings.winsor_quantiles).fit_transform(customers[features].to_numpy(float))
    sample_size = min(len(X), settings.fit_sample_size)
    rows = np.sort(np.random.default_rng(settings.seed).choice(len(X), sample_size, replace=False))
    for k in sorted({run.chosen_k, 8}):
        compare_fits(X, rows, k, settings.seed)


def compare_fits(X: np.ndarray, rows: np.ndarray, k: int, seed: int) -> None:
    print(f"k-means fits at k={k}, n_init={N_INIT} (inertia over all {len(X):,} customers, lower is better):")
    candidates = {
        f"KMeans on all {len(X):,}": lambda: KMeans(k, n_init=N_INIT, random_state=seed).fit(X),
        f"MiniBatchKMeans on all {len(X):,}": lambda: MiniBatchKMeans(k, n_init=N_INIT, random_state=seed,
                                                                     batch_size=4096).fit(X),
        f"KMeans on a {len(rows):,} sample": lambda: KMeans(k, n_init=N_INIT, random_state=seed).fit(X[rows]),
    }
    for name, fit in candidates.items():
        model, seconds = timed(fit)
        inertia = nearest_centroid(X, model.cluster_centers_)[1].sum()
        print(f"  {name:<36} {seconds:7.2f}s   inertia {inertia:,.0f}")


if __name__ == "__main__":
    main()
