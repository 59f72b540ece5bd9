"""A pandas DataFrame of transaction lines as the input of the dbt models: written once to Parquet, then read by
the same models, checks and messages as any input file.

The file is `<database>.transactions.parquet` beside the DuckDB file: with Parquet input the line-level models
are views on it, so it stays as long as the database it was built into.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import duckdb
import pandas as pd

from segkit.config import bundled_project_vars
from segkit.errors import SegkitError
from segkit.warehouse import sql_text


def frame_file(db_path: Path) -> Path:
    return Path(f"{db_path}.transactions.parquet")


def write_frame(transactions: pd.DataFrame, db_path: Path) -> Path:
    """Write the lines to Parquet beside the database (through a temporary file, then a rename); return its path."""
    if not isinstance(transactions, pd.DataFrame):
        raise SegkitError(f"The transactions must be a pandas DataFrame of lines; got {type(transactions).__name__}.")
    if transactions.empty:
        raise SegkitError("the DataFrame has no data rows (it is empty). Pass the transaction lines to segment.")
    path = frame_file(db_path)
    if not path.parent.is_dir():
        raise SegkitError(f"The folder {path.parent} of the database {db_path} does not exist. Create it, or give "
                          "another db_path, and run again.")
    frame = transactions.reset_index(drop=True)
    frame.columns = [str(column) for column in frame.columns]
    partial = path.with_name(path.name + ".partial")
    with duckdb.connect() as con:
        con.register("segkit_frame", frame)
        con.execute(f"copy segkit_frame to {sql_text(str(partial))} (format parquet)")
    os.replace(partial, path)
    return path


def frame_vars(path: Path, columns: Mapping[str, str | None] | None,
               other: Mapping[str, Any] | None) -> dict[str, Any]:
    """The dbt vars that read the file: transactions_path, columns (every name; left-out names are null) and the
    other vars given."""
    other = dict(other or {})
    for name in ("transactions_path", "columns"):
        if name in other:
            raise SegkitError(f"Give the {name.replace('transactions_path', 'transactions')} as an argument, "
                              f"not in vars: vars['{name}'] would replace the DataFrame's.")
    dbt_vars: dict[str, Any] = {**other, "transactions_path": str(path)}
    if columns is not None:
        names = tuple(bundled_project_vars()["columns"])  # segkit's names for the input's columns
        unknown = sorted(set(columns) - set(names))
        if unknown:
            raise SegkitError(f"columns has unknown name(s) {', '.join(unknown)}; segkit's names are "
                              f"{', '.join(names)}, each mapped to a column of the DataFrame or None.")
        dbt_vars["columns"] = {name: columns.get(name) for name in names}
    return dbt_vars
