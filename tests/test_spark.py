"""The same project on Apache Spark (local, dbt-spark's session method): dbt build, `segkit cluster`, SQL on
the tables and the report, and the same features and segments as DuckDB on the demo data.

The Spark metastore and tables live in a temporary SEGKIT_SPARK_DIR; the project is built once per module.

The Spark builds run the unit tests (they feed the Spark macros edge rows the demo lacks) but not the data tests:
the DuckDB build runs those, and every Spark table is compared with DuckDB's row by row here, which checks
everything they would. The last test kills a `segkit cluster` while it writes, as tests/test_failures.py does on
DuckDB.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from segkit.cli import cli
from segkit.config import load_settings
from segkit.dbt_runner import run_dbt
from segkit.engine import connect, session
from segkit.run_writes import runs_schema
from segkit.store import RUN_TABLES, TABLES
from tests.conftest import ROOT, SEGKIT

pytestmark = pytest.mark.spark

K = 6
# Decimal rounding differs by one cent where DuckDB divides decimals through a double and Spark does not;
# return_rate is a double ratio of decimals. Every other feature, date and count is identical.
TOLERANCE = {"avg_order_value": 0.01 + 1e-9, "return_rate": 1e-9}

NO_DATA_TESTS = ("build", "--exclude", "test_type:data")
# The tables every route is compared with DuckDB on (assert_same_features_and_segments).
COMPARED = {
    "features": "select * from customer_rfm order by customer_id",
    "quality": "select reason, row_count from data_quality_summary",
    "segments": "select * from customer_segments order by customer_id",
}

SEGMENT_REVENUE_SQL = """
    select segment_name, count(*) as customers, sum(r.monetary_total) as revenue,
           round(100 * sum(r.monetary_total) / sum(sum(r.monetary_total)) over (), 1) as revenue_pct
    from customer_segments s join customer_rfm r using (customer_id)
    group by segment_name order by revenue desc
"""


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory):
    """dbt build on Spark, `segkit cluster --target spark`, the dbt scoring model, and every table the tests read."""
    folder = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_SPARK_DIR", str(folder))
        build = run_dbt(load_settings(project_dir=ROOT, target="spark"), NO_DATA_TESTS)
        result = CliRunner().invoke(cli, ["cluster", "--target", "spark", "--k", str(K), "--json",
                                          "--report-path", str(folder / "report.html")])
        assert result.exit_code == 0, result.output
        # The dbt assignment model, now that a run exists, scores every customer in Spark SQL too.
        scored = run_dbt(load_settings(project_dir=ROOT, target="spark"),
                         (*NO_DATA_TESTS, "--select", "customer_segments_scored"))
        with connect(load_settings(target="spark"), read_only=True) as con:
            tables = {
                **{name: con.execute(sql).df() for name, sql in COMPARED.items()},
                "scored": con.execute("select * from customer_segments_scored order by customer_id").df(),
                "revenue": con.execute(SEGMENT_REVENUE_SQL).df(),
                "history": con.execute("select run_id, count(*) as customers from segment_assignment_history "
                                       "group by run_id").df(),
                "published": published_tables(con),
            }
    return build, json.loads(result.stdout), scored, tables, folder / "report.html"


@pytest.fixture(scope="module")
def duckdb_run(demo_db, tmp_path_factory):
    """The demo built by dbt on DuckDB, clustered with the same k and seed."""
    db_path = tmp_path_factory.mktemp("duckdb_k") / "demo.duckdb"
    db_path.write_bytes(demo_db.read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_DB", str(db_path))
        result = CliRunner().invoke(cli, ["cluster", "--k", str(K), "--json", "--no-report"])
        assert result.exit_code == 0, result.output
        with connect(load_settings()) as con:
            return json.loads(result.stdout), {name: con.execute(sql).df() for name, sql in COMPARED.items()}


def test_dbt_build_on_spark_builds_every_model_and_passes_every_unit_test(spark_run):
    build = spark_run[0]
    done = re.search(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+) NO-OP=\d+ TOTAL=(\d+)", build.output)
    passed, warned, errors, skipped, total = map(int, done.groups())
    assert (errors, skipped, warned) == (0, 0, 0)
    assert passed == total
    ran = re.search(r"Finished running (.*) in ", build.output).group(1)
    assert re.search(r"\d+ table models, 9 unit tests", ran) and "data test" not in ran, ran


def test_every_customer_gets_one_segment_queryable_in_spark_sql(spark_run):
    _, summary, _, tables, _ = spark_run
    segments, features = tables["segments"], tables["features"]
    assert len(segments) == segments["customer_id"].nunique() == len(features) == summary["n_customers"]
    assert set(segments["customer_id"]) == set(features["customer_id"])
    revenue = tables["revenue"]
    assert len(revenue) == K
    assert revenue["customers"].sum() == len(features)
    assert revenue["revenue"].astype(float).sum() == pytest.approx(features["monetary_total"].astype(float).sum())
    assert tables["history"].set_index("run_id")["customers"].to_dict() == {summary["run_id"]: len(features)}


def test_the_dbt_assignment_model_gives_every_customer_the_same_segment_on_spark(spark_run):
    _, summary, _, tables, _ = spark_run
    scored, segments = tables["scored"], tables["segments"]
    assert (scored["run_id"] == summary["run_id"]).all()
    assert scored["customer_id"].tolist() == segments["customer_id"].tolist()
    assert (scored["segment_id"].to_numpy() == segments["segment_id"].to_numpy()).all()
    assert np.allclose(scored["distance_to_centroid"], segments["distance_to_centroid"], rtol=1e-9, atol=1e-9)


def test_cluster_json_says_it_ran_on_spark_and_where_the_tables_are(spark_run):
    _, summary, _, _, report = spark_run
    assert "db_path" not in summary
    assert (summary["engine"], summary["target"], summary["schema"]) == ("spark", "spark", "segkit")
    warehouse = report.parent / "warehouse"  # SEGKIT_SPARK_DIR is the report's folder
    assert summary["warehouse"] == str(warehouse)
    assert (warehouse / "segkit.db" / "cluster_runs").is_dir()


def test_report_is_rendered_from_spark_without_customer_ids(spark_run):
    _, summary, _, tables, report = spark_run
    html = report.read_text(encoding="utf-8")
    assert summary["run_id"] in html
    for segment in summary["segments"]:
        assert segment["name"] in html
    ids = set(tables["segments"]["customer_id"])
    assert not ids & set(re.findall(r"\b\d{5}\b", html))


def assert_same_features(features_duck: pd.DataFrame, features_spark: pd.DataFrame) -> None:
    """Every customer's every feature of customer_rfm (ordered by customer_id) alike on both engines, within TOLERANCE."""
    assert features_spark["customer_id"].tolist() == features_duck["customer_id"].tolist()
    for column in features_duck.columns.drop("customer_id"):
        left, right = features_duck[column], features_spark[column]
        assert (left.isna() == right.isna()).all(), column
        if pd.api.types.is_numeric_dtype(left):
            gap = np.abs(left.astype(float) - right.astype(float)).max()
            assert not gap > TOLERANCE.get(column, 0.0), (column, gap)
        else:
            assert left.astype(str).tolist() == right.astype(str).tolist(), column


