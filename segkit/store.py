"""segkit's own tables: their definitions, the write of a run in one transaction, and the read of a run.

``customer_segments`` holds the latest run only (replaced by each run). Every other table keeps every run:
keyed by run_id, or for ``segment_migration`` by the run and its previous run.

A run is a fit (kind 'fit': a model fitted on its own data) or scored (kind 'scored': its customers scored
with the stored model of an earlier fit, model_run_id). Between a run and its previous run, customers are
compared on the previous run's model, so ``segment_migration`` holds moves of customers, never of segments:
both sides are scored, in SQL, with the same centroids. When a fit redefined the segments, ``segment_refits``
holds, apart, how its customers were regrouped: the previous model's segment against the new one. A run is written inside
`transaction`, so a failure anywhere leaves the previous results intact. `read_run` reads a run back as one record,
`StoredRun`; `latest_run_id` says which run is the latest.

On Spark, which has no such transaction, the run's row of ``cluster_runs`` commits it: see segkit.run_writes.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterator, Mapping

import numpy as np
import pandas as pd

from segkit import run_writes, sql
from segkit.errors import SegkitError
from segkit.warehouse import require_table, table_exists

CLUSTER_HINT = "Run `segkit cluster` first."
ASSIGNMENT = "segkit_assignment"  # temporary: the run's segment per customer, staged inside the write transaction

TABLES = {
    "customer_segments": """customer_id varchar, segment_id integer, segment_name varchar,
        distance_to_centroid double, run_id varchar, is_in_fit_sample boolean""",
    "cluster_runs": """run_id varchar primary key, created_at timestamp, analysis_date date, algorithm varchar,
        features varchar, settings varchar, chosen_k integer, k_reason varchar, metrics varchar,
        n_customers integer, n_fit_sample integer, data_fingerprint varchar, library_versions varchar,
        warnings varchar, kind varchar, model_run_id varchar""",
    "k_selection": """run_id varchar, k integer, inertia double, silhouette double, davies_bouldin double,
        calinski_harabasz double, stability_ari double, is_knee boolean, is_chosen boolean,
        silhouette_noise double, davies_bouldin_noise double, calinski_harabasz_noise double""",
    "feature_transform": """run_id varchar, feature varchar, feature_order integer, log_transform boolean,
        clip_lower double, clip_upper double, center double, scale double""",
    "segment_centroids": """run_id varchar, segment_id integer, segment_name varchar, feature varchar,
        feature_order integer, value double, value_scaled double""",
    "segment_profiles": """run_id varchar, segment_id integer, segment_name varchar, customers integer,
        customer_share double, revenue double, revenue_share double, median_recency_days double,
        median_frequency double, median_monetary_total double, mean_recency_days double, mean_frequency double,
        mean_monetary_total double""",
    "segment_feature_profiles": """run_id varchar, segment_id integer, feature varchar, mean double, median double,
        population_mean double, population_median double, index_vs_population double, z_score double""",
    "segment_assignment_history": """run_id varchar, customer_id varchar, segment_id integer, segment_name varchar,
        distance_to_centroid double, analysis_date date, monetary_total decimal(18,2)""",
    "segment_matches": """run_id varchar, previous_run_id varchar, segment_id integer, segment_name varchar,
        previous_segment_id integer, previous_segment_name varchar, distance double, status varchar""",
    "feature_reference_bins": """run_id varchar, feature varchar, feature_order integer, bin integer,
        lower_edge double, upper_edge double, reference_share double""",
    "drift_checks": """run_id varchar, reference_run_id varchar, analysis_date date, reference_analysis_date date,
        feature varchar, statistic varchar, value double, threshold double, exceeds_threshold boolean""",
    "segment_migration": """from_run_id varchar, to_run_id varchar, from_segment_id integer,
        from_segment_name varchar, to_segment_id integer, to_segment_name varchar, customers integer,
        revenue decimal(18,2)""",
    "segment_refits": """run_id varchar, previous_run_id varchar, previous_segment_id integer,
        previous_segment_name varchar, segment_id integer, segment_name varchar, customers integer,
        revenue decimal(18,2)""",
}
# Columns added since a table was first written: a database written by an earlier segkit gets them (empty for its
# old rows) before a run is written.
ADDED_COLUMNS = {
    "cluster_runs": ("kind varchar", "model_run_id varchar"),
    "k_selection": ("silhouette_noise double", "davies_bouldin_noise double", "calinski_harabasz_noise double"),
}
# The tables with rows for every run (drift_checks, segment_migration and segment_refits only have them for a run
# that has a previous run to compare with).
RUN_TABLES = ("cluster_runs", "k_selection", "feature_transform", "segment_centroids", "segment_profiles",
              "segment_feature_profiles", "segment_assignment_history", "segment_matches", "feature_reference_bins")

# Customers and revenue moving from each segment of one run to each segment of another, each run's customers in
# its own segments: the customers in both runs, and the revenue of the FROM run (what moved with them). Only for
# two runs with no stored migration: across a refit it mixes the moves of customers with the model's.
MIGRATION_SQL = """
    select f.run_id as from_run_id, t.run_id as to_run_id,
        f.segment_id as from_segment_id, f.segment_name as from_segment_name,
        t.segment_id as to_segment_id, t.segment_name as to_segment_name,
        cast(count(*) as integer) as customers, cast(sum(f.monetary_total) as decimal(18, 2)) as revenue
    from segment_assignment_history as f
    join segment_assignment_history as t on t.customer_id = f.customer_id
    where f.run_id = $from_run_id and t.run_id = $to_run_id
    group by all
    order by from_segment_id, to_segment_id
