"""A database path segkit cannot use: one message naming the path and the fix, exit code 1, no traceback.

Each case runs the real `segkit` (and `dbt`) command. Tests run as root here and in CI, and root ignores file
modes, so a read-only location is a real read-only mount (or an immutable file), and a full disk a small tmpfs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from segkit.dbt_runner import dbt_executable
from tests.conftest import ROOT, segkit, snapshot

READERS = (("report", "--report-path", "{tmp}/report.html"), ("drift",),
           ("assign", "--value", "recency_days=30", "--value", "frequency=4", "--value", "monetary_total=850"))
CLUSTER = ("cluster", "--k", "4", "--no-report")
SEGKIT_TABLES = ("customer_segments", "cluster_runs", "segment_assignment_history", "customer_rfm")


def run(args: tuple[str, ...], db_path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return segkit(*(arg.format(tmp=tmp_path) for arg in args), db_path=db_path)


def assert_message(result: subprocess.CompletedProcess, *parts: str) -> None:
    """Exit code 1 and one message, without a traceback, holding every part."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: "), result.stderr
    for part in parts:
        assert part in message, (part, message)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size_kib, *files, read_only=False): a fresh tmpfs holding copies of files; unmounted afterwards."""
    mounted = []

    def mount(size_kib: int, *files: Path, read_only: bool = False) -> Path:
        folder = tmp_path / f"mount{len(mounted)}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"mounting a tmpfs needs root, as tests have here and in CI: {done.stderr}"
        mounted.append(folder)
        for file in files:
            shutil.copy(file, folder / file.name)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def not_duckdb(tmp_path, request) -> Path:
    """A file that is not a DuckDB database: text, Parquet (which DuckDB itself would open as an empty
    in-memory database), or empty."""
    kind = request.param
    path = tmp_path / ("customers.parquet" if kind == "parquet" else "customers.duckdb")
    if kind == "parquet":
        duckdb.sql(f"copy (select 'C1' as customer_id, 10.5 as amount) to '{path}' (format parquet)")
    else:
        path.write_text("customer_id,amount\nC1,10.5\n" if kind == "text" else "")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("not_duckdb, commands", [("text", (CLUSTER, *READERS)), ("parquet", (CLUSTER,)),
                                                  ("empty", (CLUSTER,))], indirect=["not_duckdb"])
def test_a_file_that_is_not_a_duckdb_database_stops_every_segkit_command(not_duckdb, commands, tmp_path):
    before = not_duckdb.read_bytes()
    for args in commands:  # every command opens the database through the same check
        result = run(args, not_duckdb, tmp_path)
        assert_message(result, f"The database {not_duckdb} is", "Set SEGKIT_DB to a DuckDB database")
    assert not_duckdb.read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("not_duckdb", ["parquet"], indirect=True)
def test_dbt_build_refuses_a_parquet_file_instead_of_building_into_memory(not_duckdb, tmp_path):
    # DuckDB opens an existing Parquet, CSV or JSON path as an in-memory database: the build used to pass and keep nothing.
    before = not_duckdb.read_bytes()
    result = segkit("build", db_path=not_duckdb)
    assert_message(result, f"The database {not_duckdb} is not a DuckDB database file", "Set SEGKIT_DB")
    plain = subprocess.run([dbt_executable(), "build"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "SEGKIT_DB": str(not_duckdb)})
    assert plain.returncode != 0 and "Traceback" not in plain.stdout + plain.stderr
    assert f"segkit: The database {not_duckdb} is not a DuckDB database file" in plain.stdout
    assert not_duckdb.read_bytes() == before


@pytest.mark.slow
def test_a_database_in_a_missing_folder_is_a_message_for_every_command(tmp_path):
    path = tmp_path / "no" / "such" / "folder" / "segkit.duckdb"
    for args in (("build",), CLUSTER, *READERS):
        result = run(args, path, tmp_path)
        assert_message(result, f"The folder {path.parent} of the database {path} does not exist",
                       f"mkdir -p {path.parent}")
    assert not (tmp_path / "no").exists()  # the lock file, above all, was not created somewhere else


@pytest.mark.slow
def test_a_read_only_mount_stops_build_and_cluster_and_lets_the_readers_read(clustered_db, tmpfs, tmp_path):
    folder = tmpfs(20 * 1024, clustered_db, read_only=True)
    path = folder / clustered_db.name
    before = snapshot(path)
    result = run(CLUSTER, path, tmp_path)
    assert_message(result, f"The database {path} is on a read-only location",
                   f"{path}.cluster.lock cannot be written", "copy the database to a writable folder")
    result = segkit("build", db_path=path)
    assert_message(result, f"The database {path} is on a read-only location", "remount the disk read-write")
    for args in READERS:  # reading needs no write: these work where the database is
        assert run(args, path, tmp_path).returncode == 0
    assert snapshot(path) == before


@pytest.mark.slow
def test_an_immutable_database_file_stops_cluster_with_a_message(clustered_db, tmp_path):
    # chattr +i stops root too; DuckDB reads the file (the fit runs) and cannot open it for writing.
    path = tmp_path / "immutable.duckdb"
    shutil.copy(clustered_db, path)
    before = snapshot(path)
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        result = run(CLUSTER, path, tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert_message(result, f"The database {path} is on a read-only location: {path} cannot be written",
                   "`chattr -i` an immutable file")
    assert snapshot(path) == before


def disk_just_too_small(clustered_db: Path) -> int:
    """A tmpfs size (KiB) that holds the clustered demo database with 128 KiB to spare: too little for a run."""
    return clustered_db.stat().st_size // 1024 + 128


@pytest.mark.slow
def test_a_full_disk_during_segkit_cluster_writes_nothing(clustered_db, tmpfs, tmp_path):
    folder = tmpfs(disk_just_too_small(clustered_db), clustered_db)
    path = folder / clustered_db.name
    before = snapshot(path)
    result = run(CLUSTER, path, tmp_path)
    assert "writing results" in result.stderr  # it failed while writing, not before
    assert_message(result, f"The disk is full: DuckDB could not write {path}", "Free space on that disk",
                   "set SEGKIT_DB to the copy", "the previous results are as they were")
    assert snapshot(path) == before


@pytest.mark.slow
def test_a_full_disk_during_dbt_build_is_a_message_and_keeps_segkits_tables(clustered_db, tmpfs):
    folder = tmpfs(disk_just_too_small(clustered_db), clustered_db)
    path = folder / clustered_db.name
    before = snapshot(path)
    result = segkit("build", db_path=path)
    assert_message(result, f"The disk is full: DuckDB could not write {path}", "Free space on that disk")
    assert "input path or the column mapping" not in result.stderr
    after = snapshot(path)  # opens; the model that could not be written, and those after it, are as they were
    for table in SEGKIT_TABLES:
        assert after[table] == before[table], table
