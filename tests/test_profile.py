"""The dbt profile, found and read as dbt 1.11 does: lookup order, profile name, target, and the resolved record."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from segkit.cli import cli
from segkit.config import load_settings
from segkit.dbt_runner import run_dbt
from segkit.engine import connect, location
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
    assert [dict(a) for a in profile.attach] == [{"path": str(project / "raw.duckdb"), "alias": "raw", "read_only": True}]
    assert [dict(s) for s in profile.secrets] == [{"type": "s3", "key_id": "shop", "secret": "s3cr3t"}]
    assert "s3cr3t" not in repr(load_settings(project_dir=project))
    with pytest.raises(TypeError):
        profile.settings["memory_limit"] = "9GB"


def test_the_schema_defaults_to_main_and_motherduck_paths_are_kept(project):
    write_profiles(project, "md:my_db?motherduck_token=abc")
    profile = read_profile(project)
    assert (profile.path, profile.schema) == ("md:my_db?motherduck_token=abc", "main")
    assert str(load_settings(project_dir=project).db_path) == "md:my_db?motherduck_token=abc"


def test_a_spark_target_carries_its_output(project):
    (project / "profiles.yml").write_text(
        "segkit:\n  target: spark\n  outputs:\n    spark:\n      type: spark\n      method: session\n"
        "      host: localhost\n      schema: shop\n      server_side_parameters:\n"
        "        spark.sql.warehouse.dir: .spark/warehouse\n")
    settings = load_settings(project_dir=project)
    assert (settings.profile.engine, settings.profile.schema, settings.profile.path) == ("spark", "shop", None)
    assert location(settings) == {"engine": "spark", "target": "spark", "schema": "shop",
                                  "warehouse": str(project / ".spark/warehouse")}


def test_a_database_given_in_code_needs_no_profiles_yml(project, tmp_path):
    database = tmp_path / "notebook.duckdb"
    settings = load_settings(project_dir=project, db_path=database)
    assert settings.db_path == database and settings.profile.profiles_dir is None
    with connect(settings) as con:
        assert con.execute("select 42").fetchone() == (42,)
    with pytest.raises(SegkitError, match="dbt needs a profiles.yml"):
        run_dbt(settings)


def test_a_database_given_in_code_takes_the_profiles_settings_and_reaches_dbt(project, tmp_path):
    write_profiles(project, "{{ env_var('SEGKIT_DB', 'segkit.duckdb') }}",
                   extra="      settings:\n        memory_limit: 300MB\n")
    settings = load_settings(project_dir=project, db_path=tmp_path / "given.duckdb")
    assert settings.profile.path == str(tmp_path / "given.duckdb")
    with connect(settings) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone() == ("286.1 MiB",)


def test_dbt_is_not_run_on_a_file_other_than_segkits(project, tmp_path):
    write_profiles(project, "fixed.duckdb")
    settings = load_settings(project_dir=project, db_path=tmp_path / "given.duckdb")
    with pytest.raises(SegkitError, match=r"dbt would build .*fixed.duckdb.* while segkit works on .*given.duckdb"):
        run_dbt(settings)


def test_missing_profiles_say_where_dbt_looks(project, tmp_path, monkeypatch):
    with pytest.raises(SegkitError, match=r"No profiles.yml was found.*--profiles-dir.*DBT_PROFILES_DIR.*\.dbt"):
        load_settings(project_dir=project)
    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path / "empty"))
    with pytest.raises(SegkitError, match="no profiles.yml in .*empty \\(named by DBT_PROFILES_DIR\\)"):
        load_settings(project_dir=project)
    monkeypatch.delenv("DBT_PROFILES_DIR")
    write_profiles(project, "x.duckdb", profile="someone_else")
    with pytest.raises(SegkitError, match="has no profile 'segkit'.*its profiles are someone_else"):
        load_settings(project_dir=project)
    (project / "dbt_project.yml").unlink()
    with pytest.raises(SegkitError, match="no dbt_project.yml in .*SEGKIT_PROJECT_DIR"):
        load_settings(project_dir=project)


def test_db_path_is_not_a_setting_of_segkit_toml(project):
    write_profiles(project, "segkit.duckdb")
    (project / "segkit.toml").write_text("[segkit]\ndb_path = 'elsewhere.duckdb'\n")
    with pytest.raises(SegkitError, match="sets db_path, which dbt never reads.*SEGKIT_DB"):
        load_settings(project_dir=project)


def test_the_profiles_dir_flag_reaches_every_command(project, tmp_path, monkeypatch):
    flag = write_profiles(tmp_path / "flag", str(tmp_path / "from_the_flag.duckdb"))
    monkeypatch.setenv("SEGKIT_PROJECT_DIR", str(project))
    for command in (["assign", "--value", "recency_days=1"], ["drift"], ["report"], ["cluster"]):
        result = CliRunner().invoke(cli, [*command, "--profiles-dir", str(flag)])
        assert result.exit_code == 1, result.output
        assert "from_the_flag.duckdb does not exist yet" in result.output, (command, result.output)


def test_dbt_duckdbs_other_spellings_of_settings_and_secrets_are_read_as_it_reads_them(project):
    write_profiles(project, "shop.duckdb", extra=(
        "      config_options:\n        threads: 1\n        memory_limit: 1GB\n"
        "      settings:\n        memory_limit: 2GB\n"
        "      motherduck_token: t0ken\n"
        "      use_credential_provider: aws\n"
        "      secrets:\n        - type: http\n          bearer_token: abc\n"))
    profile = read_profile(project)
    assert dict(profile.settings) == {"threads": "1", "memory_limit": "2GB", "motherduck_token": "t0ken"}
    assert [dict(secret) for secret in profile.secrets] == [{"type": "http", "bearer_token": "abc"},
                                                            {"type": "s3", "provider": "credential_chain"}]
    assert "t0ken" not in repr(profile)


def test_a_default_built_from_another_variable_is_rendered_as_dbt_renders_it(project, monkeypatch):
    write_profiles(project, "{{ env_var('SEGKIT_DB', 'segkit.duckdb') }}", extra=(
        "      settings:\n"
        "        temp_directory: \"{{ env_var('SHOP_SPILL', env_var('SEGKIT_DB', 'segkit.duckdb') ~ '.tmp') }}\"\n"))
    assert read_profile(project).settings["temp_directory"] == str(project / "segkit.duckdb.tmp")
    monkeypatch.setenv("SEGKIT_DB", "/data/shop.duckdb")
    assert read_profile(project).settings["temp_directory"] == "/data/shop.duckdb.tmp"
    monkeypatch.setenv("SHOP_SPILL", "spill")  # relative, like the database: to the project folder, where dbt runs
    assert read_profile(project).settings["temp_directory"] == str(project / "spill")

    write_profiles(project, "{{ env_var('SHOP_DB', env_var('SHOP_MISSING') ~ '.duckdb') }}")
    with pytest.raises(SegkitError, match="profiles.yml needs the environment variable SHOP_MISSING"):
        read_profile(project)
    write_profiles(project, "{{ env_var('SHOP_DB', 'a' ~ ) }}")
    with pytest.raises(SegkitError, match=r"profiles.yml has a value segkit cannot render .*env_var\('SHOP_DB'"):
        read_profile(project)


def test_dbts_type_filters_render_to_the_value_they_filter(project, monkeypatch):
    write_profiles(project, "{{ env_var('SEGKIT_DB', 'segkit.duckdb') }}", extra=(
        "      settings:\n"
        "        threads: \"{{ env_var('SHOP_THREADS', '3') | as_number }}\"\n"
        "        enable_object_cache: \"{{ env_var('SHOP_CACHE', 'true') | as_bool }}\"\n"))
    monkeypatch.setenv("SHOP_THREADS", "5")
    settings = read_profile(project).settings
    assert (settings["threads"], settings["enable_object_cache"]) == ("5", "true")