"""
# The same between a run and its previous run, on the previous run's model: its stored segment per customer
# against the customers of now (`customers`) scored with its centroids (`scored`, segkit.sql), in its segment names.
MOVES_SQL = """
    select $from_run_id as from_run_id, $to_run_id as to_run_id,
        f.segment_id as from_segment_id, f.segment_name as from_segment_name,
        scored_now.segment_id as to_segment_id, previous_names.segment_name as to_segment_name,
        cast(count(*) as integer) as customers, cast(sum(f.monetary_total) as decimal(18, 2)) as revenue
    from segment_assignment_history as f
    join ({scored}) as scored_now on scored_now.customer_id = f.customer_id
    join segkit_previous_names as previous_names on previous_names.segment_id = scored_now.segment_id
    where f.run_id = $from_run_id
    group by all
    order by from_segment_id, to_segment_id
"""
# How a run's customers were regrouped by its model against the previous run's model (all on the diagonal when the
# run was scored with that model): the revenue is their monetary_total now.
REFITS_SQL = """
    select $to_run_id as run_id, $from_run_id as previous_run_id,
        scored_before.segment_id as previous_segment_id, previous_names.segment_name as previous_segment_name,
        s.segment_id, s.segment_name,
        cast(count(*) as integer) as customers, cast(sum(scored_before.monetary_total) as decimal(18, 2)) as revenue
    from {segments} as s
    join ({scored}) as scored_before on scored_before.customer_id = s.customer_id
    join segkit_previous_names as previous_names on previous_names.segment_id = scored_before.segment_id
    group by all
    order by previous_segment_id, segment_id
