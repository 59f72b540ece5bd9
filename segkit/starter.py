"""`segkit init`: a new dbt project that builds segkit's customer segments on the user's own transactions.

The new project uses segkit's dbt project as a dbt package (packages.yml, ``local:`` the project installed with
segkit, `segkit.config.bundled_project`): the user's folder holds only what is theirs (the vars with the input and
its column mapping, the profile, their own models if they add some), and `pip install -U segkit` upgrades the
models with the Python that reads them. The package's vars (README "Your own data") keep their defaults unless the
project sets them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from segkit.config import bundled_project, bundled_project_vars
from segkit.errors import SegkitError

FILES = ("dbt_project.yml", "packages.yml", "profiles.yml", "README.md", ".gitignore")
DEFAULT_INPUT = "data/transactions.csv"


@dataclass(frozen=True)
class Starter:
    """What `write_starter` wrote: the folder, its files, and the names it chose."""

    folder: Path
    files: tuple[Path, ...]
    name: str                  # the dbt project's and the profile's name
    package: Path              # segkit's dbt project, the package the new project uses


def write_starter(folder: Path, transactions_path: str | None = None, transactions_relation: str | None = None,
                  columns: Mapping[str, str | None] | None = None, name: str | None = None) -> Starter:
    """Write a starter project into folder (created if missing); never overwrite a file that is there.

    transactions_path: the user's file or glob, relative to folder (default data/transactions.csv);
    transactions_relation: a table or view instead (``raw.orders``, ``{{ source('shop', 'orders') }}``);
    columns: segkit's column names mapped to the input's, over the defaults of segkit's project.
    """
    folder = Path(folder).expanduser().resolve()
    if transactions_path and transactions_relation:
        raise SegkitError("Give the input once: --transactions-path for a file, or --transactions-relation for a table.")
    if folder.exists() and not folder.is_dir():
        raise SegkitError(f"{folder} is a file. Give `segkit init` a new or existing folder.")
    present = [file for file in FILES if (folder / file).exists()]
    if present:
        raise SegkitError(f"{folder} already has {', '.join(present)}; segkit init never overwrites a file. Choose "
                          "a new folder, or move those files away, and run again.")
    name = name or _project_name(folder)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == "segkit":
        raise SegkitError(f"{name!r} cannot name the dbt project: use letters, digits and underscores, not starting "
                          "with a digit, and not 'segkit' (the package's own name). Example: --name shop_segments")
    package = bundled_project()
    package_vars = bundled_project_vars()
    mapping = dict(package_vars["columns"])
    unknown = set(columns or {}) - set(mapping)
    if unknown:
        raise SegkitError(f"Unknown column {', '.join(sorted(unknown))} in --column; segkit's columns are "
                          f"{', '.join(mapping)}. Example: --column customer_id='Customer ID'")
    mapping.update(columns or {})
    texts = {
        "dbt_project.yml": _dbt_project(name, transactions_path, transactions_relation, mapping, package_vars),
        "packages.yml": _PACKAGES.replace("@PACKAGE@", json.dumps(str(package))),
        "profiles.yml": _PROFILES.replace("@NAME@", name),
        "README.md": _README.replace("@NAME@", name).replace("@INPUT@", _input_step(transactions_path,
                                                                                   transactions_relation)),
        ".gitignore": "target/\ndbt_packages/\nlogs/\nreports/\n*.duckdb\n*.duckdb.wal\n*.lock\n",
    }
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for file, text in texts.items():
        with open(folder / file, "x", encoding="utf-8") as out:  # "x": a file that appeared meanwhile is kept
            out.write(text)
        written.append(folder / file)
    return Starter(folder=folder, files=tuple(written), name=name, package=package)


def _project_name(folder: Path) -> str:
    name = re.sub(r"\W+", "_", folder.name.lower()).strip("_") or "segments"
    name = f"segments_{name}" if name[0].isdigit() else name
    return "my_segments" if name == "segkit" else name


def _yaml_value(value: Any) -> str:
    return "null" if value is None else json.dumps(value)  # a JSON string is a YAML double-quoted string


def _dbt_project(name: str, path: str | None, relation: str | None, columns: Mapping[str, Any],
                 package_vars: Mapping[str, Any]) -> str:
    mapped = "\n".join(f"    {key}: {_yaml_value(value)}" for key, value in columns.items())
    return f"""# A dbt project that builds segkit's customer segments on your transactions (written by `segkit init`).
