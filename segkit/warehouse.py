"""The DuckDB file dbt builds: where it is, and safe connections to it."""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import yaml

from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError

PROFILE_NAME = "segkit"
_ENV_VAR_CALL = re.compile(r"\{\{\s*env_var\(\s*'([^']+)'\s*(?:,\s*'([^']*)')?\s*\)\s*\}\}")


def project_root() -> Path:
    """The repository root: SEGKIT_PROJECT_DIR, else the nearest folder up from here holding profiles.yml."""
    if os.environ.get("SEGKIT_PROJECT_DIR"):
        return Path(os.environ["SEGKIT_PROJECT_DIR"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "profiles.yml").is_file() and (folder / "dbt_project").is_dir():
            return folder
    return here


def database_path(root: Path | None = None) -> Path:
    """The DuckDB file named by the dbt profile, so dbt and segkit never disagree about it."""
    root = root or project_root()
    profiles = yaml.safe_load((root / "profiles.yml").read_text())
    output = profiles[PROFILE_NAME]["outputs"][profiles[PROFILE_NAME]["target"]]
    path = Path(_render_env_vars(str(output["path"])))
    return path if path.is_absolute() else (root / path).resolve()


def _render_env_vars(text: str) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name, default)
        if value is None:
            raise SegkitError(f"profiles.yml needs the environment variable {name}; set it and run again.")
        return value

    return _ENV_VAR_CALL.sub(replace, text)


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database, turning DuckDB's lock error into advice, and always close it."""
    path = Path(path)
    if read_only and not path.exists():
        raise SegkitError(f"The database {path} does not exist yet. Run `dbt build` first to create it.")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
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
    finally:
        con.close()


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
