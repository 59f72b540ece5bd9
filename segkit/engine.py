"""The engine segkit's SQL runs on: DuckDB (the default) or Apache Spark, chosen by the dbt target.

The target is the one `load_settings` resolved from the dbt profile (`Settings.profile`, see segkit.profile) and
the one the dbt that segkit runs gets, so both always work on the same tables. `connect` gives a connection with
the part of DuckDB's Python API that segkit uses: ``execute(sql, parameters)`` returning ``.df()``,
``.fetchall()`` and ``.fetchone()``; ``register``/``unregister`` of a small DataFrame; ``table_exists``. On
DuckDB it is DuckDB's own connection. On Spark it is `SparkConnection`, which runs the same SQL in a
SparkSession configured from the profile's ``server_side_parameters`` (the warehouse folder and metastore dbt
uses), rewriting the few DuckDB-only forms segkit writes (listed in `_REWRITES` and `_STATEMENTS`). The session is
a local one, or a Spark Connect client (segkit.spark_connect): of the server in ``spark.remote``, or of a Databricks
cluster through Databricks Connect for a ``type: databricks`` target. Only
aggregates, the seeded fit sample and small result tables cross between Spark and Python; every per-customer
step stays in Spark SQL.

All engine-specific code of segkit lives in this module (what only Spark Connect needs, in segkit.spark_connect).
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from segkit import spark_connect, warehouse
from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError
from segkit.profile import read_profile

SPARK_INSTALL_HINT = "Install the Spark extra: pip install -e '.[spark]' (it needs Java 17)."
# The dbt target types segkit reaches with a Spark session: dbt-spark's, and dbt-databricks' (Databricks Connect).
SPARK_TYPES = ("spark", "databricks")


def engine_name(settings) -> str:
    """'duckdb', 'spark' or 'databricks': the type of the settings' dbt target."""
    return settings.profile.engine


def location(settings) -> dict[str, str | None]:
    """Where the settings' tables are, for a summary: ``db_path``, the DuckDB file; on Spark, where a file name
    would mean nothing, ``engine``, ``target``, ``schema`` and ``warehouse`` (the folder, as the profile sets it),
    or on Spark Connect ``remote``, the server (without the URL's parameters, which may hold a token)."""
    profile = settings.profile
    if profile.engine not in SPARK_TYPES:
        return {"db_path": str(settings.db_path)}
    output = session_target(settings)
    remote = spark_connect.remote_url(output)
    if remote is not None:
        return {"engine": profile.engine, "target": profile.target, "schema": profile.schema,
                "remote": spark_connect.server(remote)}
    folder = (output.get("server_side_parameters") or {}).get("spark.sql.warehouse.dir")
    if folder and ":" not in folder and not Path(folder).is_absolute():
        folder = str(Path(settings.project_dir) / folder)  # Spark starts in the repository root, as dbt does
    return {"engine": "spark", "target": profile.target, "schema": profile.schema, "warehouse": folder}


def session_target(settings) -> Mapping[str, Any]:
    """The dbt target segkit's Spark session opens: the settings' own (method: session), or for a Thrift Server
    target (method: thrift) the session target it names in ``segkit_session_target``, on the same metastore."""
    profile = settings.profile
    output = profile.output
    method = output.get("method", "session")
    if method == "session":
        return output
    companion = output.get("segkit_session_target")
    if method != "thrift" or not companion:
        raise SegkitError(
            f"The target {profile.target!r} uses method: {method}, and segkit reaches Spark with a session (method: "
            "session: local, a cluster, or Spark Connect with spark.remote). For a Thrift Server, name a session "
            "target on the same metastore and warehouse in the target, e.g. segkit_session_target: spark_cluster "
            "(see 'Thrift' under 'Running on a Spark cluster' in the README).")
    session = read_profile(Path(settings.project_dir), profile.profiles_dir, target=str(companion))
    if session.engine != "spark" or session.output.get("method", "session") != "session":
        raise SegkitError(f"segkit_session_target of the target {profile.target!r} names {companion!r}, which is "
                          "not a Spark target with method: session. Point it at one (see 'Thrift' under 'Running on "
                          "a Spark cluster' in the README).")
    if session.schema != profile.schema:
        raise SegkitError(f"The target {profile.target!r} builds in the schema {profile.schema!r}, but its "
                          f"segkit_session_target {companion!r} reads {session.schema!r}. Give both the same schema.")
    return session.output


# The Spark session a command keeps open across its steps (see `session`); DuckDB files are reopened per step.
_SHARED_SPARK: ContextVar["SparkConnection | None"] = ContextVar("segkit_shared_spark", default=None)


