"""The options the `segkit` commands share: output and logging, the dbt target, and clustering."""

from __future__ import annotations

from functools import wraps
from pathlib import Path

import click

from segkit.terminal import logging_to_stderr


def output_options(command):
    """--json, --verbose and --quiet, on every command; logging is set up from the last two."""

    @wraps(command)
    def wrapper(*args, verbose: bool, quiet: bool, **kwargs):
        with logging_to_stderr(verbose=verbose, quiet=quiet or kwargs.get("as_json", False) and not verbose):
            return command(*args, **kwargs)

    options = [
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout. Example: --json"),
        click.option("--verbose", "-v", is_flag=True, help="Also log debug detail, e.g. every line dbt writes, to "
                     "stderr. Example: --verbose"),
        click.option("--quiet", "-q", is_flag=True,
                     help="Log only warnings and errors to stderr, no progress. Example: --quiet"),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


target_option = click.option(
    "--target", default=None,
    help="dbt target of profiles.yml to run on (default: SEGKIT_TARGET, else DBT_TARGET, else the profile's "
         "default, DuckDB). Example: --target spark")
profiles_dir_option = click.option(
    "--profiles-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of the dbt profiles.yml (default: DBT_PROFILES_DIR, else the project folder, else ~/.dbt). "
         "Example: --profiles-dir ~/.dbt")


def warehouse_options(command):
    """--target and --profiles-dir: which dbt target segkit (and the dbt it runs) works on."""
    return target_option(profiles_dir_option(command))


def cluster_options(command):
    options = [
        click.option("--k", type=click.IntRange(min=2), default=None,
                     help="Force the number of segments instead of choosing it from the metrics. Example: --k 5"),
        click.option("--k-min", type=click.IntRange(min=2), default=None,
                     help="Smallest number of segments you can act on (default 4). Example: --k-min 3"),
        click.option("--k-max", type=click.IntRange(min=2), default=None,
                     help="Largest number of segments you can act on (default 8). Example: --k-max 6"),
        click.option("--algorithm", type=click.Choice(["kmeans", "gmm", "agglomerative"]), default=None,
                     help="Clustering algorithm (default kmeans). Example: --algorithm gmm"),
        click.option("--features", default=None,
                     help="Comma-separated customer_rfm columns to cluster on. "
                          "Example: --features recency_days,frequency,monetary_total"),
        click.option("--seed", type=int, default=None, help="Random seed for every random step (default 42). Example: --seed 7"),
        click.option("--fit-sample-size", type=click.IntRange(min=100), default=None,
                     help="Fit on a seeded sample of at most this many customers, then assign all "
                          "(default 50000). Example: --fit-sample-size 200000"),
        click.option("--report/--no-report", "write_report", default=None,
                     help="Write the HTML report after clustering (default: write it). Example: --no-report"),
        click.option("--report-path", type=click.Path(path_type=Path), default=None,
                     help="Where to write the HTML report (default reports/segments_<run id>.html; a folder or an .html file). "
                          "Example: --report-path /tmp/segments.html"),
        target_option,
        profiles_dir_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command
