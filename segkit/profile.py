"""The dbt profile segkit works on, found and read the way dbt finds and reads it.

dbt Core 1.11 (``--profiles-dir`` in dbt/cli/params.py, ``default_profiles_dir`` in dbt/cli/resolvers.py) takes
profiles.yml from the first of: the ``--profiles-dir`` flag, the DBT_PROFILES_DIR environment variable, the
current directory if it holds a profiles.yml, then ``~/.dbt/``. segkit runs dbt from the project folder, so the
project folder stands in for the current directory. The profile is DBT_PROFILE, else the ``profile:`` of the
project's dbt_project.yml. The target is the one asked for, else DBT_TARGET, else the profile's ``target:``
(dbt's ``default`` when it names none). As in dbt, only the chosen target is rendered, so a variable that only
another target uses need not be set. segkit renders ``{{ env_var('NAME') }}`` and
``{{ env_var('NAME', 'default') }}``, and other Jinja expressions of env_var() with Jinja (such as
``{{ env_var('A', env_var('B', 'b') ~ '.tmp') }}``), as dbt does.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from segkit.errors import SegkitError

_ENV_VAR_CALL = re.compile(r"\{\{\s*env_var\(\s*'([^']+)'\s*(?:,\s*'([^']*)')?\s*\)\s*\}\}")
# md:my_db, motherduck:, s3://..., http(s)://...: opened by DuckDB as given. Two letters at least, so that a
# Windows drive (C:\...) is a file.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


@dataclass(frozen=True)
class Profile:
    """One target of a dbt profile, resolved: what dbt connects to, and segkit with it.

    ``path`` is the DuckDB database as DuckDB opens it: a local file made absolute against the project folder
    (dbt-duckdb opens it relative to the folder dbt runs in, the project folder), a URI such as ``md:my_db``
    unchanged; so is the path of each ``attach``. ``settings`` also holds the target's ``config_options`` and
    ``motherduck_token``, and ``secrets`` the S3 secret of ``use_credential_provider: aws``, as dbt-duckdb
    reads them. ``output`` is the whole rendered target (Spark reads its ``server_side_parameters``). The
    mappings are read-only; settings, secrets and the output stay out of the repr, as they may hold tokens.
    """

    name: str                    # the profile; "" for a bare DuckDB file opened without a profile
    target: str
    engine: str                  # the target's type: duckdb, spark or databricks
    profiles_dir: Path | None    # the folder of the profiles.yml read; None for a bare DuckDB file
    path: str | None = None      # DuckDB only; None when the target names no file (dbt would use :memory:)
    schema: str = "main"
    database: str = ""           # DuckDB: the catalog dbt builds in, when the target names one (else the file's)
    settings: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    extensions: tuple[Any, ...] = field(default=(), repr=False)
    attach: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    secrets: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    output: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @classmethod
    def bare_duckdb(cls, path: Path | str) -> "Profile":
        """A DuckDB file opened with DuckDB's defaults, with no dbt profile (a file given to the library)."""
        return cls(name="", target="", engine="duckdb", profiles_dir=None, path=str(path))


