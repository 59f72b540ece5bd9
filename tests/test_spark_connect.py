"""Spark Connect and Databricks: the demo through a real Spark Connect server, and what runs of Databricks here.

A module fixture starts a Spark Connect server (the class in pyspark's bundled spark-connect jar) on a free
127.0.0.1 port, with a local Spark inside it, 1 GB and its own warehouse and Derby metastore. dbt (dbt-spark's
session method with spark.remote) and segkit are its clients: neither starts a JVM, the server does the work. The
demo built and clustered through it must match DuckDB's (`clustered_db`, the same k and seed). What tests/test_spark.py
checks on a local session (unit tests on Spark, the dbt scoring model, the report's privacy) is not repeated.

Databricks cannot be reached from here. A `type: databricks` target goes through the same Connect code (its URL from
SPARK_REMOTE), against the local server; `dbt compile` with dbt-databricks and a fake profile needs dbt-databricks,
which cannot share segkit's environment (it requires dbt-spark < 1.11): its test installs it in a virtual environment
of its own, from tests/databricks-constraints.txt.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from segkit.cli import cli
from segkit.config import load_settings
from segkit.dbt_runner import run_dbt
from segkit.engine import connect, location
from segkit.spark_connect import remote_url
from tests.conftest import ROOT, built_once
from tests.test_spark import assert_same_features

K = 4  # clustered_db's k; the seed is the default on both sides
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
# No data tests (the DuckDB build runs them; every table is compared with DuckDB's here) and no unit tests
# (tests/test_spark.py runs them on Spark: the same SQL whether the session is local or remote).
BUILD = ("build", "--exclude", "test_type:data", "test_type:unit")
SEGMENTS_SQL = "select customer_id, segment_id, segment_name from customer_segments order by customer_id"
SIZES_SQL = "select segment_id, segment_name, count(*) from customer_segments group by 1, 2 order by 1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """user + sys CPU time of a running process (and its waited-for children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def connect_server(tmp_path_factory):
    """A running Spark Connect server: its sc:// URL, process and folder. Stopped at the end of the module."""
    import pyspark

    folder = tmp_path_factory.mktemp("spark_connect")
    home, port = Path(pyspark.__file__).parent, free_port()
    settings = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(folder / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true",
        "spark.ui.enabled": "false",
    }
    command = [str(home / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--name", "segkit-test-connect",
               "--master", "local[2]", "--driver-memory", "1g",
               *(item for key, value in settings.items() for item in ("--conf", f"{key}={value}"))]
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    with open(folder / "server.log", "w") as log:
        server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while server.poll() is None and time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(1)
        else:
            pytest.fail(f"the Spark Connect server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
        yield f"sc://127.0.0.1:{port}", server, folder
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own process group: spark-submit's JVM and nothing else
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture(scope="module")
def connect_run(connect_server):
    """The demo through the server: dbt build, `segkit cluster` (with its report), and the tables the tests read,
    with each step's wall time and the CPU time of this process, dbt's and the server's."""
    url, server, folder = connect_server
    timings = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_SPARK_REMOTE", url)
        patch.delenv("SPARK_REMOTE", raising=False)
        settings = load_settings(project_dir=ROOT, target="spark_connect")
        for name, step in (
            ("dbt build", lambda: run_dbt(settings, BUILD)),
            ("segkit cluster", lambda: CliRunner().invoke(cli, [
                "cluster", "--target", "spark_connect", "--k", str(K), "--json",
                "--report-path", str(folder / "report.html")])),
        ):
            children = os.times().children_user + os.times().children_system
            started, own, jvm = time.monotonic(), time.process_time(), cpu_seconds(server.pid)
            result = step()
            timings[name] = {"wall": time.monotonic() - started, "segkit": time.process_time() - own,
                             "dbt": os.times().children_user + os.times().children_system - children,
                             "server": cpu_seconds(server.pid) - jvm}
        assert result.exit_code == 0, result.output
        with connect(load_settings(project_dir=ROOT, target="spark_connect"), read_only=True) as con:
            tables = {
                "features": con.execute("select * from customer_rfm order by customer_id").df(),
                "quality": sorted(con.execute("select reason, row_count from data_quality_summary").fetchall()),
                "segments": con.execute(SEGMENTS_SQL).fetchall(),
                "sizes": con.execute(SIZES_SQL).fetchall(),
            }
    print(json.dumps({"spark_connect_timings": timings}))  # the route's time at demo size (pytest -s)
    return json.loads(result.stdout), tables, folder / "report.html"


@pytest.mark.spark
def test_the_demo_through_spark_connect_matches_duckdb_customer_by_customer(connect_run, clustered_db):
    summary, spark, _ = connect_run
    with duckdb.connect(str(clustered_db), read_only=True) as con:
        duck_features = con.execute("select * from customer_rfm order by customer_id").df()
        assert spark["quality"] == sorted(con.execute("select reason, row_count from data_quality_summary").fetchall())
        assert spark["segments"] == con.execute(SEGMENTS_SQL).fetchall()
        assert spark["sizes"] == con.execute(SIZES_SQL).fetchall()
    assert_same_features(duck_features, spark["features"])
    assert summary["n_customers"] == len(spark["segments"]) == len(duck_features)


@pytest.mark.spark
def test_cluster_says_it_ran_on_the_connect_server_and_writes_the_report(connect_run, connect_server):
    summary, _, report = connect_run
    url, _, folder = connect_server
    assert (summary["engine"], summary["target"], summary["schema"], summary["remote"]) == (
        "spark", "spark_connect", "segkit", url)
    # The server's warehouse holds the tables: no JVM of the client wrote them.
    # The server's warehouse holds the run (cluster_runs commits it; the others are views): no client JVM wrote it.
    assert (folder / "warehouse" / "segkit.db" / "cluster_runs").is_dir()
    html = report.read_text(encoding="utf-8")
    assert summary["run_id"] in html and all(segment["name"] in html for segment in summary["segments"])


@pytest.mark.spark
def test_a_connect_session_leaves_no_connect_mode_behind_for_a_local_session(connect_run):
    # pyspark marks the process as Spark Connect when it opens a Connect session; segkit's close clears that,
    # so a later local session in the same process (tests/test_spark.py on this worker) is a real local one.
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ


@pytest.mark.spark
def test_a_databricks_target_goes_through_the_same_connect_route(connect_run, connect_server, tmp_path):
    url = connect_server[0]
    (tmp_path / "profiles.yml").write_text(
        "segkit:\n  target: databricks\n  outputs:\n    databricks:\n      type: databricks\n"
        "      host: adb-0000000000000000.0.azuredatabricks.net\n      http_path: /sql/1.0/warehouses/0000\n"
        "      token: dapi-not-a-token\n      catalog: spark_catalog\n      schema: segkit\n")
    run_id = connect_run[0]["run_id"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARK_REMOTE", url)  # Databricks Connect's own variable: wins over the profile's cluster
        settings = load_settings(project_dir=ROOT, profiles_dir=tmp_path)
        assert location(settings) == {"engine": "databricks", "target": "databricks", "schema": "segkit",
                                      "remote": url}
        with connect(settings, read_only=True) as con:
            assert con.table_format == "delta"  # Unity Catalog's managed tables
            assert con.execute("select max(run_id) from cluster_runs").fetchone() == (run_id,)
        report = CliRunner().invoke(cli, ["report", "--profiles-dir", str(tmp_path), "--report-path",
                                          str(tmp_path / "report.html")])
    assert report.exit_code == 0, report.output
    assert run_id in (tmp_path / "report.html").read_text(encoding="utf-8")


def spark_connect_profile(folder: Path, parameters: str) -> Path:
    (folder / "profiles.yml").write_text(
        "segkit:\n  target: spark_connect\n  outputs:\n    spark_connect:\n      type: spark\n      method: session\n"
        "      host: localhost\n      schema: segkit\n      server_side_parameters:\n"
        "        spark.remote: sc://spark.example.internal:15002\n" + parameters)
    return folder


def test_a_connect_target_with_options_only_a_starting_jvm_takes_gets_one_clear_message(tmp_path):
    spark_connect_profile(tmp_path, "        spark.sql.shuffle.partitions: '8'\n        spark.driver.memory: 4g\n"
                          "        spark.sql.warehouse.dir: /data/warehouse\n"
                          "        spark.hadoop.javax.jdo.option.ConnectionURL: jdbc:derby:;databaseName=m\n")
    result = CliRunner().invoke(cli, ["cluster", "--profiles-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert ("cannot take spark.driver.memory, spark.sql.warehouse.dir, spark.hadoop.javax.jdo.option.ConnectionURL. "
            "Set them where the server starts") in result.output
    assert "spark.sql.shuffle.partitions" not in result.output  # a runtime option is a Connect session's to set


@pytest.mark.spark
def test_a_connect_server_that_does_not_answer_is_said_in_seconds_without_the_token(tmp_path):
    # pyspark alone would retry for 10 minutes or more before giving up.
    spark_connect_profile(tmp_path, "")
    profiles = tmp_path / "profiles.yml"
    profiles.write_text(profiles.read_text().replace("sc://spark.example.internal:15002",
                                                     f"sc://127.0.0.1:{free_port()}/;token=not-to-be-shown"))
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["cluster", "--profiles-dir", str(tmp_path)])
    assert time.monotonic() - started < 120
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "could not use the Spark Connect server sc://127.0.0.1:" in result.output
    assert "not-to-be-shown" not in result.output
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ


def test_the_shipped_connect_target_takes_its_server_from_an_environment_variable(monkeypatch):
    monkeypatch.setenv("SEGKIT_SPARK_REMOTE", "sc://spark.example.internal:15002")
    settings = load_settings(project_dir=ROOT, target="spark_connect")  # passes the option check
    assert remote_url(settings.profile.output) == "sc://spark.example.internal:15002"
    assert location(settings)["remote"] == "sc://spark.example.internal:15002"


def test_databricks_connect_reaches_the_cluster_of_the_dbt_databricks_profile(monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    cluster = {"type": "databricks", "host": "https://adb-123.4.azuredatabricks.net/", "token": "dapi0123",
               "http_path": "sql/protocolv1/o/123/0601-182128-dcbte59m", "schema": "segkit"}
    # Databricks Connect's connection string for a cluster (the token makes the channel TLS).
    assert remote_url(cluster) == ("sc://adb-123.4.azuredatabricks.net:443/;token=dapi0123;"
                                   "x-databricks-cluster-id=0601-182128-dcbte59m")
    warehouse = {**cluster, "http_path": "/sql/1.0/warehouses/abc123"}
    assert remote_url(warehouse) is None  # a SQL warehouse serves dbt, not Spark Connect
    assert remote_url({**warehouse, "cluster_id": "0601-182128-dcbte59m"}) == remote_url(cluster)


def test_a_databricks_target_without_a_cluster_says_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    (tmp_path / "profiles.yml").write_text(
        "segkit:\n  target: databricks\n  outputs:\n    databricks:\n      type: databricks\n"
        "      host: adb-123.4.azuredatabricks.net\n      http_path: /sql/1.0/warehouses/abc123\n"
        "      token: dapi0123\n      schema: segkit\n")
    result = CliRunner().invoke(cli, ["report", "--profiles-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Databricks Connect, which needs a cluster" in result.output and "dapi0123" not in result.output


def databricks_dbt(folder: Path) -> None:
    """dbt-databricks in a virtual environment of its own (see the module docstring), at the versions of
    tests/databricks-constraints.txt."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_CONSTRAINT=str(ROOT / "tests" / "databricks-constraints.txt"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, timeout=300)
    installed = subprocess.run([str(folder / "venv" / "bin" / "pip"), "install", "--quiet", "dbt-databricks"],
                               env=env, capture_output=True, text=True, timeout=1200)
    assert installed.returncode == 0, installed.stderr[-3000:]


@pytest.mark.slow
def test_dbt_databricks_compiles_the_models_offline_with_the_spark_macros_and_delta_tables(tmp_path_factory, tmp_path):
    dbt = built_once(tmp_path_factory, "dbt_databricks", databricks_dbt) / "venv" / "bin" / "dbt"
    # A fake profile on a SQL warehouse, whose runtime dbt-databricks does not query (it would for a cluster).
    (tmp_path / "profiles.yml").write_text(
        "segkit:\n  target: databricks\n  outputs:\n    databricks:\n      type: databricks\n"
        "      host: adb-0000000000000000.0.azuredatabricks.net\n      http_path: /sql/1.0/warehouses/0000\n"
        "      token: dapi-not-a-token\n      catalog: main\n      schema: segkit\n      threads: 1\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DBT_", "PYTHON", "SEGKIT_"))}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    # Without the cache (its schemas are listed on the warehouse), and without the one model that reads segkit's
    # latest run from the warehouse while it compiles: every other model compiles with no connection.
    compiled = subprocess.run(
        [str(dbt), "compile", "--no-populate-cache", "--exclude", "customer_segments_scored",
         "--profiles-dir", str(tmp_path), "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    assert "Registered adapter: databricks=1.11.8" in compiled.stdout
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = {node["name"]: node for node in manifest["nodes"].values() if node["resource_type"] == "model"}
    compiled_models = {name for name, node in models.items()
                       if (tmp_path / "target" / "compiled" / "segkit" / node["original_file_path"]).is_file()}
    assert compiled_models == set(models) - {"customer_segments_scored"}
    # Unity Catalog's managed tables are Delta: so are segkit's models and seeds there (Parquet on Spark).
    assert {node["config"]["file_format"] for node in manifest["nodes"].values()
            if node["resource_type"] in ("model", "seed")} == {"delta"}
    # dbt-databricks falls back to segkit's spark__ macros: Java date patterns, Spark's line numbering.
    staging = (tmp_path / "target" / "compiled" / "segkit" / models["stg_raw__lines"]["original_file_path"]).read_text()
    assert 'to_timestamp(nullif(trim(cast(`InvoiceDate` as string)), \'\'), "yyyy-M-d H:m:s")' in staging
    assert "row_number() over (order by monotonically_increasing_id())" in staging
    assert "`main`.`raw`.`transactions`" in staging
