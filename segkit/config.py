"""One settings object and one loader: flag, then SEGKIT_* environment variable, then segkit.toml, then default.

The loader also resolves the dbt profile once (segkit.profile: dbt's own lookup), so every command, connection
and dbt run of a process works on the same target and database.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segkit.errors import SegkitError
from segkit.profile import Profile, is_uri, read_profile

CONFIG_FILE = "segkit.toml"
ALGORITHMS = ("kmeans", "gmm", "agglomerative")


@dataclass(frozen=True)
class Settings:
    """Everything a segkit run depends on; stored with each run so it can be reproduced."""

    db_path: Path
    project_dir: Path
    features: tuple[str, ...] = ("recency_days", "frequency", "monetary_total")
    algorithm: str = "kmeans"
    k: int | None = None
    # The range of segment counts a marketing team can act on; k is chosen from the evidence inside it (README).
    k_min: int = 4
    k_max: int = 8
    seed: int = 42
    fit_sample_size: int = 50_000
    silhouette_sample_size: int = 10_000
    stability_resamples: int = 5
    winsor_quantiles: tuple[float, float] = (0.001, 0.999)
    report_path: Path | None = None
    write_report: bool = True
    min_segment_size: int = 10
    currency: str = ""
    segment_names: dict[int, str] = field(default_factory=dict)
    match_threshold: float = 1.0
    drift_psi_threshold: float = 0.25
    drift_distance_ratio_threshold: float = 1.25
    target: str = ""  # the dbt target of profiles.yml to run on; empty: DBT_TARGET, else the profile's default
    profiles_dir: Path | None = None  # the folder of profiles.yml; None: DBT_PROFILES_DIR, project folder, ~/.dbt
    # The dbt target that target and profiles_dir led to (segkit.profile). A Settings made in code without one
    # opens db_path with DuckDB's defaults.
    profile: Profile | None = None

    def __post_init__(self):
        if self.profile is None:
            object.__setattr__(self, "profile", Profile.bare_duckdb(self.db_path))

    def to_json_dict(self) -> dict[str, Any]:
        """The settings as plain JSON values, for the run history; not the profile, which may hold secrets."""
        return {item.name: _json_value(getattr(self, item.name))
                for item in dataclasses.fields(self) if item.name != "profile"}


def _json_value(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _segment_names(value: Any) -> dict[int, str]:
    if isinstance(value, str):
        # SEGKIT_SEGMENT_NAMES='1 = "VIP", 3 = "Weekend regulars"' (TOML inline-table syntax)
        value = tomllib.loads(f"names = {{ {value.strip().strip('{}')} }}")["names"]
    return {int(key): str(name) for key, name in dict(value).items()}


_CASTS = {
    "features": lambda v: tuple(f.strip() for f in v.split(",") if f.strip()) if isinstance(v, str) else tuple(v),
    "winsor_quantiles": lambda v: tuple(float(q) for q in (v.split(",") if isinstance(v, str) else v)),
    "segment_names": _segment_names,
    "write_report": lambda v: v if isinstance(v, bool) else _BOOLEANS[str(v).strip().lower()],
    "report_path": lambda v: Path(v),
    "profiles_dir": lambda v: Path(v).expanduser().resolve(),
}


def project_root() -> Path:
    """The dbt project folder: SEGKIT_PROJECT_DIR, else, as dbt looks for it, the nearest folder up from the
    current one that holds a dbt_project.yml, else the current folder."""
    if os.environ.get("SEGKIT_PROJECT_DIR"):
        return Path(os.environ["SEGKIT_PROJECT_DIR"]).resolve()
    here = Path.cwd().resolve()
    return next((folder for folder in (here, *here.parents) if (folder / "dbt_project.yml").is_file()), here)


def bundled_project() -> Path:
    """segkit's own dbt project, the one a new project uses as its dbt package: segkit/_project in an installed
    wheel (the wheel maps the repository's project there, see pyproject.toml), else the root of the clone segkit
    runs from."""
    package = Path(__file__).resolve().parent
    for folder in (package / "_project", package.parent):
        path = folder / "dbt_project.yml"
        if path.is_file() and "\nname: segkit\n" in f"\n{path.read_text(encoding='utf-8')}":
            return folder
    raise SegkitError(f"segkit's dbt project is missing from its installation in {package}. Reinstall segkit "
                      "(pip install --force-reinstall segkit) and run again.")


def bundled_project_vars() -> dict[str, Any]:
    """The vars of segkit's own dbt project, with their defaults: among them `columns`, segkit's column names
    mapped to the default input's."""
    return yaml.safe_load((bundled_project() / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]


def load_settings(**overrides: Any) -> Settings:
    """Build Settings; keyword arguments left as None fall through to environment, file and defaults.

    The database is the DuckDB file of the profile's target (SEGKIT_DB in the shipped profiles.yml). A
    ``db_path`` given here takes its place, as SEGKIT_DB would, and then no profiles.yml is needed: without
    one the file is opened with DuckDB's defaults.
    """
    root = Path(overrides.pop("project_dir", None) or project_root())
    database = overrides.pop("db_path", None)
    from_file = _read_config_file(root / CONFIG_FILE)
    _refuse_a_second_database_setting(from_file, root)
    names = {f.name for f in dataclasses.fields(Settings)} - {"project_dir", "db_path", "profile"}
    unknown = set(from_file) - names
    if unknown:
        raise SegkitError(f"{root / CONFIG_FILE} has unknown settings: {', '.join(sorted(unknown))}. "
                          f"Known settings: {', '.join(sorted(names))}.")
    values: dict[str, Any] = {}
    for name in names:
        env_value = os.environ.get(f"SEGKIT_{name.upper()}")
        for candidate in (overrides.get(name), env_value, from_file.get(name)):
            if candidate is not None:
                values[name] = _cast(name, candidate)
                break
    database = _given_database(database) if database is not None else None
    profile = read_profile(root, values.get("profiles_dir"), values.get("target", ""),
                           segkit_db=str(database) if database else None,
                           required=database is None or bool(values.get("target")))
    profile = profile or Profile.bare_duckdb(database)
    settings = Settings(project_dir=root, db_path=database or _profile_database(profile, root), profile=profile,
                        **values)
    _validate(settings)
    return settings


def _refuse_a_second_database_setting(from_file: dict[str, Any], root: Path) -> None:
    """The database has one name, SEGKIT_DB (or the profile's path), which dbt reads too; a setting that only
    segkit read would let segkit and dbt work on different files."""
    if os.environ.get("SEGKIT_DB_PATH"):
        raise SegkitError("SEGKIT_DB_PATH is set, but dbt never reads it, so segkit and dbt would work on different "
                          "files. Name the database with SEGKIT_DB, which profiles.yml passes to dbt too: set "
                          "SEGKIT_DB instead and unset SEGKIT_DB_PATH.")
    if "db_path" in from_file:
        raise SegkitError(f"{root / CONFIG_FILE} sets db_path, which dbt never reads, so segkit and dbt would work "
                          "on different files. Remove it, and name the database in profiles.yml (its path) or "
                          "with SEGKIT_DB.")


def _given_database(value: Path | str) -> Path:
    """A database given in code: a URI unchanged, a file relative to the current folder."""
    return Path(value) if is_uri(str(value)) else Path(value).expanduser().resolve()


def _profile_database(profile: Profile, root: Path) -> Path:
    if profile.engine != "duckdb":
        # No database file: segkit's lock files (see warehouse.exclusive_run) take this name in the project folder.
        return root / f"{profile.name}.{profile.target}"
    if profile.path in (None, ":memory:"):
        raise SegkitError(f"The target {profile.target!r} in {profile.profiles_dir / 'profiles.yml'} names no DuckDB "
                          "file, so dbt would build in memory and segkit could not read it. Give it a path, e.g. "
                          "path: segkit.duckdb.")
    return Path(profile.path)


def _cast(name: str, value: Any) -> Any:
    default = next(f for f in dataclasses.fields(Settings) if f.name == name).default
    cast = _CASTS.get(name) or (int if name == "k" else type(default))
    try:
        return cast(value)
    except (TypeError, ValueError, AttributeError, KeyError, tomllib.TOMLDecodeError):
        raise SegkitError(f"The setting {name}={value!r} cannot be read. Examples: features = "
                          "'recency_days,frequency,monetary_total', winsor_quantiles = '0.001,0.999', "
                          "segment_names = '1 = \"VIP\", 3 = \"Weekend regulars\"', k_max = 8.") from None


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text()).get("segkit", {})
    except tomllib.TOMLDecodeError as error:
        raise SegkitError(f"{path} is not valid TOML ({error}). Fix the file and run again.") from None


def _validate(settings: Settings) -> None:
    if settings.algorithm not in ALGORITHMS:
        raise SegkitError(f"Unknown algorithm {settings.algorithm!r}; choose one of {', '.join(ALGORITHMS)}.")
    if not 2 <= settings.k_min <= settings.k_max:
        raise SegkitError(f"The k range {settings.k_min}..{settings.k_max} is invalid; it needs 2 <= k_min <= k_max.")
    if settings.k is not None and settings.k < 2:
        raise SegkitError(f"--k {settings.k} is invalid; a segmentation needs at least 2 segments.")
    for name, lowest in (("fit_sample_size", 2), ("silhouette_sample_size", 2), ("stability_resamples", 0),
                         ("min_segment_size", 1)):
        if getattr(settings, name) < lowest:
            raise SegkitError(f"The setting {name}={getattr(settings, name)} is too small; it must be at least {lowest}.")
    quantiles = settings.winsor_quantiles
    if len(quantiles) != 2 or not 0 <= quantiles[0] < quantiles[1] <= 1:
        raise SegkitError(f"winsor_quantiles={settings.winsor_quantiles} is invalid: give two quantiles, "
                          "0 <= lower < upper <= 1, e.g. 0.001,0.999.")
    for name in ("match_threshold", "drift_psi_threshold", "drift_distance_ratio_threshold"):
        if not getattr(settings, name) > 0:
            raise SegkitError(f"The setting {name}={getattr(settings, name)} must be greater than 0.")
    if not settings.features:
        raise SegkitError("No features are configured; set at least one, e.g. recency_days,frequency,monetary_total.")
