"""A Spark cluster on 127.0.0.1 the way a team runs one, from pyspark's own jars: a Hive metastore service, a
standalone master and worker, and a Thrift Server (HiveThriftServer2) on both. Used by tests/test_spark_cluster.py,
and runnable by hand (`python -m tests.spark_cluster FOLDER` prints the variables the profiles.yml targets read,
and keeps the cluster up until Ctrl-C).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
SPARK_CLASS = str(SPARK_HOME / "bin" / "spark-class")
WORKER_CORES = 3        # the Thrift Server and two segkit sessions, one core each (cores may exceed the machine's)
WORKER_MEMORY = "3g"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    """The running services and the environment the profiles.yml cluster targets read (see `environment`)."""

    folder: Path
    master_url: str = ""
    metastore_uri: str = ""
    thrift_port: int = 0
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    @property
    def warehouse(self) -> Path:
        return self.folder / "warehouse"

    @property
    def environment(self) -> dict[str, str]:
        return {"SEGKIT_SPARK_MASTER": self.master_url, "SEGKIT_METASTORE_URI": self.metastore_uri,
                "SEGKIT_SPARK_WAREHOUSE": str(self.warehouse), "SEGKIT_THRIFT_HOST": "127.0.0.1",
                "SEGKIT_THRIFT_PORT": str(self.thrift_port)}

    def start(self, thrift_server: bool = True) -> "Cluster":
        self.folder.mkdir(parents=True, exist_ok=True)
        self.warehouse.mkdir(exist_ok=True)
        metastore_port, master_port = free_port(), free_port()
        self.metastore_uri, self.master_url = f"thrift://127.0.0.1:{metastore_port}", f"spark://127.0.0.1:{master_port}"
        # The metastore service keeps its own Derby database: only this one process opens it.
        self._start("metastore", metastore_port, "org.apache.hadoop.hive.metastore.HiveMetaStore",
                    "-p", str(metastore_port), *_hiveconf({
                        "javax.jdo.option.ConnectionURL":
                            f"jdbc:derby:;databaseName={self.folder / 'metastore_db'};create=true",
                        "hive.metastore.warehouse.dir": str(self.warehouse),
                        "hive.metastore.schema.verification": "false",
                        "datanucleus.schema.autoCreateAll": "true"}))
        self._start("master", master_port, "org.apache.spark.deploy.master.Master",
                    "--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(free_port()))
        self._start("worker", None, "org.apache.spark.deploy.worker.Worker", self.master_url,
                    "--host", "127.0.0.1", "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
                    "--webui-port", str(free_port()), "--work-dir", str(self.folder / "work"))
        if thrift_server:
            self.thrift_port = free_port()
            self._start("thrift", self.thrift_port, "org.apache.spark.deploy.SparkSubmit",
                        "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
                        "--name", "segkit-thrift", "--master", self.master_url,
                        "--driver-memory", "1g", "--executor-memory", "1g", "--conf", "spark.cores.max=1",
                        "--conf", f"spark.hadoop.hive.metastore.uris={self.metastore_uri}",
                        "--conf", f"spark.sql.warehouse.dir={self.warehouse}",
                        "--conf", "spark.ui.enabled=false",
                        "spark-internal", *_hiveconf({"hive.server2.thrift.port": str(self.thrift_port),
                                                      "hive.server2.thrift.bind.host": "127.0.0.1"}))
        return self

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            process.terminate()
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def _start(self, name: str, port: int | None, main_class: str, *args: str) -> None:
        env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_DAEMON_MEMORY": "512m", "SPARK_DRIVER_MEMORY": "512m", "PYSPARK_PYTHON": sys.executable,
               # Hive's asynchronous logging needs a library pyspark does not ship (spark-class passes no
               # Java options to a class that is not Spark's own).
               "JAVA_TOOL_OPTIONS": "-Dhive.async.log.enabled=false"}
        with open(self.folder / f"{name}.log", "wb") as log:
            process = subprocess.Popen([SPARK_CLASS, main_class, *args], cwd=self.folder, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.processes.append((name, process))
        deadline = time.monotonic() + 180
        while not self._ready(name, port):
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the {name} did not start:\n{self.log(name)[-3000:]}")
            time.sleep(0.5)

    def _ready(self, name: str, port: int | None) -> bool:
        if port is None:  # the worker listens on a port it picks; it is ready once the master has it
            return "Successfully registered with master" in self.log(name)
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0


def _hiveconf(settings: dict[str, str]) -> list[str]:
    return [part for key, value in settings.items() for part in ("--hiveconf", f"{key}={value}")]


if __name__ == "__main__":
    cluster = Cluster(Path(sys.argv[1]).resolve()).start()
    print(" ".join(f"{key}={value}" for key, value in cluster.environment.items()), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        cluster.stop()
