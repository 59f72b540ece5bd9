"""segkit: SQL-centric, in-database customer segmentation.

Its modules, lowest first; each imports only modules listed before it (tests/test_package_structure.py):

    errors, formatting, features, charts, demo_shop      messages, numbers in words, the transform in numpy, SVG
    file_kinds                                          what kind of file an input is
    profile, config                                     settings: flags, SEGKIT_*, segkit.toml, the dbt profile
    warehouse, excel, reader                            the DuckDB file; reading the input files (a dbt plugin)
    engine, dbt_runner, pseudonyms                      the DuckDB file or Spark session, and dbt beside them
    sql                                                 SQL over a stored run, shared with dbt (scoring)
    store, feature_mart                                 segkit's own tables; customer_rfm, the mart it reads
    feature_pipeline, model_selection, naming, profiling    fitting, choosing k, naming and profiling segments
    lineage, drift, migration                           segments over time: stable ids, drift, migration
    clustering, assign, snapshots, demo_data, starter   what the commands do
    report.view, report.privacy, report.prose, report.build, report.render, report    the HTML report
    cli                                                 the `segkit` command
"""

__version__ = "0.1.0"
