"""The project on a Spark cluster the way a team runs one (tests/spark_cluster.py): a standalone master and worker,
a Hive metastore service every Spark process shares, and a Thrift Server on both. dbt builds through the Thrift
Server (target spark_thrift); segkit clusters through the session target spark_thrift names (spark_cluster) while
the server runs; both do their work on the worker's executors, and every customer's segment is DuckDB's.

What tests/test_spark.py checks on local Spark (unit tests on Spark, the dbt scoring model, the report's privacy)
is not repeated here: the build leaves out the data and unit tests.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from click.testing import CliRunner
from pyhive import hive

from segkit.cli import cli
from segkit.config import load_settings
from segkit.dbt_runner import run_dbt
from segkit.engine import connect, location, session, session_target
from segkit.errors import SegkitError
from tests import test_spark
from tests.conftest import ROOT, SEGKIT
from tests.spark_cluster import Cluster

pytestmark = pytest.mark.spark

duckdb_run = test_spark.duckdb_run  # the demo on DuckDB, clustered with the same k and seed
NO_TESTS = ("build", "--exclude", "test_type:data", "test_type:unit")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The running cluster, with the variables the cluster targets of profiles.yml read set to it."""
    running = Cluster(tmp_path_factory.mktemp("spark_cluster")).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in running.environment.items():
                patch.setenv(name, value)
            yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def thrift_run(cluster):
    """dbt build through the Thrift Server, then `segkit cluster --target spark_thrift`, the compared tables, and
    a second segkit process (`segkit report` on spark_cluster) and a PyHive query run while that session is open."""
    settings = load_settings(project_dir=ROOT, target="spark_thrift")
    build = run_dbt(settings, NO_TESTS)
    report = cluster.folder / "report.html"
    with session(settings):  # segkit's session, a metastore client until the block ends
        result = CliRunner().invoke(cli, ["cluster", "--target", "spark_thrift", "--k", str(test_spark.K), "--json",
                                          "--report-path", str(report)])
        assert result.exit_code == 0, result.output
        second = subprocess.Popen([SEGKIT, "report", "--target", "spark_cluster", "--report-path",
                                   str(cluster.folder / "second.html")], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        with connect(settings, read_only=True) as con:
            tables = {name: con.execute(sql).df() for name, sql in test_spark.COMPARED.items()}
        with hive.connect(host="127.0.0.1", port=cluster.thrift_port, username="segkit") as connection:
            cursor = connection.cursor()
            cursor.execute("select count(*) from segkit.customer_segments")
            through_thrift = cursor.fetchone()[0]
        _, second_error = second.communicate(timeout=900)
    return build, json.loads(result.stdout), tables, report, (second.returncode, second_error), through_thrift


def test_dbt_builds_through_the_thrift_server_and_segkit_clusters_beside_it(thrift_run, cluster):
    build, summary, tables, report, _, _ = thrift_run
    assert build.counts["ERROR"] == 0 and build.counts["PASS"] == build.counts["TOTAL"] > 0
    assert (summary["engine"], summary["target"], summary["schema"]) == ("spark", "spark_thrift", "segkit")
    assert summary["warehouse"] == str(cluster.warehouse)
    # The run's files in the shared warehouse: cluster_runs, the table that commits a run (the others are views).
    assert (cluster.warehouse / "segkit.db" / "cluster_runs").is_dir()
    assert summary["run_id"] in report.read_text(encoding="utf-8")
    assert len(tables["segments"]) == summary["n_customers"]


def test_the_thrift_route_gives_every_customer_duckdbs_segment(thrift_run, duckdb_run):
    _, summary, tables, _, _, _ = thrift_run
    test_spark.assert_same_features_and_segments(summary, tables, *duckdb_run)


def test_dbts_and_segkits_tasks_ran_on_the_workers_executors(thrift_run, cluster):
    """The Thrift Server's application (dbt's queries) and segkit's each had an executor on the worker that ran
    tasks (Python ones too, for `segkit cluster`): the drivers only planned."""
    executor_logs: dict[str, list[str]] = {}
    for name, application in re.findall(r"Registered app (\S+) with ID (app-\S+)", cluster.log("master")):
        executor_logs.setdefault(name, []).append("".join(
            log.read_text(errors="replace") for log in (cluster.folder / "work" / application).glob("*/stderr")))
    assert len(executor_logs.get("segkit-thrift", [])) == 1 and executor_logs.get("segkit"), list(executor_logs)
    assert all("Finished task" in logs for application in executor_logs.values() for logs in application)
    assert "PythonRunner: Starting Python task" in executor_logs["segkit"][0]  # `segkit cluster`'s session


def test_a_second_segkit_process_and_the_thrift_server_share_the_metastore_with_segkits_session(thrift_run, cluster):
    """Embedded Derby allows one process; with the metastore service a second segkit process reads the run while
    the first one's session is open, and the Thrift Server answers meanwhile."""
    _, summary, _, _, (returncode, error), through_thrift = thrift_run
    assert returncode == 0, error[-3000:]
    assert summary["run_id"] in (cluster.folder / "second.html").read_text(encoding="utf-8")
    assert through_thrift == summary["n_customers"]


def test_a_remote_input_path_reaches_spark_unchanged(cluster, monkeypatch, tmp_path):
    """No local existence check stops a remote input, and Spark gets the path as written (dbt's log has the
    statement); here Spark has no client for the store, so the build stops there. Every scheme takes this path
    (the macro passes any name with a colon through): one build shows it."""
    path = "s3://segkit-test/orders/2011-*.csv"
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path))
    with pytest.raises(SegkitError) as stopped:
        run_dbt(load_settings(project_dir=ROOT, target="spark_thrift"), NO_TESTS, dbt_vars={"transactions_path": path})
    assert "no input file matches" not in str(stopped.value)
    assert f"using csv options (path '{path}'," in (tmp_path / "dbt.log").read_text()


@pytest.mark.parametrize("warehouse", ["s3a://segkit-team/warehouse", "abfss://lake@segkit.dfs.core.windows.net/wh",
                                       "hdfs://namenode:8020/user/segkit/warehouse"])
def test_a_remote_warehouse_is_reported_as_written(warehouse, monkeypatch):
    monkeypatch.setenv("SEGKIT_SPARK_WAREHOUSE", warehouse)
    for target in ("spark_cluster", "spark_thrift"):
        assert location(load_settings(project_dir=ROOT, target=target))["warehouse"] == warehouse


def test_a_thrift_target_opens_the_session_target_it_names(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGKIT_SPARK_WAREHOUSE", "hdfs:///warehouse")
    companion = session_target(load_settings(project_dir=ROOT, target="spark_thrift"))
    assert companion["method"] == "session"
    assert companion["server_side_parameters"]["spark.hadoop.hive.metastore.uris"].startswith("thrift://")
    profiles = (ROOT / "profiles.yml").read_text().replace("      segkit_session_target: spark_cluster\n", "")
    (tmp_path / "profiles.yml").write_text(profiles)
    with pytest.raises(SegkitError, match="segkit_session_target: spark_cluster"):
        session_target(load_settings(project_dir=ROOT, target="spark_thrift", profiles_dir=tmp_path))
