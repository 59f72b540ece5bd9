"""The `segkit` command: parse options, call one library function, print the result."""

from __future__ import annotations

import dataclasses
import json
from functools import wraps
from pathlib import Path

import click

from segkit.errors import SegkitError


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
@_friendly_errors
def demo_data(out: Path, customers: int, seed: int):
    """Generate Online-Retail-II-shaped demo transactions with planted customer behaviours and realistic defects.

    Also writes the planted behaviour of every customer to <name>_truth.csv beside the file.

    Example: segkit demo-data --customers 20000 --seed 1 --out /tmp/retail.csv.gz
    """
    from segkit.demo_data import generate_demo_data

    summary = generate_demo_data(out, customers=customers, seed=seed)
    click.echo(f"Wrote {summary.lines:,} lines for {summary.customers:,} customers to {summary.path}")
    click.echo(f"Planted behaviours: {summary.truth_path}")
    for kind, count in summary.defect_counts.items():
        click.echo(f"  {kind}: {count:,} lines")


_target_option = click.option(
    "--target", default=None,
    help="dbt target of profiles.yml to run on (default: SEGKIT_TARGET, else DBT_TARGET, else the profile's "
         "default, DuckDB). Example: --target spark")
_profiles_dir_option = click.option(
    "--profiles-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Folder of the dbt profiles.yml (default: DBT_PROFILES_DIR, else the project folder, else ~/.dbt). "
         "Example: --profiles-dir ~/.dbt")


def _warehouse_options(command):
    """--target and --profiles-dir: which dbt target segkit (and the dbt it runs) works on."""
    return _target_option(_profiles_dir_option(command))


@cli.command()
@click.option("--vars", "dbt_vars", default=None,
              help="dbt vars as YAML/JSON, passed to dbt build. Example: --vars '{analysis_date: 2011-06-01}'")
@_warehouse_options
@_friendly_errors
def build(dbt_vars: str | None, target: str | None, profiles_dir: Path | None):
    """Run `dbt build` on the project against the configured DuckDB file.

    The same as running `dbt build` from the repository root; useful from scripts.

    Example: segkit build --vars '{transactions_path: data/orders.parquet}'
    """
    import yaml

    from segkit.config import load_settings
    from segkit.dbt_runner import run_dbt

    settings = load_settings(target=target, profiles_dir=profiles_dir)
    result = run_dbt(settings, dbt_vars=yaml.safe_load(dbt_vars) if dbt_vars else None)
    click.echo(result.summary)



def _cluster_options(command):
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
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON. Example: --json"),
        _target_option,
        _profiles_dir_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _run_cluster(as_json: bool, settings) -> None:
    from segkit.clustering import run_clustering
    from segkit.engine import session

    progress = None if as_json else (lambda message: click.echo(f"... {message}", err=True))
    with session(settings):
        run = run_clustering(settings, progress=progress)
        report_path = None
        if settings.write_report:
            from segkit.report import write_report
            report_path = write_report(settings, run.run_id)
    if as_json:
        summary = run.to_json_dict()
        summary["report_path"] = str(report_path) if report_path else None
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    click.echo(_summary_text(run, settings, report_path))


def _summary_text(run, settings, report_path) -> str:
    from segkit.engine import engine_name

    lines = [
        f"Run {run.run_id}: {run.n_customers:,} customers in {run.chosen_k} segments ({run.algorithm}).",
        f"Why k={run.chosen_k}: {run.k_reason}",
        "",
        f"{'id':>3}  {'segment':<28} {'customers':>10} {'share':>7} {'revenue':>8}",
    ]
    for segment in run.segments:
        lines.append(f"{segment.segment_id:>3}  {segment.name:<28} {segment.customers:>10,} "
                     f"{segment.customer_share:>7.1%} {segment.revenue_share:>8.1%}")
    lines.append("")
    lines.append(f"{'k':>3} {'silhouette':>11} {'davies-bouldin':>15} {'calinski-harabasz':>18} {'stability':>10}")
    for row in run.k_selection:
        mark = "*" if row.k == run.chosen_k else " "
        lines.append(f"{row.k:>2}{mark} {row.silhouette:>11.3f} {row.davies_bouldin:>15.3f} "
                     f"{row.calinski_harabasz:>18,.0f} {row.stability_ari:>10.3f}")
    for warning in run.warnings:
        lines.append(f"Warning: {warning}")
    lines.append("")
    where = (settings.db_path if engine_name(settings) == "duckdb"
             else f"the Spark target {settings.profile.target!r}")
    lines.append(f"Tables: customer_segments, segment_profiles, segment_centroids, k_selection, cluster_runs "
                 f"in {where}")
    if report_path:
        lines.append(f"Report: {report_path}")
    return "\n".join(lines)