@contextmanager
def connect(settings, read_only: bool = False) -> Iterator[Any]:
    """A connection to the settings' dbt target, closed (and on Spark, its JVM ended) on exit."""
    profile = settings.profile
    if profile.engine == "duckdb":
        with warehouse.connect(settings.db_path, read_only=read_only, profile=profile) as con:
            yield con
        return
    if profile.engine not in SPARK_TYPES:
        raise SegkitError(f"The dbt target {profile.target!r} is of type {profile.engine!r}; segkit runs on duckdb, "
                          "spark, or databricks (through Databricks Connect).")
    shared = _SHARED_SPARK.get()
    if shared is not None:
        yield shared
        return
    con = SparkConnection.open(session_target(settings), Path(settings.project_dir), profile.target)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def session(settings) -> Iterator[None]:
    """Keep one Spark session for every `connect` inside the block (a JVM start costs seconds); no-op on DuckDB."""
    if _SHARED_SPARK.get() is not None or engine_name(settings) not in SPARK_TYPES:
        yield
        return
    with connect(settings) as con:
        token = _SHARED_SPARK.set(con)
        try:
            yield
        finally:
            _SHARED_SPARK.reset(token)


def column_types(con, table: str) -> dict[str, str]:
    """Column name -> upper-case SQL type (INTEGER, BIGINT, DECIMAL(18,2), DOUBLE, VARCHAR...)."""
    if isinstance(con, SparkConnection):
        rows = con.execute(f"describe table {table}").fetchall()
        types = {}
        for name, kind, _ in rows:
            if not name or name.startswith("#"):  # partition information follows the columns
                break
            types[name] = {"INT": "INTEGER", "STRING": "VARCHAR"}.get(kind.upper(), kind.upper())
        return types
    return dict(con.execute(
        "select column_name, data_type from information_schema.columns where table_catalog = current_database() "
        "and table_schema = current_schema() and table_name = ?", [table]).fetchall())


def row_hash_sum_sql(con, columns: str, fast: bool = False) -> str:
    """An aggregate: the sum of a 64-bit hash of every row's columns (order-independent, for a fingerprint).

    fast: the engine's own hash instead of md5, about 20 times cheaper, but not stable across engine versions,
    so only for comparing a table with itself within one command.
    """
    if isinstance(con, SparkConnection):
        if fast:
            return f"sum(cast(xxhash64({columns}) as decimal(38, 0)))"
        return f"sum(cast(conv(substr(md5(concat_ws('|', {columns})), 17, 16), 16, 10) as decimal(38, 0)))"
    if fast:
        return f"sum(hash({columns}))"
    return f"sum(cast(md5_number_lower(concat_ws('|', {columns})) as hugeint))"


# ------------------------------------------------------------------------------------------------ Spark

# DuckDB forms segkit writes, and their Spark SQL equivalents.
_REWRITES = (
    (re.compile(r"\bvarchar\b", re.IGNORECASE), "string"),
    (re.compile(r"\s+primary key\b", re.IGNORECASE), ""),
    (re.compile(r"\blist_contains\(", re.IGNORECASE), "array_contains("),
    (re.compile(r"\bquantile_cont\(([^,]+),\s*\[([^\]]*)\]\)", re.IGNORECASE), r"percentile(\1, array(\2))"),
)
_NAMED_PARAMETER = re.compile(r"\$(\w+)")
# A single-quoted literal (kept as it is) or a double-quoted identifier (Spark quotes with backticks).
_QUOTED = re.compile(r"('(?:[^'\\]|\\.)*')|\"((?:[^\"]|\"\")*)\"")
_CREATE_OR_REPLACE = re.compile(r"^\s*create\s+or\s+replace\s+(temp\s+)?table\s+(\w+)\s+as\s", re.IGNORECASE)
_CREATE_IF_NOT_EXISTS = re.compile(r"^\s*create\s+table\s+if\s+not\s+exists\s", re.IGNORECASE)
_TRANSACTION = re.compile(r"^\s*(begin(\s+transaction)?|commit|rollback)\s*;?\s*$", re.IGNORECASE)


class SparkResult:
    """A Spark query's result with DuckDB's fetch methods; collected on first use."""

    def __init__(self, frame):
        self._frame = frame

    def df(self) -> pd.DataFrame:
        # DuckDB returns DECIMAL columns as floats; so does this.
        frame = self._frame.toPandas()
        for column in frame.columns:
            if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, Decimal)).any():
                frame[column] = frame[column].astype(float)
        return frame

    def fetchall(self) -> list[tuple]:
        return [tuple(row) for row in self._frame.collect()]

    def fetchone(self) -> tuple | None:
        rows = self._frame.take(1)
        return tuple(rows[0]) if rows else None


