"""Keyed pseudonyms for customer ids: HMAC-SHA256 with a key from the environment, never from a file.

This module is also a dbt-duckdb plugin (profiles.yml ``plugins:``): it registers two SQL functions on dbt's
connection, so the key stays in this process's memory and never appears in SQL, dbt's target/ or its logs.

- ``segkit_pseudonym(id)``: the hex HMAC-SHA256 of the id under the key; fails when the key is missing.
- ``segkit_pseudonym_key_is_set()``: whether the key is there, for the check at the start of a build.

Before dbt opens the database, the plugin also checks its path (`segkit.warehouse.check_database_file`), so a
missing folder, a read-only location or a file that is not a DuckDB database stops the build with advice.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt_common.exceptions import DbtRuntimeError

from segkit.errors import SegkitError
from segkit.warehouse import check_database_file

KEY_ENV_VAR = "SEGKIT_PSEUDONYM_KEY"


def pseudonym(customer_id: str, key: bytes) -> str:
    """The pseudonym of one customer id: the same id and key always give the same 64 hex digits."""
    return hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()


def register_functions(con: duckdb.DuckDBPyConnection) -> None:
    """Register the two pseudonym functions on a connection, reading the key from the environment now."""
    key = os.environ.get(KEY_ENV_VAR, "").encode("utf-8")

    def segkit_pseudonym(customer_id: str) -> str:
        if not key:
            raise ValueError(f"{KEY_ENV_VAR} is not set: pseudonymising customer ids needs a key.")
        return pseudonym(customer_id, key)

    def segkit_pseudonym_key_is_set() -> bool:
        return bool(key)

    con.create_function("segkit_pseudonym", segkit_pseudonym, ["VARCHAR"], "VARCHAR", side_effects=False)
    con.create_function("segkit_pseudonym_key_is_set", segkit_pseudonym_key_is_set, [], "BOOLEAN")


class Plugin(BasePlugin):
    """dbt-duckdb plugin hook; the cursors dbt takes from the connection share its functions."""

    def update_connection_config(self, creds, config) -> None:
        if creds.path and ":" not in creds.path:  # a local file, not :memory:, md: or s3://
            try:
                check_database_file(Path(creds.path), write=True)
            except SegkitError as error:
                raise DbtRuntimeError(f"segkit: {error}") from None

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register_functions(conn)