"""


@dataclass(frozen=True)
class KScore:
    """One row of table k_selection (without run_id)."""

    k: int
    inertia: float
    silhouette: float
    davies_bouldin: float
    calinski_harabasz: float
    stability_ari: float
    is_knee: bool = False
    is_chosen: bool = False
    # Each metric's resampling noise at this k: its standard deviation over seeded bootstrap resamples
    # (segkit.model_selection); two ks whose metric differs by less than this are tied on it.
    silhouette_noise: float = float("nan")
    davies_bouldin_noise: float = float("nan")
    calinski_harabasz_noise: float = float("nan")


@dataclass(frozen=True)
class SegmentSummary:
    segment_id: int
    name: str
    customers: int
    customer_share: float
    revenue_share: float


@dataclass(frozen=True, eq=False)
class StoredRun:
    """One run as stored: its row of cluster_runs, its model (transform and centroids), its segments and k scan."""

    run_id: str
    created_at: datetime | None       # UTC
    analysis_date: date | None
    algorithm: str
    features: tuple[str, ...]
    settings: dict[str, Any]
    chosen_k: int
    k_reason: str
    metrics: dict[str, Any]
    n_customers: int
    n_fit_sample: int
    data_fingerprint: str
    library_versions: dict[str, str]
    warnings: tuple[str, ...]
    kind: str                         # 'fit', or 'scored' with the model of run model_run_id
    model_run_id: str                 # the fit whose model assigned its customers (itself for a fit)
    previous_run_id: str | None       # the run it continues (segment_matches), None for a fresh lineage
    matches: dict[str, int]           # its segments per match status: matched, new, disappeared
    transform: pd.DataFrame           # its rows of feature_transform, in feature order
    segment_ids: tuple[int, ...]      # every segment of the model, ascending
    segment_names: tuple[str, ...]
    centroids: np.ndarray             # scaled units (value_scaled): row i is segment_ids[i], columns in feature order
    centroid_values: np.ndarray       # the same centroids in original units (value)
    profiles: pd.DataFrame            # its rows of segment_profiles, indexed by segment_id (segments with customers)
    segments: tuple[SegmentSummary, ...]
    k_selection: tuple[KScore, ...]


def latest_run_id(con) -> str | None:
    """The latest run (see segkit/sql/stored_run.sql), or None when no run is stored."""
    if not table_exists(con, "cluster_runs"):
        return None
    rows = con.execute(sql.latest_runs_sql()).fetchall()
    return rows[0][0] if rows else None


def read_run(con, run_id: str | None = None) -> StoredRun:
    """A stored run (the latest when run_id is None) as one record; a clear message when there is none."""
    for table in ("cluster_runs", "feature_transform", "segment_centroids", "segment_profiles", "k_selection"):
        require_table(con, table, CLUSTER_HINT)
    frame = con.execute("select * from cluster_runs where run_id = ?", [run_id or latest_run_id(con)]).df()
    if frame.empty:
        if run_id:
            recent = [row[0] for row in con.execute(sql.latest_runs_sql(5)).fetchall()]
            raise SegkitError(f"There is no run {run_id!r} in cluster_runs. Recent runs: "
                              f"{', '.join(recent) or 'none'}. Pick one of them, or leave out the run id for the latest.")
        raise SegkitError(f"cluster_runs is empty: no segmentation has been stored yet. {CLUSTER_HINT}")
    row = frame.iloc[0]
    run_id = str(row["run_id"])
    transform = _rows(con, "feature_transform", run_id, "feature_order")
    centroids = con.execute("select segment_id, segment_name, feature, value, value_scaled from segment_centroids "
                            "where run_id = ?", [run_id]).df()
    features = list(transform["feature"])
    wide = {column: centroids.pivot(index="segment_id", columns="feature", values=column).sort_index()[features]
            for column in ("value", "value_scaled")}
    names = centroids.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    profiles = _rows(con, "segment_profiles", run_id, "segment_id").set_index("segment_id")
    k_rows = _rows(con, "k_selection", run_id, "k")
    previous_run_id, matches = _matches(con, run_id)
    return StoredRun(
        run_id=run_id,
        created_at=None if pd.isna(row["created_at"]) else pd.Timestamp(row["created_at"]).to_pydatetime(),
        analysis_date=None if pd.isna(row["analysis_date"]) else pd.Timestamp(row["analysis_date"]).date(),
        algorithm=str(row["algorithm"] or ""),
        features=tuple(_json(row["features"], [])),
        settings=_json(row["settings"], {}),
        chosen_k=int(row["chosen_k"]),
        k_reason=str(row["k_reason"] or ""),
        metrics=_json(row["metrics"], {}),
        n_customers=int(row["n_customers"] or 0),
        n_fit_sample=int(row["n_fit_sample"] or 0),
        data_fingerprint=str(row["data_fingerprint"] or ""),
        library_versions={str(k): str(v) for k, v in _json(row["library_versions"], {}).items()},
        warnings=tuple(_json(row["warnings"], [])),
        kind=_text(row.get("kind")) or "fit",
        model_run_id=_text(row.get("model_run_id")) or run_id,
        previous_run_id=previous_run_id,
        matches=matches,
        transform=transform,
        segment_ids=tuple(int(i) for i in wide["value"].index),
        segment_names=tuple(str(names[i]) for i in wide["value"].index),
        centroids=wide["value_scaled"].to_numpy(dtype=float),
        centroid_values=wide["value"].to_numpy(dtype=float),
        profiles=profiles,
        segments=tuple(SegmentSummary(int(i), str(p.segment_name), int(p.customers), float(p.customer_share),
                                      float(p.revenue_share)) for i, p in profiles.iterrows()),
        k_selection=tuple(KScore(int(r.k), float(r.inertia), float(r.silhouette), float(r.davies_bouldin),
                                 float(r.calinski_harabasz), float(r.stability_ari), bool(r.is_knee),
                                 bool(r.is_chosen), *_noise(r)) for r in k_rows.itertuples()),
    )


def _noise(row: Any) -> tuple[float, float, float]:
    """A k_selection row's metric noise; NaN for rows stored before segkit measured it."""
    return tuple(float(getattr(row, f"{metric}_noise", float("nan")))
                 for metric in ("silhouette", "davies_bouldin", "calinski_harabasz"))


