"""Failures with real processes: segkit killed while writing, two runs at once, too little memory."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from segkit.config import load_settings
from segkit.dbt_runner import run_dbt
from segkit.errors import SegkitError
from segkit.store import RUN_TABLES
from tests.conftest import ROOT, SEGKIT, dbt_build, segkit, segkit_environment, snapshot

KILLS = 5
KILL_SEED = 7


def start_cluster(db_path: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen([SEGKIT, "cluster", "--no-report", *(options or ("--k", "4"))],
                            env=segkit_environment(db_path), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_write_back(process: subprocess.Popen) -> float:
    """Read progress until the write transaction opens (the 'assigning' step); return the time it did."""
    for message in process.stderr:
        if message.startswith("... assigning"):
            return time.monotonic()
    raise AssertionError(f"segkit cluster ended before writing: {process.wait()}")


def run_ids(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """The run ids in every table that has a run_id column."""
    tables = [name for (name,) in con.execute(
        "select distinct table_name from information_schema.columns where column_name = 'run_id' "
        "and table_name in (select table_name from information_schema.tables where table_type = 'BASE TABLE')"
    ).fetchall()]
    return {table: {run for (run,) in con.execute(f'select distinct run_id from "{table}"').fetchall()}
            for table in tables}


def assert_consistent(db_path: Path) -> set[str]:
    """The database opens; every run is complete in every history table and nothing refers to a missing run."""
    with duckdb.connect(str(db_path)) as con:  # read-write: replays any write-ahead log, as the next run would
        ids = run_ids(con)
        runs = ids["cluster_runs"]
        for table in RUN_TABLES:
            assert ids[table] == runs, table
        for table, found in ids.items():
            assert found <= runs, table
        latest = con.execute("select run_id from cluster_runs order by created_at desc limit 1").fetchone()[0]
        assert ids["customer_segments"] == {latest}
        customers = con.execute("select count(*) from customer_rfm").fetchone()[0]
        per_run = dict(con.execute("select run_id, count(*) from segment_assignment_history group by 1").fetchall())
        assert set(per_run.values()) == {customers}
        assert con.execute("select count(*) from customer_segments").fetchone()[0] == customers
    return runs


@pytest.fixture
def clustered_copy(clustered_db, tmp_path) -> Path:
    path = tmp_path / "db.duckdb"
    shutil.copy(clustered_db, path)
    return path


@pytest.mark.slow
def test_sigkill_during_write_back_never_leaves_a_half_run(clustered_copy):
    runs = assert_consistent(clustered_copy)
    # One undisturbed run measures how long write-back takes; kills then land at seeded points inside it.
    process = start_cluster(clustered_copy)
    opened = wait_for_write_back(process)
    assert process.wait() == 0
    window = time.monotonic() - opened
    runs = assert_consistent(clustered_copy)
    assert len(runs) == 2
    delays = random.Random(KILL_SEED).sample([window * step / 20 for step in range(20)], KILLS)
    outcomes = []
    for delay in delays:
        process = start_cluster(clustered_copy)
        wait_for_write_back(process)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        killed = process.wait() == -signal.SIGKILL
        after = assert_consistent(clustered_copy)
        assert after == runs or (len(after - runs) == 1 and after > runs)
        outcomes.append((round(delay, 3), killed, len(after - runs)))
        runs = after
    print(f"write-back window {window:.2f}s; (delay s, killed, runs added): {outcomes}")
    assert sum(killed for _, killed, _ in outcomes) >= KILLS - 1  # the kills really hit running processes


@pytest.mark.slow
def test_two_clusters_at_once_give_one_complete_run_and_a_clean_refusal(clustered_copy):
    before = assert_consistent(clustered_copy)
    first = start_cluster(clustered_copy, "--k-max", "10")
    for message in first.stderr:
        if message.startswith("... scanning k"):
            break
    # Paused mid-run, the first holds its lock for as long as the second needs, however fast the scan is.
    first.send_signal(signal.SIGSTOP)
    try:
        second = segkit("cluster", "--k", "4", "--no-report", db_path=clustered_copy)
    finally:
        first.send_signal(signal.SIGCONT)
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert "writing results" in first_err  # the first was still running when the second was refused
    assert second.returncode == 3, second.stderr
    assert "Traceback" not in second.stderr
    assert "Another `segkit cluster` is running" in second.stderr and "Wait for it to finish" in second.stderr
    after = assert_consistent(clustered_copy)
    assert len(after - before) == 1


def low_memory_profile(folder: Path, memory_limit: str, temp_directory: Path | None = None) -> Path:
    settings = f'        memory_limit: "{memory_limit}"\n        threads: 1\n'
    if temp_directory:
        settings += f'        temp_directory: "{temp_directory}"\n'
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(
        "segkit:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: \"{{ env_var('SEGKIT_DB', 'segkit.duckdb') }}\"\n      threads: 1\n"
        "      plugins:\n        - module: segkit.pseudonyms\n        - module: segkit.reader\n"
        "      settings:\n" + settings)
    return folder


def test_segkit_connects_with_the_profile_settings(tmp_path, monkeypatch):
    from segkit.engine import connect

    monkeypatch.setenv("DBT_PROFILES_DIR", str(low_memory_profile(tmp_path / "p", "300MB", tmp_path / "spill")))
    with connect(load_settings(project_dir=ROOT, db_path=tmp_path / "x.duckdb")) as con:
        limit, threads, spill = con.execute("select current_setting('memory_limit'), current_setting('threads'), "
                                            "current_setting('temp_directory')").fetchone()
    assert (limit, threads, spill) == ("286.1 MiB", 1, str(tmp_path / "spill"))


@pytest.mark.slow
def test_too_little_memory_fails_clearly_and_corrupts_nothing(clustered_copy, tmp_path, monkeypatch):
    before = snapshot(clustered_copy)
    monkeypatch.setenv("DBT_PROFILES_DIR", str(low_memory_profile(tmp_path / "p", "1MB")))
    with pytest.raises(SegkitError, match="DuckDB ran out of memory .*Raise memory_limit, or set temp_directory"):
        run_dbt(load_settings(project_dir=ROOT, db_path=clustered_copy))
    result = segkit("cluster", "--k", "4", "--no-report", db_path=clustered_copy,
                    env={"DBT_PROFILES_DIR": str(tmp_path / "p")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "ran out of memory" in result.stderr and "previous results are as they were" in result.stderr
    monkeypatch.delenv("DBT_PROFILES_DIR")
    after = snapshot(clustered_copy)  # opens; dbt's failed model left the tables it had not reached alone
    for table in ("customer_segments", "cluster_runs", "segment_assignment_history", "customer_rfm"):
        assert after[table] == before[table], table
    assert_consistent(clustered_copy)


@pytest.mark.slow
def test_a_dbt_build_during_segkit_cluster_never_leaves_segments_fitted_on_the_old_features(clustered_copy):
    before = snapshot(clustered_copy)
    first = start_cluster(clustered_copy, "--k-max", "10")
    for message in first.stderr:
        if message.startswith("... scanning k"):  # the features are read and the database is closed
            break
    # Paused between reading the features and writing the segments, while a real build replaces customer_rfm.
    first.send_signal(signal.SIGSTOP)
    try:
        dbt_build(clustered_copy, analysis_date="2011-06-01")
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 1, first_err
    assert "Traceback" not in first_err
    assert ("customer_rfm changed while segkit cluster was running (a dbt build finished meanwhile); nothing was "
            "written; run segkit cluster again") in first_err
    after = snapshot(clustered_copy)
    assert after["customer_rfm"] != before["customer_rfm"]  # the build landed
    for table in ("customer_segments", *RUN_TABLES):
        assert after[table] == before[table], table
