"""Where the rows of a run go, so that readers see the previous run or the complete new one.

On DuckDB, into segkit's tables, inside the caller's transaction (segkit.store.transaction).

On Spark, which has no transaction over several Parquet tables, each of segkit's tables but cluster_runs is a view
over a table of the same name in the schema beside it, `runs_schema` (the target's schema + '_runs'), partitioned
by run. The view shows the runs in cluster_runs only (customer_segments: the latest of them). A run writes each
table's rows to its own partition, one statement per table, and last its row of cluster_runs: that one-row insert
is the commit (one Parquet file, moved into the table's folder by one rename). A run that fails before it leaves
rows that no view shows; the next run that commits drops them (`commit`).

segkit.store decides what a run writes; this module, where.
"""

from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import unquote

from segkit import sql
from segkit.engine import SparkConnection, column_types
from segkit.warehouse import sql_text

COMMIT_TABLE = "cluster_runs"
# The column that says which run a row belongs to, when it is not run_id.
RUN_KEYS = {"segment_migration": "to_run_id"}


def prepare(con, tables: Mapping[str, str], added: Mapping[str, tuple[str, ...]]) -> None:
    """Create the tables (from their definitions) that are missing, give those an earlier segkit wrote the columns
    added since, and empty customer_segments for the new run (on Spark: create the views over them)."""
    spark = isinstance(con, SparkConnection)
    for table, definition in sorted(tables.items(), key=lambda item: item[0] != COMMIT_TABLE):  # views read it
        if spark:
            relation = _prepare_spark_table(con, table, definition)
        elif table == "customer_segments":
            con.execute("drop table if exists customer_segments")
            relation = table
            con.execute(f"create table {table} ({definition})")
        else:
            relation = table
            con.execute(f"create table if not exists {table} ({definition})")
        if table in added:
            present = set(con.execute(f"select * from {relation} limit 0").df().columns)
            for column in added[table]:
                if column.split()[0] not in present:
                    con.execute(f"alter table {relation} add column {column}")
        if spark and table != COMMIT_TABLE:
            _create_view(con, table, definition)


def append(con, table: str, run_id: str, select: str, parameters: Any = None,
           columns: list[str] | None = None) -> None:
    """Append one run's rows (select, with the named columns, by default all the table's) by column name.

    On Spark every table but cluster_runs is written to the run's partition behind its view, replacing whatever a
    failed attempt under the same run id left there.
    """
    if not isinstance(con, SparkConnection):
        con.execute(f"insert into {table} by name {select}", parameters)
        return
    if table == COMMIT_TABLE:  # the commit: its row in one file, which one rename makes visible
        con.execute(f"insert into {table} by name select /*+ COALESCE(1) */ * from ({select}) as run_rows", parameters)
        return
    key, stored = RUN_KEYS.get(table, "run_id"), f"{runs_schema(con)}.{table}"
    listed = ", ".join(name for name in (columns or column_types(con, stored)) if name != key)
    con.execute(f"insert overwrite table {stored} partition ({key} = {sql_text(run_id)}) ({listed}) "
                f"select {listed} from ({select}) as run_rows", parameters)


def run_rows(con, table: str, run_id: str) -> str:
    """A run's rows of a table, also before it is committed (when on Spark the view does not show them yet)."""
    relation = f"{runs_schema(con)}.{table}" if isinstance(con, SparkConnection) else table
    return f"(select * from {relation} where {RUN_KEYS.get(table, 'run_id')} = {sql_text(run_id)})"


def commit(con, tables: Mapping[str, str]) -> None:
    """After the run's row of cluster_runs, on Spark: drop the rows of runs not in cluster_runs (failed, even when
    killed before their partition was in the metastore), and of customer_segments all but the two latest runs' (a
    reader that started before the commit may still read the one before). Only after a commit: a run killed inside
    its own commit can become committed with the next one (whose insert into cluster_runs moves every finished file
    left in the table's folder), so its rows are kept until then."""
    if not isinstance(con, SparkConnection):
        return
    committed = {run_id for (run_id,) in con.execute(f"select run_id from {COMMIT_TABLE}").fetchall()}
    latest = {run_id for (run_id,) in con.execute(sql.latest_runs_sql(2)).fetchall()}
    for table in tables:
        if table == COMMIT_TABLE:
            continue
        key, stored = RUN_KEYS.get(table, "run_id"), f"{runs_schema(con)}.{table}"
        con.execute(f"alter table {stored} recover partitions")
        runs = [unquote(partition.split("=", 1)[1])
                for (partition,) in con.execute(f"show partitions {stored}").fetchall()]
        stale = [run_id for run_id in runs if run_id not in (latest if table == "customer_segments" else committed)]
        if stale:
            con.execute(f"alter table {stored} drop if exists "
                        + ", ".join(f"partition ({key} = {sql_text(run_id)})" for run_id in stale))


def runs_schema(con) -> str:
    """On Spark, the schema of the tables behind the views: every run's rows, committed or not."""
    return f"{con.schema}_runs"


def _prepare_spark_table(con, table: str, definition: str) -> str:
    """Create the table that holds a table's rows (cluster_runs itself, else the one behind its view); its name.

    A table that an earlier segkit wrote in place of the view has its rows moved behind it first; that is redone
    from the start if it is interrupted, as the old table is dropped only once they are all moved.
    """
    if table == COMMIT_TABLE:
        if not con.table_exists(table):
            con.execute(f"create table {table} ({definition}) using {con.table_format}")
        return table
    stored = f"{runs_schema(con)}.{table}"
    create = (f"create table {stored} ({definition}) using {con.table_format} "
              f"partitioned by ({RUN_KEYS.get(table, 'run_id')})")
    if con.table_exists(table) and not con.execute(f"show views like {sql_text(table)}").fetchall():
        con.execute(f"create database if not exists {runs_schema(con)}")
        con.execute(f"drop table if exists {stored}")
        con.execute(create)
        con.execute(f"insert into {stored} by name select * from {table}")
        con.execute(f"drop table {table}")
    elif not con.table_exists(stored):
        con.execute(f"create database if not exists {runs_schema(con)}")
        con.execute(create)
    return stored


def _create_view(con, table: str, definition: str) -> None:
    """The view users read: the committed runs' rows (customer_segments: the latest run's), in the table's columns."""
    shown = (f"run_id = ({sql.latest_runs_sql()})" if table == "customer_segments"
             else f"{RUN_KEYS.get(table, 'run_id')} in (select run_id from {COMMIT_TABLE})")
    columns = [column.split()[0] for column in re.split(r",(?![^(]*\))", definition)]
    con.execute(f"create or replace view {table} as select {', '.join(columns)} "
                f"from {runs_schema(con)}.{table} where {shown}")
