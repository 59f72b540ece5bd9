"""The report's view model for one stored run: every query and calculation the page needs, and nothing else.

Figures are aggregates, so the page stays small for any number of customers, and no customer id leaves a query.
Hidden figures follow segkit.report.privacy; the words come from segkit.report.prose.
"""

from __future__ import annotations

import math
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import PurePath
from typing import Any, Mapping

import pandas as pd

from segkit import charts, store
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.formatting import MISSING
from segkit.migration import summarize_migration, summarize_refit
from segkit.naming import describe_segment, name_rule, name_segments, recommend
from segkit.report import prose
from segkit.report.privacy import hidden_segments, round_significant, suppress_counts
from segkit.report.view import HeatCell, KRow, MigrationView, QualityRow, ReportModel, SegmentCard, Table
from segkit.warehouse import require_table, table_exists

SCATTER_SAMPLE_SIZE = 2_500
DBT_HINT = "Run `dbt build` first."
RFM_SEGMENT_ORDER = ("Champions", "Loyal Customers", "Potential Loyalist", "New Customers", "Promising",
                     "Need Attention", "About To Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost")
# The run's customers; segment_assignment_history keeps every run's (customer_segments holds the latest only).
MEMBERS = "(select customer_id, segment_id from segment_assignment_history where run_id = $run)"


def build_report_model(con, run_id: str | None, settings: Settings) -> ReportModel:
    """Read the stored tables for one run (the latest when run_id is None) and compute everything shown."""
    run = _read_complete_run(con, run_id)
    minimum = max(int(settings.min_segment_size), 1)
    currency = settings.currency
    population = _population(con, run.run_id)
    names = _display_names(run, population, settings.segment_names)
    small = hidden_segments(run.profiles["customers"], minimum)
    cards = _cards(con, run, names, population, small, currency)
    return ReportModel(
        title="Customer segments",
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        run=run,
        min_segment_size=minimum,
        currency=currency,
        headline=prose.headline(cards),
        summary=prose.summary(cards, run, population, currency),
        segments=cards,
        k_rows=_k_rows(run),
        **_feature_profiles(con, run, small, currency),
        scatter=_scatter(con, run.run_id, small, settings.seed),
        scatter_sample_size=SCATTER_SAMPLE_SIZE,
        rfm_grid=_rfm_grid(con, minimum),
        crosstab=_crosstab(con, run.run_id, names, small, minimum),
        quality=_quality(con),
        warnings=run.warnings,
        migration=_migration(con, run, minimum, currency),
        refit=summarize_refit(con, run),
        versions=_versions(),
        settings=_settings_without_folders(run.settings),
    )


def _read_complete_run(con, run_id: str | None) -> store.StoredRun:
    """The run, once its tables and the dbt tables are there, its members stored, and customer_rfm of its date."""
    for table in ("cluster_runs", "segment_profiles", "segment_feature_profiles", "k_selection",
                  "segment_assignment_history"):
        require_table(con, table, store.CLUSTER_HINT)
    for table in ("customer_rfm", "customer_rfm_scores", "data_quality_summary"):
        require_table(con, table, DBT_HINT)
    run = store.read_run(con, run_id)
    if run.profiles.empty:
        raise SegkitError(f"Run {run.run_id} has no rows in segment_profiles; the run is incomplete. "
                          "Run `segkit cluster` again.")
    in_segments = con.execute("select count(*) from segment_assignment_history where run_id = ?",
                              [run.run_id]).fetchone()[0]
    if not in_segments:
        raise SegkitError(f"segment_assignment_history holds no customers for run {run.run_id}; the run is "
                          "incomplete. Run `segkit cluster` again.")
    analysis_dates = [row[0] for row in con.execute("select distinct analysis_date from customer_rfm").fetchall()]
    fitted_as_of = str(run.analysis_date or "")
    if analysis_dates and str(analysis_dates[0]) != fitted_as_of:
        # Population figures, gaps, the map and the grids read customer_rfm: mixing dates would mislead.
        raise SegkitError(
            f"customer_rfm now holds features as of {analysis_dates[0]}, but run {run.run_id} was fitted as of "
            f"{fitted_as_of}. Rebuild the features for that date first: "
            f"dbt build --vars '{{analysis_date: {fitted_as_of}}}', then run segkit report again.")
    return run


def _population(con, run_id: str) -> pd.Series:
    row = con.execute(
        f"""select median(recency_days) as median_recency_days, median(frequency) as median_frequency,
                   median(monetary_total)::double as median_monetary_total, avg(recency_days) as mean_recency_days,
                   avg(frequency) as mean_frequency, avg(monetary_total)::double as mean_monetary_total,
                   median(avg_days_between_orders) as median_days_between_orders
            from customer_rfm where customer_id in (select customer_id from {MEMBERS})""",
        {"run": run_id}).df()
    return row.iloc[0].astype(float)


