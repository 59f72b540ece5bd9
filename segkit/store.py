"""Reading the customer features, and writing every result table of a clustering run in one transaction.

Which tables keep what:

- ``customer_segments`` holds the latest run only (replaced each run): one row per customer.
- Everything else keeps every run, keyed by run_id (appended): ``cluster_runs``, ``k_selection``,
  ``feature_transform``, ``segment_centroids``, ``segment_profiles``, ``segment_feature_profiles`` and
  ``segment_assignment_history`` (one row per customer per run).

All writes happen inside `transaction`, so a failure anywhere leaves the previous results intact.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
import pandas as pd

from segkit.errors import SegkitError
from segkit.features import LOG_FEATURES
from segkit.engine import column_types, row_hash_sum_sql
from segkit.warehouse import quote_identifier, require_table, table_exists

FEATURE_TABLE = "customer_rfm"
ASSIGNMENT = "segkit_assignment"  # temporary, lives only inside the write transaction
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")
PROFILE_STATS = ("recency_days", "frequency", "monetary_total")

HISTORY_TABLES = {
    "cluster_runs": """run_id varchar primary key, created_at timestamp, analysis_date date, algorithm varchar,
        features varchar, settings varchar, chosen_k integer, k_reason varchar, metrics varchar,
        n_customers integer, n_fit_sample integer, data_fingerprint varchar, library_versions varchar,
        warnings varchar""",
    "k_selection": """run_id varchar, k integer, inertia double, silhouette double, davies_bouldin double,
        calinski_harabasz double, stability_ari double, is_knee boolean, is_chosen boolean""",
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
}


@dataclass(frozen=True)
class FeatureData:
    """What clustering needs from the feature mart: a seeded sample in memory, the rest stays in DuckDB."""

    sample: pd.DataFrame  # customer_id, the features, monetary_total; ordered by customer_id
    n_customers: int
    fingerprint: str      # sha256 hex of the customer ids, features and monetary_total of every customer
    analysis_date: date | None
    checksum: tuple[int, int]  # customers and the sum of the engine's fast row hash: what write-back compares


def read_features(con, features: Sequence[str], sample_size: int, seed: int) -> FeatureData:
    """Validate the feature mart and read a seeded sample of at most sample_size customers.

    The sample is the customers with the smallest md5(customer_id || ':' || seed): the same customers on
    every engine, so DuckDB and Spark fit the same model on the same data.
    """
    require_table(con, FEATURE_TABLE, "Run `dbt build` first to build the customer features.")
    _check_feature_names(con, features)
    n_customers, analysis_date = _check_values(con, features)
    columns = ", ".join(map(quote_identifier, _read_columns(features)))
    fingerprint = _fingerprint(con, columns, n_customers)
    checksum = _checksum(con, columns)
    order = "customer_id" if n_customers <= sample_size else f"md5(customer_id || ':{int(seed)}')"
    sample = con.execute(
        f"select {columns} from {FEATURE_TABLE} order by {order} limit {int(sample_size)}"
    ).df().sort_values("customer_id", ignore_index=True)
    return FeatureData(sample, n_customers, fingerprint, analysis_date, checksum)


def check_features_unchanged(con, features: Sequence[str], data: FeatureData) -> None:
    """Stop when customer_rfm is no longer the table `data` was read from: a dbt build finished in between.

    Run it inside the write transaction: DuckDB then lets no other process open the file until the commit, so
    the features checked are the ones the segments are written beside. It compares the fast checksum, not the
    md5 fingerprint, which costs 20 times more.
    """
    names = _read_columns(features)
    if table_exists(con, FEATURE_TABLE) and set(names) <= set(column_types(con, FEATURE_TABLE)):
        if _checksum(con, ", ".join(map(quote_identifier, names))) == data.checksum:
            return
    raise SegkitError(f"{FEATURE_TABLE} changed while segkit cluster was running (a dbt build finished meanwhile); "
                      "nothing was written; run segkit cluster again.")


def _read_columns(features: Sequence[str]) -> list[str]:
    return ["customer_id", *dict.fromkeys([*features, "monetary_total"])]


def _check_feature_names(con: duckdb.DuckDBPyConnection, features: Sequence[str]) -> None:
    types = column_types(con, FEATURE_TABLE)
    numeric = [name for name, kind in types.items() if kind.upper().startswith(_NUMERIC_TYPES)]
    unknown = [feature for feature in features if feature not in numeric]
    if unknown:
        raise SegkitError(f"Unknown feature(s) {', '.join(map(repr, unknown))}: features must be numeric columns "
                          f"of {FEATURE_TABLE}, i.e. some of {', '.join(numeric)}. Fix the features setting "
                          "(--features or SEGKIT_FEATURES) and run again.")


def _check_values(con: duckdb.DuckDBPyConnection, features: Sequence[str]) -> tuple[int, date | None]:
    checks = ", ".join(
        f"count(*) filter (where {q} is null or isnan(cast({q} as double)) "
        f"or abs(cast({q} as double)) = cast('Infinity' as double)), count(*) filter (where {q} < 0)"
        for q in map(quote_identifier, features)
    )
    row = con.execute(f"select count(*), max(analysis_date), {checks} from {FEATURE_TABLE}").fetchone()
    n_customers, analysis_date, counts = row[0], row[1], row[2:]
    if n_customers == 0:
        raise SegkitError(f"The table {FEATURE_TABLE} has no customers. Check the input data and the "
                          "data_quality_summary table, then run `dbt build` again.")
    missing = {f: counts[2 * i] for i, f in enumerate(features) if counts[2 * i]}
    if missing:
        listed = "; ".join(f"{feature}: {count:,} of {n_customers:,} customers" for feature, count in missing.items())
        raise SegkitError(f"Some feature values are NULL or not finite ({listed}). Clustering needs a number for "
                          "every customer: drop those features from the features setting, or fill them in the "
                          "dbt model, then run again.")
    negative = {f: counts[2 * i + 1] for i, f in enumerate(features) if f in LOG_FEATURES and counts[2 * i + 1]}
    if negative:
        listed = "; ".join(f"{feature}: {count:,} customers" for feature, count in negative.items())
        raise SegkitError(f"Some features that are log-transformed have negative values ({listed}); they should "
                          "never be negative. Check the dbt model that builds them, run `dbt build`, and retry.")
    return n_customers, analysis_date


def _fingerprint(con: duckdb.DuckDBPyConnection, columns: str, n_customers: int) -> str:
    # An order-independent sum of per-row md5s: stable across DuckDB versions and cheap at millions of rows.
    total = con.execute(f"select {row_hash_sum_sql(con, columns)} from {FEATURE_TABLE}").fetchone()[0]
    return hashlib.sha256(f"{columns}|{n_customers}|{total}".encode()).hexdigest()


def _checksum(con, columns: str) -> tuple[int, int]:
    row = con.execute(f"select count(*), {row_hash_sum_sql(con, columns, fast=True)} from {FEATURE_TABLE}").fetchall()[0]
    return int(row[0]), int(row[1] or 0)


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


def store_assignment(con: duckdb.DuckDBPyConnection, assignment_sql: str, fit_customer_ids: pd.Series) -> None:
    """Materialise every customer's segment (from assignment_sql) as a temporary table, flagging the fit sample."""
    fit_ids = pd.DataFrame({"customer_id": fit_customer_ids})
    con.register("segkit_fit_ids", fit_ids)
    con.execute(f"""
        create or replace temp table {ASSIGNMENT} as
        select assigned.customer_id, assigned.segment_id, assigned.distance_to_centroid,
            fit.customer_id is not null as is_in_fit_sample
        from ({assignment_sql}) as assigned
        left join segkit_fit_ids as fit on fit.customer_id = assigned.customer_id
    """)
    con.unregister("segkit_fit_ids")


