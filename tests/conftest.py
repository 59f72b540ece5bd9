"""Shared fixtures: real DuckDB files built by real `dbt build` runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from filelock import FileLock

from segkit.config import load_settings
from segkit.dbt_runner import run_dbt

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "data" / "demo" / "online_retail_demo.csv.gz"
DEMO_TRUTH = ROOT / "data" / "demo" / "online_retail_demo_truth.csv"

# Each pytest-xdist worker gets its own dbt target/ and logs/, so dbt runs in parallel never share files.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["DBT_TARGET_PATH"] = str(ROOT / "target" / os.environ["PYTEST_XDIST_WORKER"])
    os.environ["DBT_LOG_PATH"] = str(ROOT / "logs" / os.environ["PYTEST_XDIST_WORKER"])
DBT_TARGET = Path(os.environ.get("DBT_TARGET_PATH", ROOT / "target"))
# dbt builds every model here; a build that passes publishes the marts to main, where users and segkit read them.
BUILD_SCHEMA = "main_build"


def pytest_collection_modifyitems(items) -> None:
    """Longest modules first, so none starts last on a worker and holds up the end of the run: Spark's, then the
    others by their number of slow tests (`--dist loadfile --no-loadscope-reorder` hands modules out in this
    order)."""
    weight: dict[Path, int] = {}
    for item in items:
        cost = 1000 if item.get_closest_marker("spark") else 10 if item.get_closest_marker("slow") else 1
        weight[item.path] = weight.get(item.path, 0) + cost
    items.sort(key=lambda item: -weight[item.path])


def dbt_build(db_path: Path, select: str | None = None, unit_tests: bool = False, **dbt_vars) -> Path:
    """Run the project's `dbt build` (of the nodes `select` names, else all) into db_path; return db_path.

    The dbt unit tests give a model fixed rows, so they pass or fail alike on any input: the session's demo build
    (`demo_db`) runs them, and other builds leave them out (unit_tests=False): a second of CPU each."""
    args = ("build", "--select", select) if select else ("build",)
    if not unit_tests:
        args += ("--exclude", "test_type:unit")
    run_dbt(load_settings(project_dir=ROOT, db_path=db_path), args=args, dbt_vars=dbt_vars or None)
    return db_path


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """The folder `build` filled, once per test session: under pytest-xdist the first worker to ask builds it under a
    file lock in the folder all workers share (pytest-xdist's documented recipe), and the others wait and reuse it.
    What is in it is read-only for tests."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / "built_once" / name
    done = folder / ".done"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{folder}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a worker whose build failed left behind
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The shipped demo data built by dbt, once per test session. Read-only for tests: copy it (see `fresh_demo_db`)
    to change it."""
    return built_once(tmp_path_factory, "demo",
                      lambda folder: dbt_build(folder / "demo.duckdb", unit_tests=True)) / "demo.duckdb"


@pytest.fixture(scope="session")
def demo_db_as_of_2011(tmp_path_factory) -> Path:
    """The shipped demo data built by dbt as of 2011-01-01 (var analysis_date), once per test session. Read-only."""
    return built_once(tmp_path_factory, "demo_as_of_2011",
                      lambda folder: dbt_build(folder / "demo.duckdb", analysis_date="2011-01-01")) / "demo.duckdb"


@pytest.fixture
def fresh_demo_db(demo_db, tmp_path) -> Path:
    """A private copy of the demo database that a test may change."""
    copy = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, copy)
    return copy


SEGKIT = str(Path(sys.executable).parent / "segkit")


def segkit_environment(db_path: Path, env: dict | None = None) -> dict[str, str]:
    """The environment the real `segkit` command runs in on db_path, from the repository root."""
    return {**os.environ, "SEGKIT_DB": str(db_path), "SEGKIT_PROJECT_DIR": str(ROOT), **(env or {})}


def segkit(*args: str, db_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `segkit` command on db_path."""
    return subprocess.run([SEGKIT, *args], env=segkit_environment(db_path, env), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def snapshot(db_path: Path) -> dict[str, list]:
    """Every table users and segkit read (schema main), its rows sorted, so a later state can be compared exactly."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = [name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_type = 'BASE TABLE' and table_schema = 'main'"
        ).fetchall()]
        return {name: sorted(map(repr, con.execute(f'select * from "{name}"').fetchall())) for name in tables}


@pytest.fixture(scope="session")
def clustered_db(demo_db, tmp_path_factory) -> Path:
    """The demo database with one clustering run: the previous results a bad run must not touch. Built once per
    test session; read-only for tests (copy it to change it)."""
    def cluster(folder: Path) -> None:
        from segkit.clustering import run_clustering  # scikit-learn: imported by the sessions that need it

        shutil.copy(demo_db, folder / "clustered.duckdb")
        # In-process: a `segkit cluster` process pays 2 s of imports; the tests of the command start it.
        run_clustering(load_settings(project_dir=ROOT, db_path=folder / "clustered.duckdb", k=4, write_report=False))

    return built_once(tmp_path_factory, "clustered", cluster) / "clustered.duckdb"


@pytest.fixture
def previous_results(clustered_db, tmp_path) -> tuple[Path, dict[str, list]]:
    """A private copy of the clustered database and a snapshot of its tables: what a stopped run must not change."""
    path = tmp_path / "previous.duckdb"
    shutil.copy(clustered_db, path)
    return path, snapshot(path)


CLEANING_MODELS = ("stg_raw__lines", "int_lines_duplicated", "int_lines_checked",
                   "int_lines_aggregated_to_customers", "int_analysis_date_resolved", "int_lines_classified",
                   "int_lines_kept", "int_lines_rejected",
                   "data_quality_summary")
_CATALOG = "cleaning"


@dataclass(frozen=True)
class CompiledCleaning:
    """The compiled SQL of the real cleaning models (dbt compile), reading every CSV file in `folder`.

    Running it takes milliseconds instead of a `dbt build`'s seconds, for tests with many small inputs.
    """

    folder: Path
    sql: dict[str, str]

    def run(self, files: dict[str, str], time_zone: str | None = None) -> duckdb.DuckDBPyConnection:
        """Replace the input files, then build the models, in order, in a fresh in-memory database (whose session
        time zone is time_zone, when given)."""
        for old in self.folder.glob("*.csv"):
            old.unlink()
        for name, text in files.items():
            (self.folder / name).write_text(text, encoding="utf-8")
        con = duckdb.connect()
        if time_zone:
            con.execute(f"set TimeZone = '{time_zone}'")
        con.execute(f"attach ':memory:' as {_CATALOG}")
        con.execute(f"create schema {_CATALOG}.{BUILD_SCHEMA}")
        con.execute(f"use {_CATALOG}.{BUILD_SCHEMA}")
        seed = ROOT / "dbt_project" / "seeds" / "rejection_reasons.csv"
        con.execute(f"create table rejection_reasons as select * from read_csv('{seed}')")
        for model, sql in self.sql.items():
            con.execute(f"create {'view' if model.startswith('stg_') else 'table'} {model} as {sql}")
        return con

    def __repr__(self) -> str:
        return f"CompiledCleaning({self.folder})"


def compile_cleaning(folder: Path, models: tuple[str, ...] = CLEANING_MODELS, **dbt_vars) -> CompiledCleaning:
    """`dbt compile` of `models` (in dependency order) with dbt_vars, reading every CSV file in folder."""
    run_dbt(load_settings(project_dir=ROOT, db_path=folder / f"{_CATALOG}.duckdb"),
            args=("compile", "--select", " ".join(models)),
            dbt_vars={"transactions_path": str(folder / "*.csv"), "extraction_date": "2011-12-31", **dbt_vars})
    compiled = DBT_TARGET / "compiled" / "segkit" / "dbt_project" / "models"
    # Unit tests compile to files of the same name under <models>.yml/ folders: skip those.
    paths = {path.stem: path for path in compiled.rglob("*.sql") if not path.parent.name.endswith(".yml")}
    return CompiledCleaning(folder, {model: paths[model].read_text() for model in models})


@pytest.fixture(scope="session")
def compiled_cleaning(tmp_path_factory) -> CompiledCleaning:
    """The project's defaults, compiled once per test session; each worker runs it on a folder of its own."""
    def compile(shared: Path) -> None:
        (shared / "input").mkdir()
        compiled = compile_cleaning(shared / "input")
        (shared / "sql.json").write_text(json.dumps(compiled.sql))

    shared = built_once(tmp_path_factory, "compiled_cleaning", compile)
    folder = tmp_path_factory.mktemp("cleaning")
    sql = json.loads((shared / "sql.json").read_text())
    return CompiledCleaning(folder, {model: text.replace(str(shared / "input"), str(folder))
                                     for model, text in sql.items()})
