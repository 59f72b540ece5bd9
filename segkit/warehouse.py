"""Safe connections to the DuckDB database dbt builds, the lock of a command on it, and SQL helpers.

A connection is set up as dbt-duckdb sets up its own (dbt/adapters/duckdb/environments/__init__.py): the
target's ``settings`` as DuckDB configuration, then its ``extensions``, ``secrets`` and ``attach``, and then
it works in the target's schema, where `dbt build` publishes the marts and segkit keeps its tables. A URI such
as ``md:my_db`` or ``s3://...`` goes to DuckDB unchanged; only a local file is checked first.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import duckdb
from filelock import FileLock, Timeout

from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError
from segkit.profile import Profile, is_uri


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
    """Open the database set up as the profile's target (see the module docstring; DuckDB's defaults without a
    profile), turning a lock error into advice; always close it. Commands open their target with
    `segkit.engine.connect`, which passes the profile."""
    database = profile.path if profile and profile.path and is_uri(profile.path) else str(path)
    if not is_uri(database):
        check_database_file(Path(database), write=not read_only)
        if read_only and not Path(database).exists():
            raise SegkitError(f"The database {database} does not exist yet. Run `dbt build` first to create it.")
    try:
        con = duckdb.connect(database, read_only=read_only, config=dict(profile.settings) if profile else {})
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise SegkitError(
                f"The database {database} is in use by another process (DuckDB allows one writer per file). "
                "Close other sessions on it (a `duckdb` shell, a notebook, a running `dbt build` or "
                "`segkit` command) and run again.",
                exit_code=EXIT_DATABASE_LOCKED,
            ) from None
        if is_uri(database):
            raise SegkitError(_unreachable(database, error)) from None
        raise
    except duckdb.Error as error:
        if is_uri(database):
            raise SegkitError(_unreachable(database, error)) from None
        raise
    try:
        if profile is not None:
            _set_up(con, profile, database)
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


def _unreachable(database: str, error: Exception) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (f"DuckDB could not open {database} ({first}). segkit passes such a path to DuckDB as it is: MotherDuck "
            "(md:) needs a network connection, DuckDB's motherduck extension (downloaded on first use) and a token "
            "(motherduck_token in the target's settings or the environment); s3:// and https:// need the httpfs "
            "extension and, for a private bucket, a secret in the target's `secrets`. Check them and run again.")


def _set_up(con: duckdb.DuckDBPyConnection, profile: Profile, database: str) -> None:
    """The target's extensions, secrets and attachments, then its schema, in dbt-duckdb's order. (A read-only
    connection attaches every database read-only, DuckDB's rule, so readers such as a report share them.)"""
    for extension in profile.extensions:
        _load_extension(con, extension)
    if profile.secrets or profile.attach:
        # dbt-duckdb's own SQL for them, so that segkit's connection is the one dbt's is; imported only when a
        # target has them (dbt's adapter takes most of a second to import).
        from dbt.adapters.duckdb.credentials import Attachment
        from dbt.adapters.duckdb.secrets import Secret

        for number, secret in enumerate(profile.secrets, start=1):
            options = _plain(secret)
            sql = Secret.create(secret_type=options.pop("type"), name=options.pop("name", f"_dbt_secret_{number}"),
                                **options).to_sql()
            _run_profile_sql(con, sql, f"secret {number} (type {secret.get('type')})")
        for attachment in profile.attach:
            _run_profile_sql(con, Attachment.from_dict(_plain(attachment)).to_sql(),
                             f"attachment {attachment.get('path')}")
    catalog = profile.database or con.execute("select current_database()").fetchall()[0][0]
    try:
        con.execute(f"use {quote_identifier(catalog)}.{quote_identifier(profile.schema)}")
    except duckdb.CatalogException:
        raise SegkitError(
            f"The schema {profile.schema!r} (the schema of the target {profile.target!r} in profiles.yml) is not in "
            f"the database {catalog} ({database}) yet. Run `dbt build` first: it creates the schema and publishes "
            "the customer features there. Or set `schema:` of the target to the schema that holds them."
        ) from None


def _load_extension(con: duckdb.DuckDBPyConnection, extension: Any) -> None:
    """LOAD an extension; INSTALL it first only when it is not installed yet (which needs DuckDB's repository, or
    the profile's ``repo``, to be reachable). dbt-duckdb installs every extension of the target at each `dbt
    build`, so after one build segkit loads them offline."""
    name = extension if isinstance(extension, str) else extension.get("name")
    try:
        con.load_extension(name)
        return
    except duckdb.Error:
        pass
    try:
        if isinstance(extension, str):
            con.install_extension(name)
        else:
            con.execute(f"install {name} from {extension.get('repo') or 'core'}")
        con.load_extension(name)
    except duckdb.Error as error:
        raise SegkitError(f"DuckDB could not load the extension {name!r} of the target's `extensions`: it is not "
                          f"installed here and could not be installed ({str(error).splitlines()[0]}). Run `dbt "
                          f"build` once where DuckDB's extension repository is reachable (it installs the target's "
                          f"extensions), or install it by hand (duckdb -c \"INSTALL {name}\"), and run again.") from None


def _run_profile_sql(con: duckdb.DuckDBPyConnection, sql: str, what: str) -> None:
    try:
        con.execute(sql)
    except duckdb.Error as error:
        raise SegkitError(f"DuckDB could not set up the {what} of the target in profiles.yml "
                          f"({str(error).strip().splitlines()[0]}). It needs what `dbt build` needs for it (an "
                          "extension such as httpfs, a network connection, the file itself): fix that and run again."
                          ) from None


def _plain(value: Any) -> Any:
    """A read-only mapping of the profile, and the mappings and tuples inside it, as plain dicts and lists."""
    if hasattr(value, "items"):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def lock_path(path: Path | str, command: str) -> Path:
    """The lock file of a command: beside a local database; for a URI, which has no folder here, in this machine's
    temporary folder (it keeps two commands on this machine apart; other machines are not seen)."""
    if is_uri(str(path)):
        return Path(tempfile.gettempdir()) / f"segkit-{re.sub(r'[^A-Za-z0-9_.-]', '_', str(path))}.{command}.lock"
    return Path(f"{path}.{command}.lock")


@contextmanager
def exclusive_run(path: Path, command: str) -> Iterator[None]:
    """Hold an advisory lock beside the database for a whole command, so a second one stops at once.

    DuckDB's own lock is held only while a connection is open; a command that reads, computes, then writes
    would otherwise interleave with another. The lock is the operating system's (filelock: flock on Unix, the
    file-locking call on Windows), so it is released when the process ends, even when it is killed.
    """
    lock_file = lock_path(path, command)
    if not lock_file.parent.is_dir():  # filelock would create the folder; a missing one is a wrong path
        raise SegkitError(_missing_folder(Path(path)))
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise SegkitError(
            f"Another `segkit {command}` is running on {path}; only one may write its results at a time. "
            "Wait for it to finish (its run will be the latest), then run again if you still need to.",
            exit_code=EXIT_DATABASE_LOCKED,
        ) from None
    except OSError as error:
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise SegkitError(_read_only(Path(path), lock_file)) from None
        raise SegkitError(f"`segkit {command}` could not create its lock file {lock_file} beside the database "
                          f"({error.strerror}). Fix that, or set SEGKIT_DB to a database in another folder, and "
                          "run again.") from None
    try:
        yield
    finally:
        lock.release()


def quote_identifier(name: str) -> str:
    """A column or table name as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_text(value: str) -> str:
    """A SQL string literal: the value in single quotes, each quote in it doubled."""
    return "'" + value.replace("'", "''") + "'"


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the table is in the connection's schema (the target's: see `connect`)."""
    if hasattr(con, "table_exists"):  # segkit.engine.SparkConnection
        return con.table_exists(name)
    # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open, which blocks a later register().
    rows = con.execute(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        "and table_schema = current_schema() and table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])


def require_table(con: duckdb.DuckDBPyConnection, name: str, hint: str = "Run `dbt build` first.") -> None:
    if not table_exists(con, name):
        raise SegkitError(f"The table `{name}` is not in the database. {hint}")