@cli.command()
@_cluster_options
@_friendly_errors
def cluster(as_json, features, **options):
    """Cluster the customers of customer_rfm and write the segments back to DuckDB.

    Reads the feature mart that `dbt build` made, chooses k from the evidence (elbow, silhouette,
    Davies-Bouldin, Calinski-Harabasz, stability), fits, assigns every customer in SQL, writes the
    tables in one transaction and renders the report.

    Exit codes: 0 done; 1 a problem with the data or settings (the message says what to do);
    2 invalid options; 3 the database is locked by another process.

    Example: segkit cluster --k-max 8 --json
    """
    from segkit.config import load_settings

    _run_cluster(as_json, load_settings(features=features, **options))


@cli.command()
@click.option("--run-id", default=None, help="Run to report on (default: the latest). Example: --run-id 20261123T081500Z-3f2a9c1b")
@click.option("--report-path", type=click.Path(path_type=Path), default=None,
              help="Where to write the HTML (default reports/segments_<run id>.html; a folder or an .html file). Example: --report-path /tmp/r.html")
@click.option("--min-segment-size", type=click.IntRange(min=1), default=None,
              help="Suppress the figures of segments smaller than this (default 10). Example: --min-segment-size 50")
@_warehouse_options
@_friendly_errors
def report(run_id, report_path, min_segment_size, target, profiles_dir):
    """Re-render the HTML segment report from the stored tables, without refitting.

    Example: segkit report --report-path /tmp/segments.html
    """
    from segkit.config import load_settings
    from segkit.report import write_report

    settings = load_settings(report_path=report_path, min_segment_size=min_segment_size, target=target,
                             profiles_dir=profiles_dir)
    click.echo(f"Report: {write_report(settings, run_id)}")


@cli.command()
@_cluster_options
@_friendly_errors
def demo(as_json, features, **options):
    """Run the whole job on the embedded demo data: dbt build, then cluster and report.

    Example: segkit demo --k 6
    """
    from segkit.config import load_settings
    from segkit.dbt_runner import run_dbt
    from segkit.demo_data import DEMO_CURRENCY

    settings = load_settings(features=features, **options)
    if not settings.currency:  # the demo is a UK shop (Online Retail II): money in pounds unless set otherwise
        settings = dataclasses.replace(settings, currency=DEMO_CURRENCY)
    click.echo("... dbt build on the embedded demo data", err=True)
    click.echo(run_dbt(settings).summary, err=True)
    _run_cluster(as_json, settings)


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
@_warehouse_options
@_friendly_errors
def snapshots(start, end, dbt_vars, k, k_min, k_max, features, seed, target, profiles_dir):
    """Build and segment one snapshot per month start, and print the moves between consecutive ones.

    For each month start from --start to --end: `dbt build` with that analysis_date (features use only
    transactions dated before it). The first month fits the segments (k from the evidence in --k-min..--k-max,
    or --k); every later month scores its customers with that model, so a move between months is a change in
    the customer. When the drift check says the segments no longer fit, the series refits (k chosen again),
    reported apart from the moves. Every run is kept in the history tables.

    Example: segkit snapshots --start 2011-01-01 --end 2011-12-01
    """
    import yaml

    from segkit.config import load_settings
    from segkit.snapshots import describe, run_snapshots

    settings = load_settings(k=k, k_min=k_min, k_max=k_max, features=features, seed=seed, target=target,
                             profiles_dir=profiles_dir)
    progress = lambda message: click.echo(f"... {message}", err=True)  # noqa: E731
    for snapshot in run_snapshots(settings, start.date(), end.date(),
                                  yaml.safe_load(dbt_vars) if dbt_vars else None, progress=progress):
        click.echo(describe(snapshot))


