"""Safe connections to the DuckDB file dbt builds, the lock of a command on it, and SQL helpers."""

from __future__ import annotations

import errno
import fcntl
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError
from segkit.profile import Profile


DUCKDB_MAGIC = b"DUCK"  # bytes 8 to 12 of every DuckDB database file


def check_database_file(path: Path, write: bool) -> None:
    """Stop with advice when path cannot be opened as a DuckDB database (for writing, when write is set).

    DuckDB would fail with a traceback, or worse: it opens an existing CSV, JSON or Parquet file as an empty
    in-memory database, so a `dbt build` into it "succeeds" and keeps nothing.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise SegkitError(_missing_folder(path))
    if path.is_dir():
        raise SegkitError(f"The database path {path} is a folder, not a file. Set SEGKIT_DB to a file in it "
                          f"(e.g. {path / 'segkit.duckdb'}) and run again.")
    if path.exists():
        try:
            with open(path, "rb") as file:
                header = file.read(12)
        except OSError as error:
            raise SegkitError(f"The database {path} cannot be read ({error.strerror}). Fix its permissions, or set "
                              "SEGKIT_DB to another file, and run again.") from None
        if header[8:12] != DUCKDB_MAGIC:
            kind = "an empty file" if not header else "not a DuckDB database file"
            raise SegkitError(f"The database {path} is {kind}. Set SEGKIT_DB to a DuckDB database, or to a new "
                              "file name for `dbt build` to create, and run again (or move that file away).")
    if write:
        for target in (path, path.parent):
            if target.exists() and not os.access(target, os.W_OK):
                raise SegkitError(_read_only(path, target))


def _missing_folder(path: Path) -> str:
    return (f"The folder {path.parent} of the database {path} does not exist. Create it (mkdir -p {path.parent}) "
            "or set SEGKIT_DB to a file in an existing folder, and run again.")


def _read_only(path: Path, target: Path) -> str:
    return (f"The database {path} is on a read-only location: {target} cannot be written, and building or "
            "clustering writes the database, its write-ahead log and a lock file beside it. Make it writable "
            "(remount the disk read-write, `chattr -i` an immutable file, or fix its permissions), or copy the "
            "database to a writable folder and set SEGKIT_DB to the copy, then run again. `segkit report`, "
            "`assign` and `drift` only read it, and work where it is.")


def disk_full_message(error: str, path: Path) -> str | None:
    """Advice for DuckDB's 'No space left on device', naming the file it could not write; None for other errors."""
    if "No space left on device" not in error:
        return None
    written = re.search(r'"([^"]+)": No space left on device', error)
    return (f"The disk is full: DuckDB could not write {written.group(1) if written else path}. Free space on that "
            "disk, or move the database to a disk with room (copy it and set SEGKIT_DB to the copy; DuckDB's "
            "temp_directory, if the `settings` of profiles.yml set one, can move too), and run again.")


@contextmanager
def connect(path: Path, read_only: bool = False, profile: Profile | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database with the profile's DuckDB settings (none without a profile), turning a lock error into
    advice; always close it. Commands open their target with `segkit.engine.connect`, which passes the profile."""
    path = Path(path)
    check_database_file(path, write=not read_only)
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
    except duckdb.Error as error:
        message = disk_full_message(str(error), path)
        if message is None:
            raise
        raise SegkitError(f"{message} Nothing was written: the previous results are as they were.") from None
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
    try:
        lock_file = open(lock_path, "a")
    except FileNotFoundError:
        raise SegkitError(_missing_folder(Path(path))) from None
    except OSError as error:
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise SegkitError(_read_only(Path(path), lock_path)) from None
        raise SegkitError(f"`segkit {command}` could not create its lock file {lock_path} beside the database "
                          f"({error.strerror}). Fix that, or set SEGKIT_DB to a database in another folder, and "
                          "run again.") from None
    with lock_file:
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