def read_profile(project_dir: Path, profiles_dir: Path | None = None, target: str = "",
                 segkit_db: str | None = None, required: bool = True) -> Profile | None:
    """The target of the project's profile, found and rendered as dbt does (see the module docstring).

    segkit_db: a database for ``env_var('SEGKIT_DB')``, as segkit passes it to dbt. Not required: None when
    no profile is found by the default lookup (a profile asked for by flag or environment must exist).
    """
    folder, source = _profiles_folder(project_dir, profiles_dir)
    name = os.environ.get("DBT_PROFILE") or _project_profile_name(project_dir, required)
    if name is None:
        return None
    if folder is None or not (folder / "profiles.yml").is_file():
        if source or required:
            raise SegkitError(_not_found(project_dir, folder, source))
        return None
    path = folder / "profiles.yml"
    profiles = _load_yaml(path)
    if name not in profiles:
        if not required and not source and not os.environ.get("DBT_PROFILE"):
            return None
        raise SegkitError(f"{path} has no profile {name!r} (the profile of {project_dir / 'dbt_project.yml'}); "
                          f"its profiles are {', '.join(map(str, profiles)) or 'none'}. Add it, or point "
                          "--profiles-dir or DBT_PROFILES_DIR at the profiles.yml that has it.")
    environment = {**os.environ, **({"SEGKIT_DB": segkit_db} if segkit_db else {})}
    profile = profiles[name] or {}
    chosen = target or os.environ.get("DBT_TARGET") or _render(profile.get("target", "default"), environment)
    outputs = profile.get("outputs") or {}
    if chosen not in outputs:
        raise SegkitError(f"profiles.yml has no target {chosen!r}; its targets are "
                          f"{', '.join(outputs)}. Set --target or SEGKIT_TARGET to one of them.")
    output = _render(outputs[chosen] or {}, environment)
    return _profile(name, chosen, folder, output, project_dir)


def is_uri(path: str) -> bool:
    """Whether a DuckDB path is a URI (md:my_db, s3://...) rather than a file on this machine."""
    return bool(_URI.match(path))


def _profiles_folder(project_dir: Path, asked: Path | None) -> tuple[Path | None, str]:
    """The folder of profiles.yml by dbt's order, and the flag or variable that named it ("" for the defaults)."""
    if asked:
        return Path(asked).expanduser().resolve(), "--profiles-dir"
    if os.environ.get("DBT_PROFILES_DIR"):
        return Path(os.environ["DBT_PROFILES_DIR"]).expanduser().resolve(), "DBT_PROFILES_DIR"
    if (project_dir / "profiles.yml").is_file():
        return project_dir, ""
    home = Path.home() / ".dbt"
    return (home if (home / "profiles.yml").is_file() else None), ""


def _project_profile_name(project_dir: Path, required: bool) -> str | None:
    path = project_dir / "dbt_project.yml"
    if not path.is_file():
        if not required:
            return None
        raise SegkitError(f"There is no dbt_project.yml in {project_dir}; segkit reads the name of the dbt profile "
                          "from it. Run segkit from the dbt project folder, or set SEGKIT_PROJECT_DIR to it (`segkit "
                          "init DIR` writes a new one).")
    name = (_load_yaml(path)).get("profile")
    if not name:
        if not required:
            return None
        raise SegkitError(f"{path} names no profile. Add `profile: <name of a profile in profiles.yml>` to it, "
                          "or set DBT_PROFILE.")
    return str(name)


def _not_found(project_dir: Path, folder: Path | None, source: str) -> str:
    if source:
        return f"There is no profiles.yml in {folder} (named by {source}). Point {source} at the folder that holds it."
    return ("No profiles.yml was found. dbt and segkit look in the folder given by --profiles-dir, then "
            f"DBT_PROFILES_DIR, then the project folder ({project_dir}), then {Path.home() / '.dbt'}. Put "
            "profiles.yml in one of them, or run segkit from the project folder (or set SEGKIT_PROJECT_DIR).")


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SegkitError(f"{path} is not valid YAML ({error}). Fix the file and run again.") from None
    return content if isinstance(content, dict) else {}