def profile_segments(con: duckdb.DuckDBPyConnection, features: Sequence[str]
                     ) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
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

    long = "(" + " union all ".join(
        f"select a.segment_id, '{feature}' as feature, cast({quote_identifier(feature)} as double) as value "
        f"from {joined}" for feature in features) + ") as feature_values"
    feature_profiles = con.execute(f"""
        with by_segment as (
            select segment_id, feature, avg(value) as mean, median(value) as median from {long} group by all
        ),
        overall as (
            select feature, avg(value) as population_mean, median(value) as population_median
            from {long} group by all
        )
        select segment_id, feature, mean, median, population_mean, population_median,
            mean / nullif(population_mean, 0) as index_vs_population
        from by_segment join overall using (feature)
        order by segment_id, feature
    """).df()
    return profiles, population, feature_profiles


def write_run(con: duckdb.DuckDBPyConnection, run_id: str, names: dict[int, str], tables: dict[str, pd.DataFrame]
              ) -> None:
    """Replace customer_segments and append this run to every history table (inside the caller's transaction).

    tables maps each history table except segment_assignment_history to its rows without run_id; the
    per-customer tables are filled in SQL from the temporary assignment table.
    """
    named = pd.DataFrame({"segment_id": list(names), "segment_name": list(names.values())})
    con.register("segkit_names", named)
    con.execute(f"""
        create or replace table customer_segments as
        select a.customer_id, cast(a.segment_id as integer) as segment_id, n.segment_name,
            a.distance_to_centroid, cast(? as varchar) as run_id, a.is_in_fit_sample
        from {ASSIGNMENT} as a join segkit_names as n using (segment_id)
        order by a.customer_id
    """, [run_id])
    for table, columns in HISTORY_TABLES.items():
        con.execute(f"create table if not exists {table} ({columns})")
    for table, rows in tables.items():
        _append(con, table, run_id, rows)
    con.execute(f"""
        insert into segment_assignment_history by name
        select ? as run_id, s.customer_id, s.segment_id, s.segment_name, s.distance_to_centroid,
            r.analysis_date, r.monetary_total
        from customer_segments as s join {FEATURE_TABLE} as r using (customer_id)
    """, [run_id])
    con.unregister("segkit_names")


def _append(con: duckdb.DuckDBPyConnection, table: str, run_id: str, rows: pd.DataFrame) -> None:
    insert_rows(con, table, rows.assign(run_id=run_id))


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame) -> None:
    """Append a DataFrame to a table, matching columns by name."""
    con.register("segkit_rows", rows)
    con.execute(f"insert into {table} by name select * from segkit_rows")
    con.unregister("segkit_rows")


def run_id_taken(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    if not table_exists(con, "cluster_runs"):
        return False
    return bool(con.execute("select count(*) from cluster_runs where run_id = ?", [run_id]).fetchone()[0])
