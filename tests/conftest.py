"""Shared fixtures: real DuckDB files built by real `dbt build` runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from segkit.dbt_runner import run_dbt

ROOT = Path(__file__).resolve().parents[1]
DEMO_DATA = ROOT / "data" / "demo" / "online_retail_demo.csv.gz"
DEMO_TRUTH = ROOT / "data" / "demo" / "online_retail_demo_truth.csv"


def dbt_build(db_path: Path, select: str | None = None, **dbt_vars) -> Path:
    """Run the project's `dbt build` (of the nodes `select` names, else all) into db_path; return db_path."""
    args = ("build", "--select", select) if select else ("build",)
    run_dbt(ROOT, db_path, args=args, dbt_vars=dbt_vars or None)
    return db_path


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The shipped demo data built by dbt. Read-only for tests: copy it (see `fresh_demo_db`) to change it."""
    return dbt_build(tmp_path_factory.mktemp("demo") / "demo.duckdb")


@pytest.fixture
def fresh_demo_db(demo_db, tmp_path) -> Path:
    """A private copy of the demo database that a test may change."""
    copy = tmp_path / "demo.duckdb"
    shutil.copy(demo_db, copy)
    return copy


def segkit(*args: str, db_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `segkit` command on db_path."""
    environment = {**os.environ, "SEGKIT_DB": str(db_path), "SEGKIT_PROJECT_DIR": str(ROOT), **(env or {})}
    return subprocess.run([str(Path(sys.executable).parent / "segkit"), *args], env=environment, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def snapshot(db_path: Path) -> dict[str, list]:
    """Every table's rows, sorted, so a later state can be compared exactly."""
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = [name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_type = 'BASE TABLE'").fetchall()]
        return {name: sorted(map(repr, con.execute(f'select * from "{name}"').fetchall())) for name in tables}


@pytest.fixture(scope="session")
def clustered_db(demo_db, tmp_path_factory) -> Path:
    """The demo database with one clustering run: the previous results a bad run must not touch."""
    path = tmp_path_factory.mktemp("clustered") / "clustered.duckdb"
    shutil.copy(demo_db, path)
    result = segkit("cluster", "--k", "4", "--no-report", db_path=path)
    assert result.returncode == 0, result.stderr
    return path