def _profile(name: str, target: str, folder: Path, output: dict[str, Any], project_dir: Path) -> Profile:
    engine = str(output.get("type", ""))
    if engine == "spark":
        _check_spark_connect_options(target, output.get("server_side_parameters") or {})
    path = output.get("path")
    if engine == "duckdb" and path is not None:
        path = _local_path(str(path), project_dir)
    # dbt-duckdb opens the database with config_options and then SETs settings; segkit gives both to DuckDB at once.
    settings = {str(key): str(value) for key, value in {**(output.get("config_options") or {}),
                                                        **(output.get("settings") or {})}.items()}
    if engine == "duckdb" and settings.get("temp_directory"):
        # dbt-duckdb sets it in dbt's process, which runs in the project folder; segkit may run anywhere.
        settings["temp_directory"] = _local_path(settings["temp_directory"], project_dir)
    if output.get("motherduck_token"):
        settings["motherduck_token"] = str(output["motherduck_token"])
    secrets = list(output.get("secrets") or [])
    if output.get("use_credential_provider") == "aws":  # dbt-duckdb's older spelling of this secret
        secrets.append({"type": "s3", "provider": "credential_chain"})
    attach = [{**item, "path": _local_path(str(item["path"]), project_dir)} if isinstance(item, dict) and "path" in item
              else item for item in output.get("attach") or []]
    return Profile(
        name=name, target=target, engine=engine, profiles_dir=folder,
        path=path if engine == "duckdb" else None,
        schema=str(output.get("schema") or ("main" if engine == "duckdb" else "")),
        database=str(output.get("database") or "") if engine == "duckdb" else "",
        settings=MappingProxyType(settings),
        extensions=_frozen(output.get("extensions") or []),
        attach=_frozen(attach),
        secrets=_frozen(secrets),
        output=_frozen(output),
    )


# Spark SQL options fixed when a Spark JVM starts, like every option outside spark.sql.* (the master, driver and
# executor memory, Hadoop's and the metastore's): a Spark Connect session cannot change them.
_STATIC_SQL_OPTIONS = ("spark.sql.warehouse.dir", "spark.sql.catalogImplementation", "spark.sql.extensions",
                       "spark.sql.hive.metastore.", "spark.sql.globalTempDatabase")


def _check_spark_connect_options(target: str, parameters: Mapping[str, Any]) -> None:
    """A Spark Connect target (spark.remote) may set only runtime SQL options: the server's JVM is already running,
    and Spark would ignore the others with no more than a warning."""
    if not parameters.get("spark.remote"):
        return
    fixed = [str(key) for key in parameters if key != "spark.remote" and (
        not str(key).startswith("spark.sql.") or str(key).startswith(_STATIC_SQL_OPTIONS))]
    if fixed:
        raise SegkitError(f"The target {target!r} reaches a Spark Connect server (spark.remote), whose JVM is already "
                          f"running, so it cannot take {', '.join(fixed)}. Set them where the server starts "
                          "(spark-submit --conf, or its spark-defaults.conf) and remove them from the target's "
                          "server_side_parameters, which may hold runtime spark.sql.* options only.")


def _local_path(path: str, project_dir: Path) -> str:
    """A DuckDB path as dbt-duckdb opens it from the project folder: a file made absolute, a URI unchanged."""
    if path == ":memory:" or is_uri(path):
        return path
    return str((project_dir / Path(path).expanduser()).resolve())


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    return value


def _render(value: Any, environment: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _render(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, environment) for item in value]
    return _render_env_vars(value, environment) if isinstance(value, str) else value


def _render_env_vars(text: str, environment: Mapping[str, str]) -> str:
    def env_var(name: str, default: str | None = None) -> str:
        value = environment.get(name, default)
        if value is None:
            raise SegkitError(f"profiles.yml needs the environment variable {name}; set it and run again.")
        return value

    rendered = _ENV_VAR_CALL.sub(lambda match: env_var(match.group(1), match.group(2)), text)
    if "{{" not in rendered and "{%" not in rendered:
        return rendered
    # More than a plain env_var call, such as a default built from another variable: Jinja, as dbt renders it
    # (imported only then).
    import jinja2.sandbox

    jinja = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    # dbt's type filters (a port written `{{ env_var('PORT') | as_number }}`); segkit reads values as text.
    jinja.filters.update(dict.fromkeys(("as_number", "as_bool", "as_native", "as_text"), str))
    try:
        return jinja.from_string(text).render(env_var=env_var)
    except jinja2.TemplateError as error:
        raise SegkitError(f"profiles.yml has a value segkit cannot render ({error}): {text}. segkit renders "
                          "env_var() calls and Jinja expressions of them; fix the value and run again.") from None
