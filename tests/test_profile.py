"""The dbt profile, found and read as dbt 1.11 does: lookup order, profile name, target, and the resolved record."""

from __future__ import annotations

from pathlib import Path

import pytest

from segkit.errors import SegkitError
from segkit.profile import read_profile


def write_profiles(folder: Path, path: str, profile: str = "segkit", extra: str = "") -> Path:
    """A profiles.yml whose default DuckDB target opens `path`; extra is more YAML under the target."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(
        f"{profile}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{path}\"\n{extra}")
    return folder


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A dbt project folder using the profile `segkit`, an empty home, and no dbt or segkit variables set."""
    for name in ("SEGKIT_DB", "SEGKIT_TARGET", "SEGKIT_PROFILES_DIR", "DBT_PROFILES_DIR", "DBT_TARGET",
                 "DBT_PROFILE", "SEGKIT_PROJECT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "dbt_project.yml").write_text("name: shop\nprofile: segkit\n")
    return folder


def test_profiles_yml_is_found_in_dbts_order(project, tmp_path, monkeypatch):
    write_profiles(tmp_path / "home" / ".dbt", "home.duckdb")
    assert read_profile(project).path == str(project / "home.duckdb")
    write_profiles(project, "project.duckdb")
    assert read_profile(project).path == str(project / "project.duckdb")
    monkeypatch.setenv("DBT_PROFILES_DIR", str(write_profiles(tmp_path / "env", "env.duckdb")))
    assert read_profile(project).path == str(project / "env.duckdb")
    flag = write_profiles(tmp_path / "flag", "flag.duckdb")
    assert read_profile(project, profiles_dir=flag).path == str(project / "flag.duckdb")
    assert read_profile(project, profiles_dir=flag).profiles_dir == flag


def test_the_profile_name_comes_from_dbt_project_yml_or_dbt_profile(project, monkeypatch):
    (project / "dbt_project.yml").write_text("name: shop\nprofile: analytics\n")
    write_profiles(project, "analytics.duckdb", profile="analytics")
    profile = read_profile(project)
    assert (profile.name, profile.path) == ("analytics", str(project / "analytics.duckdb"))
    with (project / "profiles.yml").open("a") as profiles:
        profiles.write("other:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: other.duckdb\n")
    monkeypatch.setenv("DBT_PROFILE", "other")
    assert read_profile(project).path == str(project / "other.duckdb")


def test_the_target_is_the_flag_then_dbt_target_then_the_profiles_default(project, monkeypatch):
    (project / "profiles.yml").write_text(
        "segkit:\n  target: \"{{ env_var('SHOP_TARGET', 'dev') }}\"\n  outputs:\n"
        "    dev:\n      type: duckdb\n      path: dev.duckdb\n"
        "    prod:\n      type: duckdb\n      path: prod.duckdb\n"
        "    ci:\n      type: duckdb\n      path: \"{{ env_var('CI_ONLY_VARIABLE') }}\"\n")
    assert read_profile(project).target == "dev"
    monkeypatch.setenv("SHOP_TARGET", "prod")
    assert read_profile(project).target == "prod"  # the profile's default, rendered
    monkeypatch.setenv("DBT_TARGET", "dev")
    assert read_profile(project).target == "dev"
    assert read_profile(project, target="prod").path == str(project / "prod.duckdb")
    with pytest.raises(SegkitError, match="needs the environment variable CI_ONLY_VARIABLE"):
        read_profile(project, target="ci")  # only the chosen target is rendered, as in dbt
    with pytest.raises(SegkitError, match="no target 'staging'; its targets are dev, prod, ci"):
        read_profile(project, target="staging")


def test_a_duckdb_target_is_resolved_into_one_record(project, monkeypatch):
    monkeypatch.setenv("SHOP_S3_SECRET", "s3cr3t")
    write_profiles(project, "warehouse/shop.duckdb", extra=(
        "      schema: analytics\n"
        "      settings:\n        memory_limit: 1GB\n        threads: 1\n"
        "      extensions:\n        - httpfs\n        - name: spatial\n"
        "      attach:\n        - path: raw.duckdb\n          alias: raw\n          read_only: true\n"
        "      secrets:\n        - type: s3\n          key_id: shop\n"
        "          secret: \"{{ env_var('SHOP_S3_SECRET') }}\"\n"))
    monkeypatch.chdir(project.parent)  # dbt-duckdb opens a relative path from the project folder, not from here
    profile = read_profile(project)
    assert (profile.engine, profile.target, profile.schema) == ("duckdb", "dev", "analytics")
    assert profile.path == str(project / "warehouse" / "shop.duckdb")
    assert dict(profile.settings) == {"memory_limit": "1GB", "threads": "1"}
    assert profile.extensions == ("httpfs", {"name": "spatial"})
    assert [dict(a) for a in profile.attach] == [{"path": "raw.duckdb", "alias": "raw", "read_only": True}]
    assert [dict(s) for s in profile.secrets] == [{"type": "s3", "key_id": "shop", "secret": "s3cr3t"}]
    assert "s3cr3t" not in repr(profile)
    with pytest.raises(TypeError):
        profile.settings["memory_limit"] = "9GB"


def test_the_schema_defaults_to_main_and_motherduck_paths_are_kept(project):
    write_profiles(project, "md:my_db?motherduck_token=abc")
    profile = read_profile(project)
    assert (profile.path, profile.schema) == ("md:my_db?motherduck_token=abc", "main")