def _display_names(run: store.StoredRun, population: pd.Series, segment_names: Mapping[int, str]) -> dict[int, str]:
    """The stored names, with the user's names (settings.segment_names) winning, also over names stored by an
    earlier run; a stored name that collides with one of the user's is replaced by the naming rules."""
    names = {int(i): str(n) for i, n in run.profiles["segment_name"].items()}
    overrides = {i: n for i, n in (segment_names or {}).items() if i in names}
    if not overrides:
        return names
    clash = {i for i, n in names.items() if i not in overrides and n in overrides.values()}
    renamed = name_segments(run.profiles, population, overrides) if clash else {}
    return {i: overrides.get(i) or renamed.get(i) or n for i, n in names.items()}


def _cards(con, run: store.StoredRun, names: dict[int, str], population: pd.Series, small: set[int],
           currency: str) -> tuple[SegmentCard, ...]:
    """One card per segment: its figures against the typical customer and what to do, or none when hidden."""
    gaps = dict(con.execute(
        f"""select s.segment_id, median(r.avg_days_between_orders)
            from {MEMBERS} as s join customer_rfm as r using (customer_id) group by all""",
        {"run": run.run_id}).fetchall())
    cards = []
    # Colours by position in the run, so no two segments of a page share one (ids can pass 10 after refits).
    position = {segment_id: index + 1 for index, segment_id in enumerate(sorted(run.segment_ids))}
    for segment_id, row in run.profiles.iterrows():
        segment_id = int(segment_id)
        name = names[segment_id]
        colour, description = charts.segment_colour(position[segment_id]), describe_segment(name, row, population)
        if segment_id in small:
            cards.append(SegmentCard(segment_id, name, colour, True, description))
            continue
        advice = recommend(name, row, population, gaps.get(segment_id), currency)
        cards.append(SegmentCard(segment_id, name, colour, False, description, name_rule(name, row, population),
                                 int(row["customers"]),
                                 float(row["customer_share"]), float(row["revenue"]), float(row["revenue_share"]),
                                 prose.comparisons(row, population, currency), advice.goal, advice.actions))
    return tuple(cards)


def _k_rows(run: store.StoredRun) -> tuple[KRow, ...]:
    def optional(value: float) -> float | None:
        return None if pd.isna(value) else float(value)

    return tuple(KRow(s.k, s.inertia, optional(s.silhouette), optional(s.davies_bouldin),
                      optional(s.calinski_harabasz), optional(s.stability_ari), s.is_knee, s.is_chosen)
                 for s in run.k_selection)


def _feature_profiles(con, run: store.StoredRun, small: set[int], currency: str) -> dict[str, Any]:
    """The heat map of segment medians per feature, coloured better or worse for the business; None rows when hidden."""
    frame = con.execute(
        """select segment_id, feature, median, population_median
           from segment_feature_profiles where run_id = ? order by segment_id, feature""", [run.run_id]).df()
    features = list(run.transform["feature"]) or list(dict.fromkeys(frame["feature"]))
    cells = []
    for segment_id in sorted(frame["segment_id"].unique()):
        if int(segment_id) in small:
            cells.append(None)
            continue
        rows = frame[frame["segment_id"] == segment_id].set_index("feature")
        cells.append(tuple(_feature_cell(rows.loc[feature], feature, currency) if feature in rows.index
                           else HeatCell(MISSING, "#ffffff", "not profiled") for feature in features))
    return {"feature_labels": tuple(prose.FEATURE_LABELS.get(f, (f, ""))[0] for f in features),
            "feature_cells": tuple(cells)}


def _feature_cell(r: pd.Series, feature: str, currency: str) -> HeatCell:
    """The segment's median, coloured by how much better (blue) or worse (orange) for the business it is than all
    customers' median: full colour at 4 times (or a quarter of) it."""
    label, unit = prose.FEATURE_LABELS.get(feature, (feature, ""))
    direction = prose.FEATURE_DIRECTIONS.get(feature, 0)
    median, overall = float(r["median"]), float(r["population_median"])
    ratio = median / overall if overall > 0 and median > 0 else None
    score = direction * math.log2(ratio) if ratio is not None else 0.0
    if not direction:
        verdict = "neither better nor worse"
    elif ratio is None or abs(score) < math.log2(1.05):
        verdict = "about the same"
    else:
        verdict = "better" if score > 0 else "worse"
    note = f"{ratio:.2f}× all · {verdict}" if ratio is not None else verdict
    title = (f"{label}: segment median {prose.measure(median, unit, currency)}, all customers "
             f"{prose.measure(overall, unit, currency)}; {verdict} for the business")
    return HeatCell(prose.measure(median, unit, currency), charts.diverging_colour(-score), note, title)


