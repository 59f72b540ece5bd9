"""The Python API: a project (the dbt project and its DuckDB file) and its runs, as objects and DataFrames.

The `segkit` command is a thin layer over this module: every step it runs is a method here, returning a record
rather than printing. A `Project` opens nothing until a step needs it, and each step closes the database when it
returns, so a notebook never holds the file that `dbt build` or another command needs.

    import segkit
    project = segkit.Project()                    # the project of the current folder, its profile's DuckDB file
    run = project.cluster(k_max=8)                # or project.run() for the latest stored run
    run.segments                                  # DataFrames: segments, profiles, k_selection, customers...
    run.charts["shares"]                          # displays inline in Jupyter
    project.export("audience.csv", segment=1)     # the customers of one segment, for a CRM

`segment_transactions` is the one-call path from a DataFrame of transaction lines: the same dbt models, on a
temporary (or given) DuckDB file, then clustering.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from segkit import engine, store
from segkit.config import Settings, load_settings
from segkit.dbt_runner import DbtResult, run_dbt
from segkit.drift import DriftReport, check_drift, thresholds
from segkit.errors import SegkitError
from segkit.export import ExportResult, export_segments
from segkit.frame_input import frame_vars, write_frame
from segkit.migration import MigrationSummary, summarize_migration
from segkit.warehouse import require_table

log = logging.getLogger("segkit")
Progress = Callable[[str], None]

# Settings a Project is opened with; every other keyword is a setting of segkit.config.Settings.
_LOCATION = ("project_dir", "target", "profiles_dir")


class Project:
    """A dbt project and the database it builds: run the steps, read the runs.

    db_path: the DuckDB file (default: the path of the dbt profile's target, which follows SEGKIT_DB); given
    here, no profiles.yml is needed to read it. Other keywords are settings (k, features, seed, report_path...,
    see segkit.config.Settings); flags of a step override them for that step.
    """

    def __init__(self, db_path: str | Path | None = None, **settings: Any):
        self._options = {"db_path": db_path, **settings}
        self.settings: Settings = load_settings(**self._options)
        self._keep: Any = None  # a temporary folder that must live as long as the project (segment_transactions)

    def __repr__(self) -> str:
        return f"segkit.Project({str(self.settings.db_path)!r})"

    @property
    def db_path(self) -> Path:
        return Path(self.settings.db_path)

    def with_settings(self, **overrides: Any) -> Settings:
        """The project's settings with some replaced (None leaves a setting as it is)."""
        given = {name: value for name, value in overrides.items() if value is not None}
        return load_settings(**{**self._options, **given}) if given else self.settings

    def build(self, vars: Mapping[str, Any] | None = None, select: str | None = None,
              progress: Progress | None = None) -> DbtResult:
        """`dbt build` (of the nodes `select` names, else all) with these vars, on this project's database."""
        args = ("build", "--select", select) if select else ("build",)
        return run_dbt(self.settings, args=args, dbt_vars=dict(vars) if vars else None, progress=progress)

    def cluster(self, progress: Progress | None = None, **options: Any) -> "Run":
        """Cluster customer_rfm and store the run (see segkit.clustering); options override the settings, e.g.
        k=5, features="recency_days,frequency,monetary_total", write_report=False."""
        from segkit.clustering import run_clustering

        settings = self.with_settings(**options)
        with engine.session(settings):
            clustered = run_clustering(settings, progress=progress or log.info)
            report_path = None
            if settings.write_report:
                from segkit.report import write_report
                report_path = write_report(settings, clustered.run_id)
        return Run(self, settings, clustered, report_path=report_path)

    def run(self, run_id: str | None = None) -> "Run":
        """A stored run: the latest when run_id is None."""
        with engine.connect(self.settings, read_only=True) as con:
            return Run(self, self.settings, store.read_run(con, run_id))

    def runs(self) -> pd.DataFrame:
        """Every stored run, latest first: run_id, created_at, analysis_date, algorithm, chosen_k, n_customers."""
        return self.query("select run_id, created_at, analysis_date, algorithm, chosen_k, n_customers "
                          "from cluster_runs order by created_at desc, run_id desc", require=("cluster_runs",))

    def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None,
              require: Sequence[str] = ()) -> pd.DataFrame:
        """A read-only query on the database, as a DataFrame."""
        with engine.connect(self.settings, read_only=True) as con:
            for table in require:
                require_table(con, table, store.CLUSTER_HINT)
            return con.execute(sql, parameters).df() if parameters is not None else con.execute(sql).df()

    def report(self, run_id: str | None = None, path: str | Path | None = None,
               min_segment_size: int | None = None) -> Path:
        """Write the HTML report of a run (the latest by default); return its path."""
        from segkit.report import write_report

        return write_report(self.with_settings(report_path=path, min_segment_size=min_segment_size), run_id)

    def assign(self, customers: pd.DataFrame | Mapping[str, float] | str | Path,
               run_id: str | None = None) -> pd.DataFrame:
        """Score customers against a stored run without refitting: a DataFrame or a CSV file with a column per
        feature (and optionally customer_id), or one customer's feature -> value."""
        from segkit.assign import assign_customers, score

        if isinstance(customers, (str, Path)):
            return assign_customers(self.settings, csv_path=Path(customers), run_id=run_id)
        if not isinstance(customers, pd.DataFrame):
            return assign_customers(self.settings, values=dict(customers), run_id=run_id)
        with engine.connect(self.settings, read_only=True) as con:
            stored = store.read_run(con, run_id)
        return score(stored, customers)

    def drift(self, run_id: str | None = None) -> DriftReport:
        """How far customer_rfm now is from the data a run (the latest by default) was fitted on."""
        with engine.connect(self.settings, read_only=True) as con:
            report = check_drift(con, run_id, thresholds(self.settings))
        if report is None:
            raise SegkitError(f"No clustering run to compare with. {store.CLUSTER_HINT}")
        return report

    def migration(self, from_run_id: str, to_run_id: str) -> MigrationSummary:
        """Who stayed and who moved between two stored runs, and the flows that matter."""
        with engine.connect(self.settings, read_only=True) as con:
            for run_id in (from_run_id, to_run_id):
                store.read_run(con, run_id)  # a clear message for a run that does not exist
            return summarize_migration(con, from_run_id, to_run_id, minimum=self.settings.min_segment_size)

    def snapshots(self, start: date, end: date, vars: Mapping[str, Any] | None = None,
                  progress: Progress | None = None, **options: Any) -> list:
        """One build and run per month start from start to end (segkit.snapshots); returns the Snapshots."""
        from segkit.snapshots import run_snapshots

        return run_snapshots(self.with_settings(**options), start, end, dict(vars) if vars else None,
                             progress=progress or log.info)

    def export(self, path: str | Path, *, segment: int | str | None = None,
               moved_between: tuple[str, str] | None = None, features: Sequence[str] = (),
               run_id: str | None = None, format: str | None = None) -> ExportResult:
        """Write customer -> segment (see segkit.export) to CSV or Parquet; filters: one segment (id or name), or
        the customers who moved between two runs (moved_between=(from_run_id, to_run_id))."""
        return export_segments(self.settings, Path(path), segment=segment, moved_between=moved_between,
                               features=tuple(features), run_id=run_id, output_format=format)


