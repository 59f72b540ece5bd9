"""Settings precedence: flag, then SEGKIT_* environment variable, then segkit.toml, then default."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from segkit.cli import cli
from segkit.config import load_settings
from segkit.demo_data import generate_demo_data
from segkit.engine import connect
from segkit.errors import SegkitError
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "dbt_project.yml").write_text("name: segkit\nprofile: segkit\n")
    (tmp_path / "profiles.yml").write_text(
        "segkit:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{{ env_var('SEGKIT_DB', 'segkit.duckdb') }}\"\n")
    for name in ("SEGKIT_DB", "SEGKIT_K_MAX", "SEGKIT_ALGORITHM", "SEGKIT_FEATURES", "SEGKIT_SEGMENT_NAMES",
                 "SEGKIT_WINSOR_QUANTILES", "SEGKIT_TARGET", "DBT_PROFILES_DIR", "DBT_TARGET", "DBT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_defaults_when_nothing_is_set(project):
    settings = load_settings(project_dir=project)
    assert (settings.k_min, settings.k_max) == (4, 8)
    assert settings.algorithm == "kmeans"
    assert settings.db_path == project / "segkit.duckdb"


def test_file_then_environment_then_flag(project, monkeypatch):
    (project / "segkit.toml").write_text("[segkit]\nk_max = 7\nalgorithm = 'gmm'\n")
    assert load_settings(project_dir=project).k_max == 7
    monkeypatch.setenv("SEGKIT_K_MAX", "6")
    assert load_settings(project_dir=project).k_max == 6
    assert load_settings(project_dir=project, k_max=5).k_max == 5
    assert load_settings(project_dir=project).algorithm == "gmm"


def test_features_from_the_environment_are_a_list(project, monkeypatch):
    monkeypatch.setenv("SEGKIT_FEATURES", "recency_days, monetary_total")
    assert load_settings(project_dir=project).features == ("recency_days", "monetary_total")


def test_unknown_setting_in_the_file_is_named(project):
    (project / "segkit.toml").write_text("[segkit]\nk_maximum = 7\n")
    with pytest.raises(SegkitError, match="unknown settings: k_maximum"):
        load_settings(project_dir=project)


def test_invalid_values_are_explained(project):
    with pytest.raises(SegkitError, match="Unknown algorithm"):
        load_settings(project_dir=project, algorithm="dbscan")
    with pytest.raises(SegkitError, match="k range"):
        load_settings(project_dir=project, k_min=5, k_max=3)


def test_segment_names_and_quantiles_from_the_environment(project, monkeypatch):
    monkeypatch.setenv("SEGKIT_SEGMENT_NAMES", '1 = "VIP", 3 = "Weekend regulars"')
    monkeypatch.setenv("SEGKIT_WINSOR_QUANTILES", "0.01,0.99")
    settings = load_settings(project_dir=project)
    assert settings.segment_names == {1: "VIP", 3: "Weekend regulars"}
    assert settings.winsor_quantiles == (0.01, 0.99)


@pytest.mark.parametrize("name, value", [
    ("SEGKIT_WINSOR_QUANTILES", "abc"), ("SEGKIT_WINSOR_QUANTILES", "0.9,0.1"), ("SEGKIT_SEGMENT_NAMES", "{1: X}"),
    ("SEGKIT_K_MAX", "ten"), ("SEGKIT_WRITE_REPORT", "maybe"), ("SEGKIT_FIT_SAMPLE_SIZE", "0"),
    ("SEGKIT_SILHOUETTE_SAMPLE_SIZE", "1"), ("SEGKIT_MIN_SEGMENT_SIZE", "-5"), ("SEGKIT_STABILITY_RESAMPLES", "-1"),
])
def test_unreadable_or_out_of_range_environment_settings_are_explained(project, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SegkitError, match="cannot be read|invalid|too small"):
        load_settings(project_dir=project)


# ------------------------------------------------------------------ dbt and segkit on one database and target

def sandbox_project(folder: Path, transactions: Path, profiles: str) -> Path:
    """A project folder of its own: the repository's dbt models (linked), its dbt_project.yml reading
    `transactions`, and the given profiles.yml; so dbt writes nothing into the repository."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dbt_project").symlink_to(ROOT / "dbt_project")
    project = yaml.safe_load((ROOT / "dbt_project.yml").read_text())
    project["vars"]["transactions_path"] = str(transactions)
    (folder / "dbt_project.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    (folder / "profiles.yml").write_text(profiles)
    return folder


def duckdb_output(path: str) -> str:
    return (f"      type: duckdb\n      path: \"{path}\"\n      threads: 1\n"
            "      plugins:\n        - module: segkit.pseudonyms\n        - module: segkit.reader\n")


@pytest.fixture(scope="module")
def small_transactions(tmp_path_factory) -> Path:
    """60 demo customers: a `dbt build` of them costs little more than dbt's parse."""
    path = tmp_path_factory.mktemp("small") / "transactions.csv.gz"
    generate_demo_data(path, customers=60, seed=3)
    return path


@pytest.fixture
def sandbox_env(monkeypatch):
    """No database, target or profile folder named by the caller's environment."""
    for name in ("SEGKIT_DB", "SEGKIT_DB_PATH", "SEGKIT_TARGET", "SEGKIT_PROFILES_DIR", "DBT_PROFILES_DIR",
                 "DBT_TARGET", "DBT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.slow
def test_segkit_build_and_cluster_use_the_one_file_segkit_db_names(tmp_path, small_transactions, sandbox_env):
    project = sandbox_project(tmp_path / "project", small_transactions, "segkit:\n  target: dev\n  outputs:\n"
                              "    dev:\n" + duckdb_output("{{ env_var('SEGKIT_DB', 'segkit.duckdb') }}"))
    sandbox_env.setenv("SEGKIT_PROJECT_DIR", str(project))
    # SEGKIT_DB_PATH would reach segkit only, never dbt: both commands refuse it, naming SEGKIT_DB.
    sandbox_env.setenv("SEGKIT_DB_PATH", str(tmp_path / "elsewhere.duckdb"))
    for command in (["build"], ["cluster", "--k", "2", "--no-report"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1, result.output
        assert "SEGKIT_DB_PATH" in result.output and re.search(r"\bSEGKIT_DB\b", result.output)
        assert "Traceback" not in result.output
    assert not list(tmp_path.rglob("*.duckdb"))
    sandbox_env.delenv("SEGKIT_DB_PATH")
    chosen = tmp_path / "chosen.duckdb"
    sandbox_env.setenv("SEGKIT_DB", str(chosen))
    assert CliRunner().invoke(cli, ["build"]).exit_code == 0
    result = CliRunner().invoke(cli, ["cluster", "--k", "2", "--no-report", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["db_path"] == str(chosen)
    assert sorted(tmp_path.rglob("*.duckdb")) == [chosen]


@pytest.mark.slow
def test_demo_and_snapshots_build_and_cluster_on_the_target_segkit_target_names(tmp_path, small_transactions,
                                                                                 sandbox_env):
    profiles = ("segkit:\n  target: dev\n  outputs:\n"
                "    dev:\n" + duckdb_output("dev.duckdb") + "    other:\n" + duckdb_output("other.duckdb"))
    project = sandbox_project(tmp_path / "project", small_transactions, profiles)
    sandbox_env.setenv("SEGKIT_PROJECT_DIR", str(project))
    # A target the profile lacks stops `segkit demo` before dbt builds anything on the default one.
    sandbox_env.setenv("SEGKIT_TARGET", "nosuch")
    demo = CliRunner().invoke(cli, ["demo", "--k", "2", "--no-report"])
    assert demo.exit_code == 1 and "no target 'nosuch'" in demo.output, demo.output
    assert not list(project.glob("*.duckdb"))
    sandbox_env.setenv("SEGKIT_TARGET", "other")
    snapshots = CliRunner().invoke(cli, ["snapshots", "--start", "2011-12-01", "--end", "2011-12-01", "--k", "2"])
    assert snapshots.exit_code == 0, snapshots.output
    assert not (project / "dev.duckdb").exists()
    with duckdb.connect(str(project / "other.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from cluster_runs").fetchone()[0] == 1
        assert con.execute("select max(analysis_date) from customer_rfm").fetchone()[0] == date(2011, 12, 1)


def test_segkit_connects_with_the_settings_of_the_project_it_was_given(tmp_path, sandbox_env):
    """The profile of settings.project_dir, not of the working directory (the repository, 3GB)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: segkit\nprofile: segkit\n")
    (project / "profiles.yml").write_text(
        "segkit:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: own.duckdb\n"
        "      settings:\n        memory_limit: 300MB\n        threads: 1\n")
    sandbox_env.chdir(ROOT)
    settings = load_settings(project_dir=project)
    with connect(settings) as con:
        limit, threads = con.execute("select current_setting('memory_limit'), current_setting('threads')").fetchone()
    assert (limit, threads) == ("286.1 MiB", 1)
    assert settings.db_path == project / "own.duckdb"
