"""customer_rfm, the dbt mart segkit clusters: its checks, a seeded sample, and the fingerprint of what was read.

Clustering reads the sample, closes the database to fit, and checks, inside its write transaction, that the
mart still holds what it read (`check_features_unchanged`): a `dbt build` may have replaced it meanwhile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Sequence

import duckdb
import pandas as pd

from segkit.engine import column_types, row_hash_sum_sql
from segkit.errors import SegkitError
from segkit.features import LOG_FEATURES
from segkit.warehouse import quote_identifier, require_table, table_exists

FEATURE_TABLE = "customer_rfm"
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")


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
    if "analysis_date" not in column_types(con, FEATURE_TABLE):
        raise SegkitError(f"The table {FEATURE_TABLE} has no column analysis_date, the date its features were "
                          "measured at, which every run records. Build the table with `dbt build` (it takes the var "
                          "analysis_date, else the day after the last line), or add that column to your own table.")
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