# segkit's models come from the package in packages.yml; README.md says what to do next.
name: {name}
version: "1.0.0"
config-version: 2
profile: {name}

flags:
  send_anonymous_usage_stats: false
  # A failed segkit input check skips the models instead of building them on input it refused.
  skip_nodes_if_on_run_start_fails: true

# segkit's settings (README "Your own data"); the ones not set here keep segkit's defaults.
vars:
  # Your transactions: a file or glob of CSV (plain or gzipped), Parquet or Excel files, relative to this folder.
  transactions_path: {_yaml_value(None if relation else (path or DEFAULT_INPUT))}
  # Or a table or view, which wins when set: a name (raw.orders), or "{{{{ source('shop', 'orders') }}}}".
  transactions_relation: {_yaml_value(relation)}
  # Your input's column for each of segkit's (null for an optional one it lacks). Give either line_amount,
  # or quantity and unit_price. order_id, product_id and product_category are optional.
  columns:
{mapped}
  # strptime format of order_date when it is text, e.g. "%d/%m/%Y"; null reads ISO dates and timestamps.
  order_date_format: {_yaml_value(package_vars.get("order_date_format"))}
  # Order ids starting with this prefix are cancellations; null: only negative quantities or amounts are returns.
  cancellation_prefix: {_yaml_value(package_vars.get("cancellation_prefix"))}
"""


def _input_step(path: str | None, relation: str | None) -> str:
    if relation:
        return (f"segkit reads the table `{relation}` (var `transactions_relation` in dbt_project.yml). Check "
                "that the target in profiles.yml reaches it (a table in another DuckDB file: `attach` it there).")
    return (f"segkit reads `{path or DEFAULT_INPUT}` (var `transactions_path` in dbt_project.yml, relative to this "
            "folder). Put your file there, or change the var.")


_PACKAGES = """# segkit's dbt project, installed with the segkit Python package. `dbt deps` links it into dbt_packages/; run
# `segkit init` again in a new folder (or fix this path) after moving the Python environment.
packages:
  - local: @PACKAGE@
"""

_PROFILES = """# The dbt profile of this project. dbt and segkit look for profiles.yml in the folder given by --profiles-dir,
# then DBT_PROFILES_DIR, then this folder, then ~/.dbt/: move this profile to ~/.dbt/profiles.yml if you keep
# your profiles there.
@NAME@:
  target: dev
  outputs:
    dev:
      type: duckdb
      # The DuckDB database, relative to this folder (SEGKIT_DB overrides it); MotherDuck: path: "md:my_db".
      path: "{{ env_var('SEGKIT_DB', '@NAME@.duckdb') }}"
      # segkit's published tables and its own go to this schema; dbt builds into <schema>_build first.
      schema: main
      threads: 2
      # segkit's dbt-duckdb plugins: they read the input files and pseudonymise customer ids.
      plugins:
        - module: segkit.pseudonyms
        - module: segkit.reader
      settings:
        memory_limit: "3GB"
      # segkit opens the database with these too, as dbt does:
      # extensions:
      #   - httpfs
      # attach:
      #   - path: raw.duckdb          # e.g. the database that holds your transactions
      #     alias: raw
      #     read_only: true
      # secrets:
      #   - type: s3
      #     key_id: "{{ env_var('S3_KEY_ID') }}"
      #     secret: "{{ env_var('S3_SECRET') }}"
      #     region: eu-west-1
"""

_README = """# @NAME@: customer segments with segkit

Written by `segkit init`. This is a dbt project that uses segkit's dbt project as a package (packages.yml).

## Next steps

1. **Your input.** @INPUT@
2. **Your columns.** In dbt_project.yml, map each of segkit's columns (`vars: columns:`) to your input's column,
   and set `order_date_format` if your dates are text such as 31/12/2024.
3. **Your database.** profiles.yml builds into the DuckDB file `@NAME@.duckdb` here. Change `path`, `schema`,
   or add `extensions`, `attach` and `secrets` as dbt-duckdb documents them; segkit opens the database with them.
4. **Build the features:**

       dbt deps
       dbt build

5. **Segment the customers, and write the report:**

       segkit cluster
       segkit report

   The report is in reports/; the segments are in the table `customer_segments` of the schema in profiles.yml.

Run `dbt build` and `segkit cluster` again when new transactions arrive; `segkit drift` says when a refit is
advisable. segkit's README ("Install from PyPI", "Your own data") has the details.
"""
