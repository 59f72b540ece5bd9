"""`segkit init`: a new project that uses segkit as a dbt package, with its profile wherever dbt would find it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest
import yaml
from click.testing import CliRunner

from segkit.cli import cli
from segkit.config import bundled_project, load_settings
from segkit.demo_data import generate_demo_data
from segkit.engine import connect
from tests.conftest import ROOT, SEGKIT

DBT = str(Path(SEGKIT).parent / "dbt")


def clean_environment(home: Path) -> dict[str, str]:
    """A new user's environment: their own HOME, and nothing of this repository's (no project, database, target,
    profile folder, or dbt target/log path set by the test session)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SEGKIT_", "DBT_")) or name == "SEGKIT_PSEUDONYM_KEY"}
    return {**env, "HOME": str(home), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_init_writes_a_project_that_uses_segkit_as_a_package(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "Shop 2024"), "--transactions-path", "exports/*.csv",
                                      "--column", "customer_id=customer_number", "--column", "product_id="])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "Shop 2024"
    assert sorted(path.name for path in folder.iterdir()) == [
        ".gitignore", "README.md", "dbt_project.yml", "packages.yml", "profiles.yml"]
    project = yaml.safe_load((folder / "dbt_project.yml").read_text())
    assert (project["name"], project["profile"]) == ("shop_2024", "shop_2024")
    assert project["vars"]["transactions_path"] == "exports/*.csv" and project["vars"]["transactions_relation"] is None
    package_columns = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]["columns"]
    assert project["vars"]["columns"] == {**package_columns, "customer_id": "customer_number", "product_id": None}
    assert yaml.safe_load((folder / "packages.yml").read_text()) == {"packages": [{"local": str(bundled_project())}]}
    profile = yaml.safe_load((folder / "profiles.yml").read_text())["shop_2024"]["outputs"]["dev"]
    assert (profile["type"], profile["schema"]) == ("duckdb", "main")
    assert [plugin["module"] for plugin in profile["plugins"]] == ["segkit.pseudonyms", "segkit.reader"]
    assert "dbt deps" in (folder / "README.md").read_text() and "exports/*.csv" in (folder / "README.md").read_text()


def test_init_reads_a_table_instead_of_a_file(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "shop"), "--transactions-relation", "raw.orders"])
    assert result.exit_code == 0, result.output
    variables = yaml.safe_load((tmp_path / "shop" / "dbt_project.yml").read_text())["vars"]
    assert (variables["transactions_path"], variables["transactions_relation"]) == (None, "raw.orders")


def test_init_never_overwrites_a_file(tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "profiles.yml").write_text("mine: {}\n")
    result = CliRunner().invoke(cli, ["init", str(folder)])
    assert result.exit_code == 1
    assert "already has profiles.yml; segkit init never overwrites a file" in result.output
    assert "Traceback" not in result.output
    assert [path.name for path in folder.iterdir()] == ["profiles.yml"]  # nothing else written either
    assert (folder / "profiles.yml").read_text() == "mine: {}\n"
    for arguments, message in ((["--column", "customer=id"], "Unknown column customer in --column"),
                               (["--name", "segkit"], "cannot name the dbt project"),
                               (["--transactions-path", "a.csv", "--transactions-relation", "raw.orders"],
                                "Give the input once")):
        result = CliRunner().invoke(cli, ["init", str(tmp_path / "other"), *arguments])
        assert result.exit_code == 1 and message in result.output, result.output
    assert not (tmp_path / "other").exists()


@pytest.mark.slow
def test_a_new_project_builds_and_clusters_with_its_profile_in_home_dbt_and_its_own_schema(tmp_path, monkeypatch):
    """The README's path for a new user, in a clone: init on a table of a second database, attached in the profile,
    which moves to ~/.dbt with schema analytics; dbt deps, dbt build, segkit cluster and report. A missing schema, profile or
    target is named."""
    home, folder = tmp_path / "home", tmp_path / "shop"
    env = clean_environment(home)
    # The raw transactions are a table of a second database, attached read-only as `raw` by dbt and segkit alike.
    run([SEGKIT, "init", str(folder), "--transactions-relation", "raw.main.orders"], tmp_path, env)
    export = generate_demo_data(tmp_path / "export.csv.gz", customers=60, seed=3).path
    with duckdb.connect(str(folder / "raw.duckdb")) as con:
        con.execute(f"create table orders as select * from read_csv('{export}', all_varchar = true)")
    (home / ".dbt").mkdir(parents=True)
    profiles = (folder / "profiles.yml").read_text().replace("schema: main", "schema: analytics").replace(
        "      # attach:\n", "      attach:\n        - path: raw.duckdb\n          alias: raw\n          read_only: true\n")
    (home / ".dbt" / "profiles.yml").write_text(profiles)
    (folder / "profiles.yml").unlink()

    run([DBT, "deps"], folder, env)
    duckdb.connect(str(folder / "shop.duckdb")).close()  # the user's database, without the schema yet
    before = subprocess.run([SEGKIT, "cluster"], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert before.returncode == 1 and "Traceback" not in before.stderr, before.stderr
    assert "The schema 'analytics'" in before.stderr and "Run `dbt build` first" in before.stderr, before.stderr
    with duckdb.connect(str(folder / "shop.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from information_schema.tables").fetchall() == [(0,)]
        assert con.execute("select schema_name from information_schema.schemata where catalog_name = 'shop'"
                           ).fetchall() == [("main",)]
    run([DBT, "build"], folder, env)
    cluster = run([SEGKIT, "cluster", "--k", "3", "--no-report"], folder, env)
    assert "3 segments" in cluster.stdout, cluster.stdout
    report = run([SEGKIT, "report"], folder, env)
    assert Path(report.stdout.split("Report: ")[1].strip()).is_file()
    with duckdb.connect(str(folder / "shop.duckdb"), read_only=True) as con:
        # dbt builds into analytics_build and publishes to analytics, where segkit reads and writes; main stays empty.
        tables = set(con.execute("select table_schema, table_name from information_schema.tables where table_name in "
                                 "('customer_rfm', 'customer_segments', 'cluster_runs')").fetchall())
        assert tables == {("analytics", "customer_rfm"), ("analytics_build", "customer_rfm"),
                          ("analytics", "customer_segments"), ("analytics", "cluster_runs")}
        assert con.execute("select count(distinct segment_id) from analytics.customer_segments").fetchall() == [(3,)]
    # segkit's own connection, as its commands open it, has the attachment of the profile in ~/.dbt.
    for name in [name for name in os.environ if name.startswith(("SEGKIT_", "DBT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    with connect(load_settings(project_dir=folder), read_only=True) as con:
        assert con.execute("select current_schema()").fetchall() == [("analytics",)]
        assert con.execute("select count(*) from raw.orders").fetchall() == \
            con.execute(f"select count(*) from read_csv('{export}')").fetchall()

    for command, extra_env, message in (
            (["cluster", "--target", "prod"], {}, "profiles.yml has no target 'prod'; its targets are dev"),
            (["report"], {"DBT_PROFILE": "warehouse"}, "has no profile 'warehouse'")):
        result = subprocess.run([SEGKIT, *command], cwd=folder, env={**env, **extra_env}, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_the_bundled_project_is_this_clone_when_segkit_runs_from_it():
    assert bundled_project() == ROOT
