"""segkit: SQL-centric, in-database customer segmentation.

Its modules, lowest first; each imports only modules listed before it (tests/test_package_structure.py):

    errors, formatting, features, charts, demo_shop      messages, numbers in words, the transform in numpy, SVG
    file_kinds                                          what kind of file an input is
    profile, config                                     settings: flags, SEGKIT_*, segkit.toml, the dbt profile
    warehouse, excel, reader, frame_input               the DuckDB file; reading the input (files, a dbt plugin; a DataFrame)
    spark_connect, engine, dbt_runner, pseudonyms       Spark Connect; the DuckDB file or Spark session; dbt beside them
    sql                                                 SQL over a stored run, shared with dbt (scoring)
    run_writes                                          where a run's rows go: all or nothing, also on Spark
    store, feature_mart                                 segkit's own tables; customer_rfm, the mart it reads
    feature_pipeline, model_selection, naming, profiling    fitting, choosing k, naming and profiling segments
    lineage, drift, migration                           segments over time: stable ids, drift, migration
    clustering, assign, snapshots, demo_data, starter, export    what the commands do
    report.view, report.privacy, report.prose, report.build, report.render, report    the HTML report
    api                                                 the Python API: a project, its steps and its runs
    terminal                                            what the command shows: logging, dbt's progress, summaries
    cli_options                                         the options the commands share
    cli                                                 the `segkit` command, a thin layer over api

The public API (segkit.api), imported when first used, so that `import segkit` stays cheap (README, Python):
- Project: a dbt project and its DuckDB file; build, cluster, run, runs, report, assign, drift, migration,
  snapshots, export, query.
- Run: a stored run; segments, profiles, k_selection, centroids, customers, migration (DataFrames), charts,
  report_html(), write_report(), export().
- segment_transactions: a DataFrame of transaction lines through the dbt models and clustering, to a Run.
- load_settings, Settings, SegkitError.
"""

__version__ = "0.1.0"

_PUBLIC = {"Project": "segkit.api", "Run": "segkit.api", "segment_transactions": "segkit.api",
           "load_settings": "segkit.config", "Settings": "segkit.config", "SegkitError": "segkit.errors"}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'segkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