class SparkConnection:
    """A SparkSession behind DuckDB's connection methods (see the module docstring)."""

    def __init__(self, session, schema: str, table_format: str = "parquet",
                 environment: Mapping[str, str | None] | None = None):
        self.session = session
        self.schema = schema
        self.table_format = table_format  # of the tables segkit creates: Delta on Databricks (Unity Catalog)
        # A Spark Connect session: the environment variables pyspark set to open it, as they were before.
        self._environment = environment

    @classmethod
    def open(cls, output: Mapping[str, Any], root: Path, target: str = "spark") -> "SparkConnection":
        """A session with the profile's settings, in the profile's schema (dbt must have built it): a local one, or a
        Spark Connect client of the target's server (segkit.spark_connect)."""
        databricks = output.get("type") == "databricks"
        remote = spark_connect.remote_url(output)
        if databricks and remote is None:
            raise SegkitError("segkit reaches Databricks through Databricks Connect, which needs a cluster and a "
                              "token: give the target a cluster's http_path (sql/protocolv1/o/<workspace id>/<cluster "
                              "id>) or cluster_id, and token: (a SQL warehouse serves dbt only), or set SPARK_REMOTE "
                              "to a Spark Connect URL (see 'Databricks' in the README).")
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise SegkitError(f"The Spark target needs pyspark. {SPARK_INSTALL_HINT}") from None
        if remote is not None:
            return cls._open_remote(remote, output, target)
        builder = SparkSession.builder.enableHiveSupport()
        parameters = output.get("server_side_parameters") or {}
        if not str(parameters.get("spark.master", "local")).startswith("local") and "PYSPARK_PYTHON" not in os.environ:
            # A cluster's executors start the Python the driver names (the profile may name another).
            builder = builder.config("spark.pyspark.python", sys.executable)
        for key, value in parameters.items():
            builder = builder.config(str(key), str(value))
        builder = builder.config("spark.sql.ansi.enabled", "false")  # as dbt-spark sets it
        builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "false")  # pyarrow is optional
        # Relative paths in the profile (warehouse, metastore) are relative to the repository root, as for dbt.
        here = os.getcwd()
        os.chdir(root)
        try:
            session = builder.getOrCreate()
        except Exception as error:  # the JVM's own error: Java missing, or the metastore held by another process
            raise SegkitError(_spark_start_advice(error, parameters), exit_code=EXIT_DATABASE_LOCKED) from None
        finally:
            os.chdir(here)
        session.sparkContext.setLogLevel("ERROR")
        return cls(session, output["schema"])._use_schema(None, output, target)

    @classmethod
    def _open_remote(cls, url: str, output: Mapping[str, Any], target: str) -> "SparkConnection":
        session, environment = spark_connect.open_session(url, output)
        databricks = output.get("type") == "databricks"
        connection = cls(session, output["schema"], "delta" if databricks else "parquet", environment)
        return connection._use_schema(url, output, target)

    def _use_schema(self, url: str | None, output: Mapping[str, Any], target: str) -> "SparkConnection":
        """This connection in the profile's catalog (Databricks) and schema; closed, with advice, when it cannot be."""
        schema, catalog = self.schema, output.get("catalog") if output.get("type") == "databricks" else None
        try:
            if catalog:
                self.session.catalog.setCurrentCatalog(str(catalog))
            exists = self.session.catalog.databaseExists(schema)  # the first use of the metastore (or the server)
        except Exception as error:
            # before close: a local session's error text comes from the JVM
            advice = (spark_connect.advice(url, error) if url
                      else _spark_start_advice(error, output.get("server_side_parameters") or {}))
            self.close()
            raise SegkitError(advice, exit_code=1 if url else EXIT_DATABASE_LOCKED) from None
        if not exists:
            self.close()
            raise SegkitError(f"The Spark schema {schema!r} does not exist yet. Run `dbt build --target {target}` "
                              "first to build the customer features.")
        self.session.catalog.setCurrentDatabase(schema)
        return self

    def close(self) -> None:
        """Stop the session: a Spark Connect session is released on its server; a local one ends its JVM, so that
        the Derby metastore is free for dbt's next session."""
        if self._environment is not None:
            spark_connect.stop(self.session, self._environment)
            return
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        self.session.stop()
        gateway = SparkContext._gateway
        if gateway is not None:
            gateway.shutdown()
            process = getattr(gateway, "proc", None)
            if process is not None:
                process.stdin.close()  # the JVM exits when its stdin closes
                process.wait(timeout=60)
        SparkContext._gateway = None
        SparkContext._jvm = None
        SparkSession._instantiatedSession = None
        SparkSession._activeSession = None

    def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> SparkResult | None:
        if _TRANSACTION.match(sql):
            return None  # Spark has no multi-statement transactions: see "Running on Spark" in the README
        sql = _QUOTED.sub(_backtick_identifier, sql)
        for pattern, replacement in _REWRITES:
            sql = pattern.sub(replacement, sql)
        args: Any = None
        if isinstance(parameters, dict):
            sql = _NAMED_PARAMETER.sub(r":\1", sql)
            args = {key: _python_value(value) for key, value in parameters.items()}
        elif parameters:
            args = [_python_value(value) for value in parameters]
        replaced = _CREATE_OR_REPLACE.match(sql)
        if replaced and replaced.group(1):
            # A temporary table: materialised now (a view would re-read the temporary views it names later).
            frame = self.session.sql(sql[replaced.end():], args=args) if args else self.session.sql(sql[replaced.end():])
            frame.localCheckpoint(eager=True).createOrReplaceTempView(replaced.group(2))
            return None
        if replaced:
            self.session.sql(f"drop table if exists {replaced.group(2)}")
            sql = f"create table {replaced.group(2)} using {self.table_format} as {sql[replaced.end():]}"
        elif _CREATE_IF_NOT_EXISTS.match(sql):
            sql = f"{sql.rstrip()} using {self.table_format}"
        return SparkResult(self.session.sql(sql, args=args) if args else self.session.sql(sql))

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """A small DataFrame as a temporary view."""
        schema = _schema(frame)
        self.session.createDataFrame(_records(frame, schema), schema).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.session.catalog.dropTempView(name)

    def table_exists(self, name: str) -> bool:
        return bool(self.session.catalog.tableExists(name))


