"""The command line: help for everything, and expected errors without tracebacks."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import time

import click
import duckdb
import pytest
from click.testing import CliRunner

from segkit.cli import cli
from tests.conftest import ROOT, SEGKIT, segkit, segkit_environment

COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_ending_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Example:" in cli.commands[name].help.strip().splitlines()[-1]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_with_an_example(name):
    for parameter in cli.commands[name].params:
        if isinstance(parameter, click.Option) and parameter.name != "help":
            assert parameter.help and "Example" in parameter.help, f"{name} {parameter.opts}"


def test_demo_data_command_writes_the_file_and_its_truth(tmp_path):
    out = tmp_path / "retail.csv.gz"
    result = CliRunner().invoke(cli, ["demo-data", "--customers", "50", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "retail_truth.csv").exists()
    assert "50 customers" in result.output


def test_cluster_without_a_database_says_run_dbt_build_first(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_DB", str(tmp_path / "nothing.duckdb"))
    result = CliRunner().invoke(cli, ["cluster", "--no-report"])
    assert result.exit_code == 1
    assert "dbt build" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_json_verbose_and_quiet(name):
    flags = {opt for parameter in cli.commands[name].params for opt in getattr(parameter, "opts", [])}
    assert {"--json", "--verbose", "--quiet"} <= flags


def drifted_copy(clustered_db, tmp_path):
    """The clustered demo database after a 'build' in which every customer lapsed a year and spent ten times more."""
    path = tmp_path / "drifted.duckdb"
    shutil.copy(clustered_db, path)
    with duckdb.connect(str(path)) as con:
        con.execute("update customer_rfm set recency_days = recency_days + 365, monetary_total = monetary_total * 10")
    return path


@pytest.mark.slow
def test_drift_exits_4_with_fail_on_drift_when_a_refit_is_advised(clustered_db, tmp_path):
    steady = segkit("drift", "--fail-on-drift", db_path=clustered_db)
    assert steady.returncode == 0, steady.stderr
    assert "No significant drift" in steady.stdout
    drifted = drifted_copy(clustered_db, tmp_path)
    advisory = segkit("drift", db_path=drifted)
    assert advisory.returncode == 0 and "A refit is advisable" in advisory.stdout
    failing = segkit("drift", "--fail-on-drift", "--json", db_path=drifted)
    assert failing.returncode == 4, failing.stderr
    assert json.loads(failing.stdout)["refit_advised"] is True
    assert "Traceback" not in failing.stderr


@pytest.mark.slow
def test_quiet_logs_nothing_and_json_prints_only_json(clustered_db, tmp_path):
    path = tmp_path / "copy.duckdb"
    shutil.copy(clustered_db, path)
    quiet = segkit("cluster", "--k", "4", "--no-report", "--quiet", db_path=path)
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert "customers in 4 segments" in quiet.stdout
    result = segkit("report", "--report-path", str(tmp_path), "--json", db_path=path)
    assert result.returncode == 0 and result.stderr == ""
    assert json.loads(result.stdout)["report_path"].startswith(str(tmp_path))


@pytest.mark.slow
def test_verbose_logs_every_line_of_dbt_and_a_pipe_gets_no_status_line(tmp_path):
    result = segkit("build", "--verbose", "--vars", "{transactions_path: no/such/file.csv}",
                    db_path=tmp_path / "new.duckdb")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "debug: dbt: " in result.stderr and "Running with dbt=" in result.stderr
    assert "no input file matches transactions_path 'no/such/file.csv'" in result.stderr
    assert "\r" not in result.stderr and "\x1b[" not in result.stderr  # stdout is a pipe: no status line


def in_a_terminal(*args: str, db_path, wait_for: bytes) -> tuple[int, str, float | None]:
    """The real `segkit` in a pseudo-terminal: exit code, the screen's bytes as text, and the seconds until
    `wait_for` appeared."""
    main, secondary = pty.openpty()
    started = time.monotonic()
    process = subprocess.Popen([SEGKIT, *args], stdin=secondary, stdout=secondary, stderr=secondary, cwd=ROOT,
                               env=segkit_environment(db_path))
    os.close(secondary)
    screen, seen_at = b"", None
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the terminal closes when the command ends
            break
        if not chunk:
            break
        screen += chunk
        if seen_at is None and wait_for in screen:
            seen_at = time.monotonic() - started
    process.wait(timeout=300)
    os.close(main)
    return process.returncode, screen.decode(), seen_at


@pytest.mark.slow
def test_a_terminal_gets_a_status_line_as_soon_as_the_build_starts(tmp_path):
    code, text, first_line_at = in_a_terminal("build", "--vars", "{transactions_path: no/such/file.csv}",
                                              db_path=tmp_path / "new.duckdb", wait_for=b"... dbt build [")
    assert code == 1
    assert first_line_at is not None, text
    # Before dbt has written a line, the status line says dbt is starting and counts the seconds.
    assert text.index("starting dbt") < text.index("Running with dbt=")
    assert "no input file matches transactions_path" in text
    print(f"status line after {first_line_at:.2f} s")


@pytest.mark.slow
def test_a_terminal_sees_each_clustering_step_with_its_seconds(clustered_db, tmp_path):
    path = tmp_path / "copy.duckdb"
    shutil.copy(clustered_db, path)
    code, text, _ = in_a_terminal("cluster", "--k", "3", "--no-report", db_path=path, wait_for=b"")
    assert code == 0, text
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1].replace("\x1b[2K", "").rstrip() for line in text.split("\n")]
    steps = [line for line in lines if line.startswith("... ")]
    assert [step.split(" [")[0] for step in steps] == [
        "... reading features", "... transforming features", "... fitting k=3", "... assigning 4,000 customers "
        "in duckdb", "... profiling and naming segments", "... writing results"]
    assert all(re.fullmatch(r".* \[\d+s\]", step) for step in steps), steps


@pytest.mark.slow
def test_snapshots_and_demo_data_print_json(fresh_demo_db, tmp_path):
    result = segkit("snapshots", "--start", "2011-11-01", "--end", "2011-12-01", "--k", "3", "--json",
                    db_path=fresh_demo_db)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    months = json.loads(result.stdout)
    assert [month["analysis_date"] for month in months] == ["2011-11-01", "2011-12-01"]
    assert months[1]["migration"]["from_run_id"] == months[0]["run_id"]
    assert sum(segment["customers"] for segment in months[1]["segments"]) == months[1]["n_customers"]
    generated = CliRunner().invoke(cli, ["demo-data", "--customers", "20", "--out", str(tmp_path / "d.csv"), "--json"])
    assert generated.exit_code == 0 and json.loads(generated.stdout)["customers"] == 20


@pytest.mark.slow
def test_demo_builds_clusters_and_reports_in_one_command_without_the_dbt_unit_tests(tmp_path):
    db = tmp_path / "demo.duckdb"
    result = segkit("demo", "--verbose", "--report-path", str(tmp_path / "demo.html"), db_path=db)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    # The data tests check the demo's data; the unit tests check the models on fixed rows (`make test` runs them).
    assert " START test " in result.stderr and "unit_test" not in result.stderr.split("Found ", 1)[1].split("\n", 1)[1]
    assert f"Report: {tmp_path / 'demo.html'}" in result.stdout and (tmp_path / "demo.html").exists()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*), any_value(chosen_k) from cluster_runs").fetchone() == (1, 7)
