"""Safe connections to the DuckDB file dbt builds, the lock of a command on it, and SQL helpers."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError
from segkit.profile import Profile


@contextmanager
def connect(path: Path, read_only: bool = False, profile: Profile | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database with the profile's DuckDB settings (none without a profile), turning a lock error into
    advice; always close it. Commands open their target with `segkit.engine.connect`, which passes the profile."""
    path = Path(path)
    if read_only and not path.exists():
        raise SegkitError(f"The database {path} does not exist yet. Run `dbt build` first to create it.")
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=dict(profile.settings) if profile else {})
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise SegkitError(
                f"The database {path} is in use by another process (DuckDB allows one writer per file). "
                "Close other sessions on it (a `duckdb` shell, a notebook, a running `dbt build` or "
                "`segkit` command) and run again.",
                exit_code=EXIT_DATABASE_LOCKED,
            ) from None
        raise
    try:
        yield con
    except duckdb.OutOfMemoryException:
        raise SegkitError(
            f"DuckDB ran out of memory working on {path}: the memory_limit in the `settings` of profiles.yml is too "
            "low for this data. Raise it, or set temp_directory there so DuckDB can spill to disk, and run again. "
            "Nothing was written: the previous results are as they were."
        ) from None
    finally:
        con.close()


@contextmanager
def exclusive_run(path: Path, command: str) -> Iterator[None]:
    """Hold an advisory lock beside the database for a whole command, so a second one stops at once.

    DuckDB's own lock is held only while a connection is open; a command that reads, computes, then writes
    would otherwise interleave with another. The lock file stays (empty); the OS releases the lock when the
    process ends, even when it is killed.
    """
    lock_path = Path(f"{path}.{command}.lock")
    with open(lock_path, "a") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SegkitError(
                f"Another `segkit {command}` is running on {path}; only one may write its results at a time. "
                "Wait for it to finish (its run will be the latest), then run again if you still need to.",
                exit_code=EXIT_DATABASE_LOCKED,
            ) from None
        yield


def quote_identifier(name: str) -> str:
    """A column or table name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    if hasattr(con, "table_exists"):  # segkit.engine.SparkConnection
        return con.table_exists(name)
    # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open, which blocks a later register().
    rows = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'main' and table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])


def require_table(con: duckdb.DuckDBPyConnection, name: str, hint: str = "Run `dbt build` first.") -> None:
    if not table_exists(con, name):
        raise SegkitError(f"The table `{name}` is not in the database. {hint}")
