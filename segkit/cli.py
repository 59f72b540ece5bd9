"""The `segkit` command: parse options, call one method of the Python API (segkit.api), print the result.

Diagnostics go through `logging` (logger "segkit") to stderr: the steps at INFO ('... reading features'), dbt's
every line at DEBUG (--verbose), only warnings with --quiet or --json. In a terminal, a long dbt build also shows one
status line that follows dbt node by node (segkit.terminal); when stdout is not a terminal there is none.
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import asdict
from functools import wraps
from pathlib import Path

import click

from segkit.errors import EXIT_DRIFT, SegkitError
from segkit.cli_options import cluster_options, output_options, warehouse_options
from segkit.terminal import DbtProgress, StepProgress, log, summary_text


def _friendly_errors(command):
    """Turn expected failures into a message and an exit code, never a traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SegkitError as error:
            click.echo(f"Error: {error}", err=True)
            raise SystemExit(error.exit_code) from None

    return wrapper


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group()
@click.version_option(package_name="segkit")
def cli():
    """SQL-centric customer segmentation: dbt builds features in DuckDB, segkit clusters them.

    Typical use, from the repository root:

        dbt build && segkit cluster
    """


@cli.command("demo-data")
@click.option("--out", type=click.Path(path_type=Path), default=Path("data/demo/online_retail_demo.csv.gz"),
              show_default=True, help="Transaction file to write (gzipped when it ends in .gz). Example: --out /tmp/retail.csv.gz")
@click.option("--customers", type=click.IntRange(min=10), default=4000, show_default=True,
              help="Number of customers to simulate. Example: --customers 100000")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed; the same seed gives the same file. Example: --seed 7")
@output_options
@_friendly_errors
def demo_data(out: Path, customers: int, seed: int, as_json: bool):
    """Generate Online-Retail-II-shaped demo transactions with planted customer behaviours and realistic defects.

    Also writes the planted behaviour of every customer to <name>_truth.csv beside the file.

    Example: segkit demo-data --customers 20000 --seed 1 --out /tmp/retail.csv.gz
    """
    from segkit.demo_data import generate_demo_data

    summary = generate_demo_data(out, customers=customers, seed=seed)
    if as_json:
        return _echo_json(asdict(summary))
    click.echo(f"Wrote {summary.lines:,} lines for {summary.customers:,} customers to {summary.path}")
    click.echo(f"Planted behaviours: {summary.truth_path}")
    for kind, count in summary.defect_counts.items():
        click.echo(f"  {kind}: {count:,} lines")


def _project(**settings):
    from segkit.api import Project

    return Project(**settings)


def _build(dbt_vars: dict | None, args: tuple[str, ...] = ("build",), prefetch: tuple[str, ...] = (), **settings):
    """`dbt build` on the project's settings, then the project. dbt starts before the API is imported: a thread
    imports it, and the modules of prefetch (those of the next step), while dbt runs in its own process."""
    from segkit.config import load_settings
    from segkit.dbt_runner import run_dbt

    with DbtProgress() as progress:
        resolved = load_settings(**settings)
        importer = threading.Thread(target=_import_quietly, args=("segkit.api", *prefetch), daemon=True)
        importer.start()
        try:
            result = run_dbt(resolved, args=args, dbt_vars=dbt_vars, progress=progress)
        finally:
            importer.join()
        return _project(**settings), result


def _import_quietly(*modules: str) -> None:
    try:
        for module in modules:
            importlib.import_module(module)
    except Exception:  # the step that needs the module imports it again, and reports the error
        pass


@cli.command()
@click.option("--vars", "dbt_vars", default=None,
              help="dbt vars as YAML/JSON, passed to dbt build. Example: --vars '{analysis_date: 2011-06-01}'")
@warehouse_options
@output_options
@_friendly_errors
def build(dbt_vars: str | None, target: str | None, profiles_dir: Path | None, as_json: bool):
    """Run `dbt build` on the project against the configured DuckDB file.

    The same as running `dbt build` from the repository root; useful from scripts. In a terminal, a status line
    follows dbt model by model.

    Example: segkit build --vars '{transactions_path: data/orders.parquet}'
    """
    import yaml

    project, result = _build(yaml.safe_load(dbt_vars) if dbt_vars else None, target=target, profiles_dir=profiles_dir)
    if as_json:
        return _echo_json({"summary": result.summary, "counts": result.counts, **_location(project.settings)})
    click.echo(result.summary)