def test_spark_and_duckdb_give_the_same_features_and_segments(spark_run, duckdb_run):
    _, spark_summary, _, spark, _ = spark_run
    assert_same_features_and_segments(spark_summary, spark, *duckdb_run)


def assert_same_features_and_segments(spark_summary: dict, spark: dict, duck_summary: dict, duck: dict) -> None:
    """A Spark route's `segkit cluster --json` summary and COMPARED tables are DuckDB's (`duckdb_run`): every
    feature within TOLERANCE, the same data-quality counts, segments, and each customer's segment."""
    assert_same_features(duck["features"], spark["features"])
    assert dict(spark["quality"].itertuples(index=False)) == dict(duck["quality"].itertuples(index=False))
    # The same hash-drawn fit sample on both engines, so the same model and the same segments.
    sizes = [(s["segment_id"], s["name"], s["customers"]) for s in spark_summary["segments"]]
    assert sizes == [(s["segment_id"], s["name"], s["customers"]) for s in duck_summary["segments"]]
    assert spark["segments"]["segment_id"].tolist() == duck["segments"]["segment_id"].tolist()


def published_tables(con) -> dict[str, pd.DataFrame]:
    """Every table segkit publishes, as a reader sees it, in a stable row order."""
    tables = {}
    for table in TABLES:
        frame = con.execute(f"select * from {table}").df()
        tables[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return tables


def uncommitted_runs(con) -> set[str]:
    """The runs with rows behind the views but no row in cluster_runs."""
    committed = {run for (run,) in con.execute("select run_id from cluster_runs").fetchall()}
    stored = set()
    for table in TABLES:
        if table != "cluster_runs":
            stored |= {partition.split("=", 1)[1] for (partition,) in
                       con.execute(f"show partitions {runs_schema(con)}.{table}").fetchall()}
    return stored - committed


def test_a_spark_run_killed_while_writing_leaves_every_table_as_it_was_and_the_next_run_completes(spark_run,
                                                                                                 tmp_path):
    _, first, _, tables, report = spark_run
    folder, before = report.parent, tables["published"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_SPARK_DIR", str(folder))
        settings = load_settings(project_dir=ROOT, target="spark")
        # The run's customers are written first and its row of cluster_runs last: kill it (driver and JVM) as soon
        # as its customers are written, while it writes the other tables.
        customers = folder / "warehouse" / "segkit_runs.db" / "customer_segments"
        written = {path.name for path in customers.iterdir()}
        log = tmp_path / "killed.log"
        with log.open("w") as stderr:
            process = subprocess.Popen([SEGKIT, "cluster", "--target", "spark", "--k", str(K), "--no-report"],
                                       env={**os.environ, "SEGKIT_SPARK_DIR": str(folder)}, cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + 600
        while not (new := {path.name for path in customers.iterdir() if path.name.startswith("run_id=")} - written):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        while True:  # the JVM too, which holds the metastore
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        with session(settings), connect(settings) as con:
            killed = new.pop().split("=", 1)[1]
            assert not con.execute("select * from cluster_runs where run_id = ?", [killed]).fetchall()
            after = published_tables(con)
            for table, frame in before.items():
                pd.testing.assert_frame_equal(after[table], frame, obj=table)
            result = CliRunner().invoke(cli, ["cluster", "--target", "spark", "--k", str(K), "--json",
                                              "--no-report"])
            assert result.exit_code == 0, result.output
            run_id = json.loads(result.stdout)["run_id"]
            runs = {first["run_id"], run_id}
            now = published_tables(con)
            assert set(now["cluster_runs"]["run_id"]) == runs
            for table in RUN_TABLES:
                assert set(now[table]["run_id"]) == runs, table
            assert set(now["customer_segments"]["run_id"]) == {run_id}
            assert len(now["customer_segments"]) == len(before["customer_segments"])
            history = now["segment_assignment_history"]
            assert (history["run_id"] == run_id).sum() == len(before["customer_segments"])
            assert set(now["segment_migration"]["to_run_id"]) == {run_id}
            assert not uncommitted_runs(con)  # the killed run's rows are gone, from the disk too
            assert not (customers / f"run_id={killed}").exists()