def _rows(con, table: str, run_id: str, order: str) -> pd.DataFrame:
    return con.execute(f"select * from {table} where run_id = ? order by {order}", [run_id]).df().drop(columns="run_id")


def _matches(con, run_id: str) -> tuple[str | None, dict[str, int]]:
    """The run's previous run, and its segments per match status."""
    if not table_exists(con, "segment_matches"):
        return None, {}
    rows = con.execute("select status, count(*), any_value(previous_run_id) from segment_matches where run_id = ? "
                       "group by all order by status", [run_id]).fetchall()
    previous = next((previous for _, _, previous in rows if previous is not None), None)
    return previous, {status: int(n) for status, n, _ in rows}


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _json(text: Any, default: Any) -> Any:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return default
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def migration(con, from_run_id: str, to_run_id: str) -> pd.DataFrame:
    """Customers and revenue moving from each segment of one stored run to each segment of another: the stored
    moves on the earlier run's model when to_run_id continues from_run_id, else each run's own segments."""
    pair = {"from_run_id": from_run_id, "to_run_id": to_run_id}
    if table_exists(con, "segment_migration"):
        stored = con.execute("select * from segment_migration where from_run_id = $from_run_id and to_run_id = "
                             "$to_run_id order by from_segment_id, to_segment_id", pair).df()
        if not stored.empty:
            return stored
    return con.execute(MIGRATION_SQL, pair).df()


def refits(con, run_id: str) -> pd.DataFrame:
    """How a run's customers were regrouped from its previous run's model to its own (empty without one)."""
    if not table_exists(con, "segment_refits"):
        return pd.DataFrame(columns=["previous_segment_id", "previous_segment_name", "segment_id", "segment_name",
                                     "customers", "revenue"])
    return con.execute("select previous_segment_id, previous_segment_name, segment_id, segment_name, customers, "
                       "revenue from segment_refits where run_id = ? order by previous_segment_id, segment_id",
                       [run_id]).df()


def new_run_id(con, fingerprint: str, created_at: datetime) -> str:
    """UTC time + 8 hex of the data fingerprint; a second run in the same second gets a -2, -3 ... suffix."""
    base = f"{created_at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{fingerprint[:8]}"
    run_id, n = base, 1
    while _run_id_taken(con, run_id):
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def _run_id_taken(con, run_id: str) -> bool:
    if not table_exists(con, "cluster_runs"):
        return False
    return bool(con.execute("select count(*) from cluster_runs where run_id = ?", [run_id]).fetchone()[0])


