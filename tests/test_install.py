"""`pip install segkit` is the product: the wheel, installed in a fresh environment, works with no clone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT

# What the wheel is built from: the files of the repository that pyproject.toml names, copied, so that the build
# writes nothing (build/, *.egg-info) into the clone.
SOURCES = ("pyproject.toml", "README.md", "dbt_project.yml", "dbt_project", "segkit")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "target", "logs", "dbt_packages", "_project")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_the_wheel_installed_in_a_fresh_environment_inits_builds_and_clusters(tmp_path):
    started = time.monotonic()
    # A new user's environment: nothing of this repository (no PYTHONPATH to the clone, no project, database or
    # dbt path set by the test session), their own HOME; pip still reads the lock and the machine's index.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("SEGKIT_", "DBT_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp_path / "home"), PIP_CONSTRAINT=str(ROOT / "constraints.txt"),
               PIP_DISABLE_PIP_VERSION_CHECK="1", DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    if Path(os.environ.get("HOME", "/nonexistent"), ".cache", "pip").is_dir():
        env["PIP_CACHE_DIR"] = str(Path(os.environ["HOME"], ".cache", "pip"))  # the downloads, not the settings

    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name, **({"ignore": IGNORED} if (ROOT / name).is_dir() else {}))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(source)],
        tmp_path, env)
    wheel = next((tmp_path / "dist").glob("segkit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    # Every file of the dbt project (models, macros, seeds, tests), the report templates and the rules.
    project = {f"segkit/_project/{path.relative_to(source).as_posix()}"
               for folder in ("models", "macros", "seeds", "tests") for path in (source / "dbt_project" / folder).rglob("*")
               if path.is_file()}
    assert len(project) > 40 and project <= names, sorted(project - names)
    assert {f"segkit/{path.relative_to(source / 'segkit').as_posix()}" for folder in ("templates", "rules", "sql")
            for path in (source / "segkit" / folder).glob("*.*") if path.suffix != ".py"} <= names
    assert {"segkit/_project/dbt_project.yml", "segkit/_project/segkit/sql/stored_run.sql"} <= names

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], tmp_path, env)
    installed = tmp_path / "installed"
    bin_ = venv / "bin"

    installed.mkdir()
    init = run([str(bin_ / "segkit"), "init", "shop", "--transactions-path", "data/transactions.csv.gz"],
               installed, env)
    folder = installed / "shop"
    package = (folder / "packages.yml").read_text()
    assert str(venv) in package and str(ROOT) not in package  # segkit's project comes from the wheel
    run([str(bin_ / "segkit"), "demo-data", "--customers", "60", "--seed", "3",
         "--out", "data/transactions.csv.gz"], folder, env)
    run([str(bin_ / "dbt"), "deps"], folder, env)
    build = run([str(bin_ / "dbt"), "build"], folder, env)
    cluster = run([str(bin_ / "segkit"), "cluster", "--k", "3"], folder, env)
    assert "3 segments" in cluster.stdout, cluster.stdout
    assert list((folder / "reports").glob("segments_*.html"))
    with duckdb.connect(str(folder / "shop.duckdb"), read_only=True) as con:
        assert con.execute("select count(distinct segment_id) from main.customer_segments").fetchall() == [(3,)]
    print(f"wheel {wheel.name}: {len(names)} files; init to clustered in {time.monotonic() - started:.0f} s")
    print(init.stdout, build.stdout.splitlines()[-1], cluster.stdout, sep="\n")