@cli.command()
@click.option("--value", "values", multiple=True, metavar="FEATURE=NUMBER",
              help="A feature value of one customer; repeat for every feature of the run. "
                   "Example: --value recency_days=30 --value frequency=4 --value monetary_total=850")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A CSV file with a column per feature (and optionally customer_id). Example: --csv customers.csv")
@click.option("--run-id", default=None, help="Run whose segments to use (default: the latest). Example: --run-id 20261123T081500Z-3f2a9c1b")
@click.option("--format", "output_format", type=click.Choice(["json", "csv"]), default="json", show_default=True,
              help="Output format. Example: --format csv")
@_warehouse_options
@_friendly_errors
def assign(values, csv_path, run_id, output_format, target, profiles_dir):
    """Assign customers to the stored segments without refitting; the database is opened read-only.

    Applies the run's stored transform and picks the nearest centroid, exactly like the dbt model
    customer_segments_scored. Prints segment_id, segment_name, distance_to_centroid per customer.

    Example: segkit assign --value recency_days=30 --value frequency=4 --value monetary_total=850
    """
    from segkit.assign import assign_customers, parse_values, to_json
    from segkit.config import load_settings

    settings = load_settings(target=target, profiles_dir=profiles_dir)
    scored = assign_customers(settings, parse_values(values) if values else None, csv_path, run_id)
    click.echo(to_json(scored) if output_format == "json" else scored.to_csv(index=False).rstrip("\n"))


@cli.command()
@click.option("--run-id", default=None, help="Run to compare with (default: the latest). Example: --run-id 20261123T081500Z-3f2a9c1b")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON. Example: --json")
@_warehouse_options
@_friendly_errors
def drift(run_id, as_json, target, profiles_dir):
    """Compare the current customer features with the data a run was fitted on, and say if a refit is advisable.

    Per feature the PSI over the run's decile bins (default threshold 0.25), and the mean distance to
    the centroids against the fit-time mean (default threshold 1.25x); set SEGKIT_DRIFT_PSI_THRESHOLD or
    SEGKIT_DRIFT_DISTANCE_RATIO_THRESHOLD to change them. Read-only; exit code 0 either way.

    Example: dbt build && segkit drift
    """
    from segkit.config import load_settings
    from segkit.engine import connect
    from segkit.drift import check_drift, thresholds

    settings = load_settings(target=target, profiles_dir=profiles_dir)
    with connect(settings, read_only=True) as con:
        report = check_drift(con, run_id, thresholds(settings))
    if report is None:
        raise SegkitError("No clustering run to compare with. Run `segkit cluster` first.")
    if as_json:
        click.echo(json.dumps(report.to_json_dict(), indent=2))
        return
    for feature in report.features:
        click.echo(f"{feature.feature:<28} PSI {feature.psi:6.3f}" + ("  > threshold" if feature.exceeds_threshold else ""))
    click.echo(f"{'mean distance to centroids':<28} {report.distance_ratio:6.2f}x fit time")
    click.echo(f"Warning: {report.message} Run `segkit cluster` to refit." if report.refit_advised else report.message)


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
@_friendly_errors
def init(folder, transactions_path, transactions_relation, columns, name):
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
    click.echo(f"Wrote the dbt project {starter.name} in {starter.folder}:")
    for path in starter.files:
        click.echo(f"  {path.name}")
    click.echo(f"Next: cd {folder} and follow README.md (dbt deps, dbt build, segkit cluster).")


if __name__ == "__main__":
    cli()