def _location(settings) -> dict:
    from segkit.engine import location

    return location(settings)


def _run_cluster(project, as_json: bool, **options) -> None:
    with StepProgress() as progress:
        run = project.cluster(progress=progress, **options)
    if as_json:
        summary = run.to_json_dict()
        summary["report_path"] = str(run.report_path) if run.report_path else None
        return _echo_json(summary)
    click.echo(summary_text(run.stored, project.settings, run.report_path))


@cli.command()
@cluster_options
@output_options
@_friendly_errors
def cluster(as_json, **options):
    """Cluster the customers of customer_rfm and write the segments back to DuckDB.

    Reads the feature mart that `dbt build` made, chooses k from the evidence (elbow, silhouette,
    Davies-Bouldin, Calinski-Harabasz, stability), fits, assigns every customer in SQL, writes the
    tables in one transaction and renders the report.

    Exit codes: 0 done; 1 a problem with the data or settings (the message says what to do);
    2 invalid options; 3 the database is locked by another process.

    Example: segkit cluster --k-max 8 --json
    """
    _run_cluster(_project(**options), as_json)


@cli.command()
@click.option("--run-id", default=None, help="Run to report on (default: the latest). Example: --run-id 20261123T081500Z-3f2a9c1b")
@click.option("--report-path", type=click.Path(path_type=Path), default=None,
              help="Where to write the HTML (default reports/segments_<run id>.html; a folder or an .html file). Example: --report-path /tmp/r.html")
@click.option("--min-segment-size", type=click.IntRange(min=1), default=None,
              help="Suppress the figures of segments smaller than this (default 10). Example: --min-segment-size 50")
@warehouse_options
@output_options
@_friendly_errors
def report(run_id, report_path, min_segment_size, target, profiles_dir, as_json):
    """Re-render the HTML segment report from the stored tables, without refitting.

    Example: segkit report --report-path /tmp/segments.html
    """
    project = _project(target=target, profiles_dir=profiles_dir)
    path = project.report(run_id, report_path, min_segment_size)
    if as_json:
        return _echo_json({"report_path": str(path)})
    click.echo(f"Report: {path}")


@cli.command()
@cluster_options
@output_options
@_friendly_errors
def demo(as_json, **options):
    """Run the whole job on the embedded demo data: dbt build, then cluster and report.

    Example: segkit demo --k 6
    """
    from segkit.demo_data import DEMO_CURRENCY

    log.info("dbt build on the embedded demo data")
    # The dbt unit tests check the models on fixed rows, not the data: `make test` runs them, the demo leaves them out.
    project, result = _build(None, ("build", "--exclude", "test_type:unit"), ("segkit.clustering", "segkit.report"),
                             **options)
    log.info("%s", result.summary)
    # The demo is a UK shop (Online Retail II): money in pounds unless set otherwise.
    _run_cluster(project, as_json, **({} if project.settings.currency else {"currency": DEMO_CURRENCY}))


@cli.command()
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="First snapshot: the month of this date (its first day). Example: --start 2010-06-01")
@click.option("--end", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="Last snapshot: the month of this date (its first day). Example: --end 2011-12-01")
@click.option("--vars", "dbt_vars", default=None,
              help="Other dbt vars as YAML/JSON (analysis_date is set per snapshot). "
                   "Example: --vars '{transactions_path: data/orders.parquet}'")
@click.option("--k", type=click.IntRange(min=2), default=None,
              help="Force the number of segments in every snapshot. Example: --k 6")
@click.option("--k-min", type=click.IntRange(min=2), default=None,
              help="Smallest number of segments you can act on (default 4). Example: --k-min 3")
@click.option("--k-max", type=click.IntRange(min=2), default=None,
              help="Largest number of segments you can act on (default 8). Example: --k-max 6")
@click.option("--features", default=None,
              help="Comma-separated customer_rfm columns to cluster on. Example: --features recency_days,frequency,monetary_total")