class Run:
    """A stored run: its figures as attributes (run_id, chosen_k, k_reason, features, analysis_date,
    n_customers, warnings...) and its tables as DataFrames, read once when first used."""

    def __init__(self, project: Project, settings: Settings, stored: store.StoredRun, report_path: Path | None = None):
        self.project = project
        self.settings = settings
        self.stored = stored
        self.report_path = report_path

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("stored",):
            raise AttributeError(name)
        return getattr(self.stored, name)

    def __repr__(self) -> str:
        return (f"<segkit.Run {self.stored.run_id}: {self.stored.n_customers:,} customers in "
                f"{self.stored.chosen_k} segments>")

    def _table(self, sql: str) -> pd.DataFrame:
        return self.project.query(sql, [self.stored.run_id])

    @cached_property
    def segments(self) -> pd.DataFrame:
        """One row per segment: size, revenue and their shares, median and mean recency, frequency and spend."""
        return self._table("select * exclude (run_id) from segment_profiles where run_id = ? order by segment_id")

    @cached_property
    def profiles(self) -> pd.DataFrame:
        """Per segment and feature: mean, median, the population's, the index against it and the z-score."""
        return self._table("select p.* exclude (run_id) from segment_feature_profiles as p where run_id = ? "
                           "order by segment_id, feature")

    @cached_property
    def k_selection(self) -> pd.DataFrame:
        """The evidence for k: inertia, silhouette, Davies-Bouldin, Calinski-Harabasz and stability per k."""
        return self._table("select * exclude (run_id) from k_selection where run_id = ? order by k")

    @cached_property
    def centroids(self) -> pd.DataFrame:
        """Each segment's centre per feature, in original units (value) and scaled (value_scaled)."""
        return self._table("select * exclude (run_id) from segment_centroids where run_id = ? "
                           "order by segment_id, feature_order")

    @cached_property
    def customers(self) -> pd.DataFrame:
        """Every customer of the run: customer_id, segment_id, segment_name, distance_to_centroid."""
        return self._table("select customer_id, segment_id, segment_name, distance_to_centroid "
                           "from segment_assignment_history where run_id = ? order by customer_id")

    @cached_property
    def migration(self) -> pd.DataFrame:
        """Customers and revenue from each segment of the previous run to each of this one (empty for a first run)."""
        if self.stored.previous_run_id is None:
            return pd.DataFrame(columns=["from_run_id", "to_run_id", "from_segment_id", "from_segment_name",
                                         "to_segment_id", "to_segment_name", "customers", "revenue"])
        with engine.connect(self.settings, read_only=True) as con:
            return store.migration(con, self.stored.previous_run_id, self.stored.run_id)

    def _report_model(self):
        from segkit.report.build import build_report_model

        with engine.connect(self.settings, read_only=True) as con:
            return build_report_model(con, self.stored.run_id, self.settings)

    def report_html(self) -> str:
        """The run's HTML report as a string (the page `segkit report` writes)."""
        from segkit.report.render import render_report

        return render_report(self._report_model())

    def write_report(self, path: str | Path | None = None) -> Path:
        """Write the run's HTML report (default reports/segments_<run id>.html); return its path."""
        return self.project.report(self.stored.run_id, path)

    @cached_property
    def charts(self) -> dict:
        """The report's charts by name (elbow, silhouette, davies_bouldin, stability, shares, scatter), each
        displayed inline in Jupyter; small segments hidden as in the report."""
        from segkit.report.render import report_charts

        return report_charts(self._report_model())

    def export(self, path: str | Path, **options: Any) -> ExportResult:
        """Project.export for this run."""
        return self.project.export(path, run_id=self.stored.run_id, **options)

    def _repr_html_(self) -> str:
        from markupsafe import escape

        rows = "".join(f"<tr><td>{s.segment_id}</td><td>{escape(s.name)}</td><td>{s.customers:,}</td>"
                       f"<td>{s.customer_share:.1%}</td><td>{s.revenue_share:.1%}</td></tr>"
                       for s in self.stored.segments)
        return (f"<p><b>Run {escape(self.stored.run_id)}</b>: {self.stored.n_customers:,} customers in "
                f"{self.stored.chosen_k} segments ({escape(self.stored.algorithm)}). {escape(self.stored.k_reason)}</p>"
                "<table><thead><tr><th>id</th><th>segment</th><th>customers</th><th>share</th><th>revenue</th>"
                f"</tr></thead><tbody>{rows}</tbody></table>")