def _backtick_identifier(match: re.Match) -> str:
    if match.group(1) is not None:
        return match.group(1)
    return "`" + match.group(2).replace('""', '"').replace("`", "``") + "`"


def _spark_start_advice(error: Exception, parameters: Mapping[str, Any]) -> str:
    text = str(error)
    if "Java gateway" in text or "JAVA_HOME" in text:
        return (f"Spark could not start: Java is missing ({text.splitlines()[0]}). Install Java 17, e.g. "
                f"apt-get install openjdk-17-jre-headless. {SPARK_INSTALL_HINT}")
    if parameters.get("spark.hadoop.hive.metastore.uris"):
        return (f"Spark could not reach the metastore service at {parameters['spark.hadoop.hive.metastore.uris']}: "
                "start it, or point spark.hadoop.hive.metastore.uris in the target at it (see 'A shared metastore' "
                f"in the README). Spark said: {text.splitlines()[0] if text else type(error).__name__}")
    return ("Spark could not start its session. The local metastore (Derby, under .spark/) allows one process "
            "at a time: wait for a running `dbt --target spark` or segkit command to finish and run again. "
            f"Spark said: {text.splitlines()[0] if text else type(error).__name__}")


def _python_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _records(frame: pd.DataFrame, schema) -> list[tuple]:
    from pyspark.sql import types

    coerce = {types.DoubleType: float, types.LongType: int, types.StringType: str}
    columns = []
    for name, field in zip(frame.columns, schema.fields):
        convert = coerce.get(type(field.dataType), _python_value)
        columns.append([None if pd.isna(value) else convert(_python_value(value)) for value in frame[name]])
    return list(zip(*columns))


def _schema(frame: pd.DataFrame):
    """Spark types from the pandas columns; a column of only nulls has Spark's null type, which casts to any."""
    from pyspark.sql import types

    def spark_type(series: pd.Series):
        values = series.dropna()
        if values.empty:
            return types.NullType()
        if pd.api.types.is_bool_dtype(series) or (len(values) and values.map(lambda v: isinstance(v, bool)).all()):
            return types.BooleanType()
        if pd.api.types.is_integer_dtype(series):
            return types.LongType()
        if pd.api.types.is_float_dtype(series):
            return types.DoubleType()
        if pd.api.types.is_datetime64_any_dtype(series) or (len(values) and values.map(
                lambda v: isinstance(v, datetime)).all()):
            return types.TimestampType()
        if len(values) and values.map(lambda v: isinstance(v, date)).all():
            return types.DateType()
        if len(values) and values.map(lambda v: isinstance(v, (int, np.integer))).all():
            return types.LongType()
        if len(values) and values.map(lambda v: isinstance(v, (float, Decimal, np.floating))).all():
            return types.DoubleType()
        return types.StringType()

    return types.StructType([types.StructField(str(name), spark_type(frame[name]), True) for name in frame.columns])