@click.option("--seed", type=int, default=None, help="Random seed for every random step (default 42). Example: --seed 7")
@warehouse_options
@output_options
@_friendly_errors
def snapshots(start, end, dbt_vars, k, k_min, k_max, features, seed, target, profiles_dir, as_json):
    """Build and segment one snapshot per month start, and print the moves between consecutive ones.

    For each month start from --start to --end: `dbt build` with that analysis_date (features use only
    transactions dated before it). The first month fits the segments (k from the evidence in --k-min..--k-max,
    or --k); every later month scores its customers with that model, so a move between months is a change in
    the customer. When the drift check says the segments no longer fit, the series refits with its own k,
    reported apart from the moves. Every run is kept in the history tables.

    Example: segkit snapshots --start 2011-01-01 --end 2011-12-01
    """
    import yaml

    from segkit.snapshots import describe, to_json_dict

    project = _project(k=k, k_min=k_min, k_max=k_max, features=features, seed=seed, target=target,
                       profiles_dir=profiles_dir)
    taken = project.snapshots(start.date(), end.date(), yaml.safe_load(dbt_vars) if dbt_vars else None,
                              progress=log.info)
    if as_json:
        return _echo_json([to_json_dict(snapshot) for snapshot in taken])
    for snapshot in taken:
        click.echo(describe(snapshot))


@cli.command()
@click.option("--value", "values", multiple=True, metavar="FEATURE=NUMBER",
              help="A feature value of one customer; repeat for every feature of the run. "
                   "Example: --value recency_days=30 --value frequency=4 --value monetary_total=850")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A CSV file with a column per feature (and optionally customer_id). Example: --csv customers.csv")
@click.option("--run-id", default=None, help="Run whose segments to use (default: the latest). Example: --run-id 20261123T081500Z-3f2a9c1b")
@click.option("--format", "output_format", type=click.Choice(["json", "csv"]), default="json", show_default=True,
              help="Output format (--json is the same as --format json). Example: --format csv")
@warehouse_options
@output_options
@_friendly_errors
def assign(values, csv_path, run_id, output_format, target, profiles_dir, as_json):
    """Assign customers to the stored segments without refitting; the database is opened read-only.

    Applies the run's stored transform and picks the nearest centroid, exactly like the dbt model
    customer_segments_scored. Prints segment_id, segment_name, distance_to_centroid per customer.

    Example: segkit assign --value recency_days=30 --value frequency=4 --value monetary_total=850
    """
    from segkit.assign import parse_values, to_json

    if bool(values) == (csv_path is not None):
        raise SegkitError("Give either feature values (e.g. --value recency_days=30) or a CSV file (--csv), not both.")
    project = _project(target=target, profiles_dir=profiles_dir)
    scored = project.assign(csv_path if csv_path is not None else parse_values(values), run_id)
    click.echo(to_json(scored) if as_json or output_format == "json" else scored.to_csv(index=False).rstrip("\n"))


@cli.command()
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write, .csv or .parquet. Example: --out audiences/at_risk.csv")
@click.option("--segment", default=None,
              help="Only the customers of this segment (its id or name). Example: --segment 'At risk'")
@click.option("--moved-between", nargs=2, default=None, metavar="FROM_RUN TO_RUN",
              help="Only the customers whose segment changed from the first run to the second (their segment in the "
                   "second). Example: --moved-between 20261001T080000Z-3f2a9c1b 20261101T080000Z-7d1e0a42")
@click.option("--features", default=None,
              help="customer_rfm columns to add, comma-separated. Example: --features recency_days,monetary_total")
@click.option("--run-id", default=None,
              help="Run to export (default: the latest). Example: --run-id 20261123T081500Z-3f2a9c1b")
@click.option("--format", "output_format", type=click.Choice(["csv", "parquet"]), default=None,
              help="File format (default: from the file name). Example: --format parquet")
