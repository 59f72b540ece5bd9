"""Where the database is, and what happens when another process holds it."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest

from segkit.dbt_runner import run_dbt
from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError
from segkit.config import load_settings
from segkit.warehouse import connect, require_table
from tests.conftest import ROOT


@pytest.fixture
def locked_db(tmp_path):
    """A DuckDB file held open for writing by another process, as a `duckdb` shell would."""
    path = tmp_path / "locked.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    yield path
    holder.kill()
    holder.wait()


def test_database_path_comes_from_profiles_yml(monkeypatch):
    monkeypatch.delenv("SEGKIT_DB", raising=False)
    assert load_settings(project_dir=ROOT).db_path == ROOT / "segkit.duckdb"


def test_segkit_db_overrides_the_database_path(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGKIT_DB", str(tmp_path / "other.duckdb"))
    assert load_settings(project_dir=ROOT).db_path == tmp_path / "other.duckdb"


def test_a_locked_database_gives_advice_not_a_traceback(locked_db):
    with pytest.raises(SegkitError, match="in use by another process") as raised:
        with connect(locked_db):
            pass
    assert raised.value.exit_code == EXIT_DATABASE_LOCKED


@pytest.mark.slow
def test_dbt_on_a_locked_database_says_what_to_do(locked_db):
    started = time.monotonic()
    with pytest.raises(SegkitError, match="another process holds it") as raised:
        run_dbt(load_settings(project_dir=ROOT, db_path=locked_db))
    assert raised.value.exit_code == EXIT_DATABASE_LOCKED
    assert time.monotonic() - started < 120


def test_missing_table_names_the_next_step(tmp_path):
    with connect(tmp_path / "empty.duckdb") as con:
        with pytest.raises(SegkitError, match="Run `dbt build` first"):
            require_table(con, "customer_rfm")


def test_read_only_connect_to_a_missing_file_says_build_first(tmp_path):
    with pytest.raises(SegkitError, match="does not exist yet"):
        with connect(tmp_path / "missing.duckdb", read_only=True):
            pass
