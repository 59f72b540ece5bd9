"""The command line: help for everything, and expected errors without tracebacks."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from segkit.cli import cli

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