@contextmanager
def transaction(con) -> Iterator[None]:
    """One transaction on con: committed if the block succeeds, rolled back otherwise (on DuckDB; Spark has none)."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def stage_assignment(con, assignment_sql: str, fit_customer_ids: pd.Series) -> None:
    """Materialise every customer's segment (from assignment_sql) as the temporary table ASSIGNMENT, flagging the
    fit sample; `write_run` stores it."""
    con.register("segkit_fit_ids", pd.DataFrame({"customer_id": fit_customer_ids}))
    con.execute(f"""
        create or replace temp table {ASSIGNMENT} as
        select assigned.customer_id, assigned.segment_id, assigned.distance_to_centroid,
            fit.customer_id is not null as is_in_fit_sample
        from ({assignment_sql}) as assigned
        left join segkit_fit_ids as fit on fit.customer_id = assigned.customer_id
    """)
    con.unregister("segkit_fit_ids")


def write_run(con, run_id: str, names: Mapping[int, str], tables: Mapping[str, pd.DataFrame],
              previous_run_id: str | None, customers: str = "customer_rfm") -> None:
    """Write a run (inside the caller's `transaction`): replace customer_segments, append every other table.

    tables: the rows, without run_id, of every table keyed by run_id that is not per customer; the customers'
    rows come from the staged ASSIGNMENT (and their analysis date and monetary_total from `customers`), and
    segment_migration and segment_refits from the previous run's rows and model (see the module docstring).
    The row of cluster_runs is written last: on Spark that insert commits the run (segkit.run_writes).
    """
    run_writes.prepare(con, TABLES, ADDED_COLUMNS)
    con.register("segkit_names", pd.DataFrame({"segment_id": list(names), "segment_name": list(names.values())}))
    run_writes.append(con, "customer_segments", run_id, f"""
        select a.customer_id, cast(a.segment_id as integer) as segment_id, n.segment_name,
            a.distance_to_centroid, cast(? as varchar) as run_id, a.is_in_fit_sample
        from {ASSIGNMENT} as a join segkit_names as n using (segment_id)
        order by a.customer_id
    """, [run_id])
    con.unregister("segkit_names")
    segments = run_writes.run_rows(con, "customer_segments", run_id)
    for table, rows in tables.items():
        if table != "cluster_runs":
            insert_rows(con, table, rows.assign(run_id=run_id))
    run_writes.append(con, "segment_assignment_history", run_id, f"""
        select ? as run_id, s.customer_id, s.segment_id, s.segment_name, s.distance_to_centroid,
            r.analysis_date, r.monetary_total
        from {segments} as s join {customers} as r using (customer_id)
    """, [run_id])
    if previous_run_id is not None:
        before = read_run(con, previous_run_id)
        scored = sql.nearest_segment_sql(before.transform, before.centroids, before.segment_ids, customers,
                                         keep=["monetary_total"])
        con.register("segkit_previous_names", pd.DataFrame({"segment_id": list(before.segment_ids),
                                                            "segment_name": list(before.segment_names)}))
        pair = {"from_run_id": previous_run_id, "to_run_id": run_id}
        run_writes.append(con, "segment_migration", run_id, MOVES_SQL.format(scored=scored), pair)
        run_writes.append(con, "segment_refits", run_id, REFITS_SQL.format(scored=scored, segments=segments), pair)
        con.unregister("segkit_previous_names")
    insert_rows(con, "cluster_runs", tables["cluster_runs"].assign(run_id=run_id))
    run_writes.commit(con, TABLES)


def insert_rows(con, table: str, rows: pd.DataFrame) -> None:
    """Append a DataFrame of one run's rows to a table, matching columns by name."""
    if rows.empty:
        return
    con.register("segkit_rows", rows)
    run_id = str(rows[run_writes.RUN_KEYS.get(table, "run_id")].iloc[0])
    run_writes.append(con, table, run_id, "select * from segkit_rows", columns=list(rows.columns))
    con.unregister("segkit_rows")