@warehouse_options
@output_options
@_friendly_errors
def export(out, segment, moved_between, features, run_id, output_format, target, profiles_dir, as_json):
    """Write customer -> segment of a run to CSV or Parquet, for a CRM, an email tool or an ads audience.

    Columns: customer_id, segment_id, segment_name, run_id, analysis_date, and the --features asked for
    (with --moved-between also previous_segment_id, previous_segment_name, previous_run_id). Customer ids
    leave as stored: pseudonyms stay pseudonyms. The file appears complete or not at all.

    Example: segkit export --segment 2 --out audiences/segment_2.csv
    """
    if moved_between and run_id:
        raise SegkitError("--moved-between names the runs: leave out --run-id.")
    project = _project(target=target, profiles_dir=profiles_dir)
    wanted = tuple(f.strip() for f in features.split(",") if f.strip()) if features else ()
    result = project.export(out, segment=segment, moved_between=tuple(moved_between) if moved_between else None,
                            features=wanted, run_id=run_id, format=output_format)
    if as_json:
        return _echo_json(result.to_json_dict())
    click.echo(f"Wrote {result.rows:,} customers of run {result.run_id} to {result.path}")


@cli.command()
@click.option("--run-id", default=None, help="Run to compare with (default: the latest). Example: --run-id 20261123T081500Z-3f2a9c1b")
@click.option("--fail-on-drift", is_flag=True,
              help=f"Exit with code {EXIT_DRIFT} when a refit is advised, for a scheduler. Example: --fail-on-drift")
@warehouse_options
@output_options
@_friendly_errors
def drift(run_id, fail_on_drift, target, profiles_dir, as_json):
    """Compare the current customer features with the data a run was fitted on, and say if a refit is advisable.

    Per feature the PSI over the run's decile bins (default threshold 0.25), and the mean distance to
    the centroids against the fit-time mean (default threshold 1.25x); set SEGKIT_DRIFT_PSI_THRESHOLD or
    SEGKIT_DRIFT_DISTANCE_RATIO_THRESHOLD to change them. Read-only. Exit code 0 either way, unless
    --fail-on-drift: then 4 when a refit is advised.

    Example: dbt build && segkit drift --fail-on-drift || segkit cluster
    """
    report = _project(target=target, profiles_dir=profiles_dir).drift(run_id)
    if as_json:
        _echo_json(report.to_json_dict())
    else:
        for feature in report.features:
            click.echo(f"{feature.feature:<28} PSI {feature.psi:6.3f}" + ("  > threshold" if feature.exceeds_threshold else ""))
        click.echo(f"{'mean distance to centroids':<28} {report.distance_ratio:6.2f}x fit time")
        click.echo(f"Warning: {report.message} Run `segkit cluster` to refit." if report.refit_advised else report.message)
    if fail_on_drift and report.refit_advised:
        raise SystemExit(EXIT_DRIFT)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--transactions-path", default=None,
              help="Your transactions file or glob, relative to FOLDER (default data/transactions.csv). "
                   "Example: --transactions-path 'exports/orders_*.csv'")
@click.option("--transactions-relation", default=None,
              help="Or a table or view to read instead of a file. Example: --transactions-relation raw.orders")
@click.option("--column", "columns", multiple=True, metavar="NAME=COLUMN",
              help="Your input's column for one of segkit's (repeatable; default: the Online Retail II headers). "
                   "Example: --column customer_id=customer_number")
@click.option("--name", default=None, help="Name of the dbt project and profile (default: from FOLDER). "
                                           "Example: --name shop_segments")
@output_options
@_friendly_errors
def init(folder, transactions_path, transactions_relation, columns, name, as_json):
    """Write a new dbt project that builds segkit's segments on your own transactions file or table.

    It writes dbt_project.yml (your input and its column mapping), packages.yml (segkit's dbt project as a
    package), a profiles.yml for DuckDB and a README of the next steps; it never overwrites a file.

    Example: segkit init shop --transactions-path data/orders.csv --column customer_id=customer_number
    """
    from segkit.starter import write_starter

    mapping = {}
    for item in columns:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SegkitError(f"--column {item!r} is not NAME=COLUMN. Example: --column customer_id=customer_number")
        mapping[key.strip()] = value.strip() or None
    starter = write_starter(folder, transactions_path, transactions_relation, mapping, name)
    if as_json:
        return _echo_json({"name": starter.name, "folder": str(starter.folder),
                           "files": [str(path) for path in starter.files], "package": str(starter.package)})
    click.echo(f"Wrote the dbt project {starter.name} in {starter.folder}:")
    for path in starter.files:
        click.echo(f"  {path.name}")
    click.echo(f"Next: cd {folder} and follow README.md (dbt deps, dbt build, segkit cluster).")


if __name__ == "__main__":
    cli()