def _scatter(con, run_id: str, small: set[int], seed: int) -> tuple[tuple[int, tuple[tuple[float, float], ...]], ...]:
    # A deterministic sample by hashing ids with the seed; only the two feature values leave the query,
    # rounded to 3 significant digits (enough for a chart, less exact than the data).
    frame = con.execute(
        f"""select s.segment_id, r.recency_days::double as x, r.monetary_total::double as y
            from {MEMBERS} as s join customer_rfm as r using (customer_id)
            where r.monetary_total > 0
            order by hash(s.customer_id || $seed) limit {SCATTER_SAMPLE_SIZE}""",
        {"run": run_id, "seed": str(seed)}).df()
    frame = frame[~frame["segment_id"].isin(small)].sort_values(["segment_id", "x", "y"])
    return tuple((int(segment_id), tuple((round_significant(x), round_significant(y))
                                         for x, y in zip(group["x"], group["y"])))
                 for segment_id, group in frame.groupby("segment_id"))


def _rfm_grid(con, minimum: int) -> Table:
    counts = {(r, f): n for r, f, n in con.execute(
        "select r_score, f_score, count(*) from customer_rfm_scores group by all").fetchall()}
    # Score totals are not shown anywhere, so only the small cells themselves are hidden.
    rows = suppress_counts([[counts.get((r, f), 0) for f in range(1, 6)] for r in range(5, 0, -1)], minimum,
                           published=(False, False))
    return Table(tuple(f"R{r}" for r in range(5, 0, -1)), tuple(f"F{f}" for f in range(1, 6)), rows)


def _crosstab(con, run_id: str, names: dict[int, str], small: set[int], minimum: int) -> Table:
    counts = {(s, g): n for s, g, n in con.execute(
        f"""select s.segment_id, coalesce(r.rfm_segment, 'not scored'), count(*)
            from {MEMBERS} as s left join customer_rfm_scores as r using (customer_id) group by all""",
        {"run": run_id}).fetchall()}
    present = {g for _, g in counts}
    columns = [g for g in RFM_SEGMENT_ORDER if g in present] + sorted(present - set(RFM_SEGMENT_ORDER))
    segment_ids = [i for i in sorted(names) if i not in small]
    # Segment sizes are on the cards; classic RFM segment totals are not shown.
    rows = suppress_counts([[counts.get((i, g), 0) for g in columns] for i in segment_ids], minimum,
                           published=(True, False))
    return Table(tuple(names[i] for i in segment_ids), tuple(columns), rows)


def _quality(con) -> tuple[QualityRow, ...]:
    frame = con.execute(
        "select reason, row_count, share_of_rows_read, description from data_quality_summary order by check_order").df()
    return tuple(QualityRow(str(r.reason), int(r.row_count),
                            None if pd.isna(r.share_of_rows_read) else float(r.share_of_rows_read),
                            "" if pd.isna(r.description) else str(r.description)) for r in frame.itertuples())


def _migration(con, run: store.StoredRun, minimum: int, currency: str) -> MigrationView | None:
    """Movement from the run's previous run (same features, algorithm and k), None for a fresh lineage.

    Cells with fewer than `minimum` customers are hidden, like the report's other small groups. The note under
    the matrix names the highlighted flows with their counts, so those are never picked to hide another cell.
    """
    if run.previous_run_id is None:
        return None
    summary = summarize_migration(con, run.previous_run_id, run.run_id, minimum=minimum)
    counts = tuple(tuple(int(n) if n >= minimum or n == 0 else None for n in row) for row in summary.matrix.to_numpy())
    rows, columns = list(summary.matrix.index), list(summary.matrix.columns)
    highlights = frozenset((rows.index(f.from_label), columns.index(f.to_label)) for f in summary.top_flows)
    table = Table(tuple(rows), tuple(columns), suppress_counts(counts, minimum, keep=highlights))
    drift_checks = (0, 0)
    if table_exists(con, "drift_checks"):
        drift_checks = con.execute("""select count(*) filter (where exceeds_threshold), count(*) from drift_checks
                                      where run_id = ?""", [run.run_id]).fetchall()[0]
    note = prose.migration_note(summary, currency, run.matches, drift_checks)
    return MigrationView(run.previous_run_id, run.run_id, table, note, highlights)


def _settings_without_folders(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The run's settings as shown: a path keeps only its last part, so no local folder appears on the page."""
    paths = ("db_path", "project_dir", "report_path", "profiles_dir")
    return {key: (PurePath(str(value)).name or str(value)) if key in paths and value else value
            for key, value in settings.items()}


def _versions() -> dict[str, str]:
    versions = {"python (report)": platform.python_version()}
    for package in ("segkit", "duckdb", "jinja2"):
        try:
            versions[f"{package} (report)"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[f"{package} (report)"] = "not installed"
    return versions