def segment_transactions(transactions: pd.DataFrame, columns: Mapping[str, str | None] | None = None, *,
                         db_path: str | Path | None = None, vars: Mapping[str, Any] | None = None,
                         progress: Progress | None = None, **options: Any) -> Run:
    """Segment a DataFrame of transaction lines in one call: the project's dbt models build the features from it
    in a DuckDB file, then segkit clusters them; returns the Run.

    columns: the var `columns` (segkit's name -> your column; left-out names are absent), e.g.
        {"customer_id": "cust", "order_date": "day", "line_amount": "amount"}; default: Online Retail II's.
    db_path: the DuckDB file to build (default: a temporary one, removed with the returned run's project).
    vars: other dbt vars (order_date_format, cancellation_prefix, analysis_date...).
    options: settings for clustering (k, k_max, features, seed...); no report is written unless write_report=True.
    """
    keep = None
    if db_path is None:
        keep = tempfile.TemporaryDirectory(prefix="segkit-")
        db_path = Path(keep.name) / "segkit.duckdb"
    project = Project(db_path, **{name: options.pop(name) for name in _LOCATION if name in options})
    project._keep = keep
    input_path = write_frame(transactions, Path(project.db_path))
    dbt_vars = frame_vars(input_path, columns, vars)
    try:
        if columns is not None:  # the reader's own check, without dbt's start-up
            from segkit.reader import ReaderSettings, plan_input
            plan_input(ReaderSettings(str(input_path), {k: v for k, v in dbt_vars["columns"].items() if v}), True)
        project.build(vars=dbt_vars, progress=progress)
    except SegkitError as error:
        raise SegkitError(_name_the_frame(str(error), input_path), error.exit_code) from None
    options.setdefault("write_report", False)
    return project.cluster(progress=progress, **options)


def _name_the_frame(message: str, input_path: Path) -> str:
    """A message about the input file, as it would read about the DataFrame it was written from."""
    for quoted in (f"the input '{input_path}'", f"'{input_path}'", str(input_path)):
        message = message.replace(quoted, "the DataFrame")
    return message

