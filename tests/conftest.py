"""Shared fixtures: real DuckDB files built by real `dbt build` runs."""

from __future__ import annotations

import shutil
from pathlib import Path

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
