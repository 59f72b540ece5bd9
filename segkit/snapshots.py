"""A series of monthly snapshots: for each month start, `dbt build` as of that date, then segment the customers.

k is chosen once and the segments are kept while they still fit. The series continues the model of the latest
stored run on the same features and algorithm (and the forced k) dated on or before its first month; without
one, the first month fits a model (k from the evidence inside Settings.k_min..k_max, or the forced k). Every later month scores its customers with the
series' model in SQL, a run of kind 'scored', so the migration from the month before counts changes in
customers only: both months are in the same segments. When the drift check of that month (its customers
against the data the model was fitted on) advises a refit, the series refits with its own k, as a separate,
labelled event: the refit's run continues the month's scored run, keeps the ids of the segments it matches,
records which segments it redefined and by how much, and the customers it regrouped, none of them counted as
moves. Later months score with the new model. The series never changes its k by itself, so its segments and ids
stay comparable month after month; to weigh the evidence for another k, run `segkit cluster` (or start a new
series) on the latest month.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Callable

from segkit import engine, lineage
from segkit.config import Settings
from segkit.dbt_runner import run_dbt
from segkit.drift import DriftReport
from segkit.errors import SegkitError
from segkit.migration import MigrationSummary, RefitSummary, summarize_migration, summarize_refit
from segkit.store import StoredRun


@dataclass(frozen=True)
class Refit:
    """A refit of the series: the new model's run, with the series' k, and what it changed against the month's
    scored run, which it continues."""

    run_id: str
    chosen_k: int
    segments: tuple[tuple[int, str, int], ...]    # segment id, name, customers
    summary: RefitSummary


@dataclass(frozen=True)
class Snapshot:
    analysis_date: date
    run_id: str
    kind: str                                     # 'fit' (the series' first model) or 'scored' with the series' model
    model_run_id: str                             # the fit whose model segmented this month
    chosen_k: int
    n_customers: int
    segments: tuple[tuple[int, str, int], ...]    # segment id, name, customers
    matches: tuple[tuple[str, int], ...]          # status, segments
    drift: DriftReport | None                     # the month's customers against the data the model was fitted on
    migration: MigrationSummary | None            # from the month before, on one model: customers' moves only
    refit: Refit | None = None                    # the refit the drift check called for, after scoring


def month_starts(start: date, end: date) -> list[date]:
    """The first day of every month from start's month to end's month, both included."""
    if end < start:
        raise SegkitError(f"The end {end} is before the start {start}; give an end on or after the start.")
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def run_snapshots(settings: Settings, start: date, end: date, dbt_vars: dict[str, Any] | None = None,
                  progress: Callable[[str], None] | None = None) -> list[Snapshot]:
    """Build and segment one snapshot per month start from start to end; see the module docstring."""
    from segkit.clustering import run_clustering

    say = progress or (lambda message: None)
    settings = dataclasses.replace(settings, write_report=False)
    snapshots: list[Snapshot] = []
    months = month_starts(start, end)
    model_run_id: str | None = None
    for number, analysis_date in enumerate(months, start=1):
        say(f"month {number} of {len(months)}: dbt build as of {analysis_date}")
        run_dbt(settings, dbt_vars={**(dbt_vars or {}), "analysis_date": str(analysis_date)})
        if analysis_date == months[0]:  # the database exists once dbt has built it
            with engine.connect(settings, read_only=True) as con:
                model_run_id = lineage.latest_model(con, settings.features, settings.algorithm, settings.k, months[0])
        say(f"month {number} of {len(months)}: " + (f"scoring as of {analysis_date} with the model of run "
                                                    f"{model_run_id}" if model_run_id else f"fitting as of {analysis_date}"))
        run = run_clustering(settings, progress=None, model_run_id=model_run_id)
        model_run_id = run.model_run_id
        refitted = None
        if run.kind == "scored" and run.drift is not None and run.drift.refit_advised:
            say(f"{analysis_date}: the segments no longer fit the customers ({run.drift.message}) Refitting with the "
                f"series' k={run.chosen_k}; `segkit cluster` weighs the evidence for another k.")
            refitted = run_clustering(dataclasses.replace(settings, k=run.chosen_k), progress=None)
            model_run_id = refitted.run_id
        with engine.connect(settings, read_only=True) as con:
            refit = None if refitted is None else Refit(refitted.run_id, refitted.chosen_k, _segments(refitted),
                                                        summarize_refit(con, refitted))
            migration = (summarize_migration(con, run.previous_run_id, run.run_id, minimum=settings.min_segment_size)
                         if run.previous_run_id else None)
        snapshots.append(Snapshot(analysis_date, run.run_id, run.kind, run.model_run_id, run.chosen_k,
                                  run.n_customers, _segments(run), tuple(run.matches.items()), run.drift, migration,
                                  refit))
    return snapshots


def _segments(run: StoredRun) -> tuple[tuple[int, str, int], ...]:
    return tuple((s.segment_id, s.name, s.customers) for s in run.segments)


def series_rows(snapshots: list[Snapshot]) -> list[dict[str, Any]]:
    """One row per month: its k, the customers who moved since the month before, and the refit, if any."""
    return [{"month": str(s.analysis_date), "k": s.chosen_k, "run": s.kind,
             "moved": s.migration.moved if s.migration else None,
             "customers_in_both": s.migration.customers_in_both if s.migration else None,
             "refit": (f"k={s.refit.chosen_k}, {s.refit.summary.regrouped:,} customers regrouped"
                       if s.refit else "")}
            for s in snapshots]


def describe(snapshot: Snapshot) -> str:
    """A few lines of text for one snapshot: segments, matching, drift, migration and any refit."""
    how = "fitted" if snapshot.kind == "fit" else f"scored with the model of run {snapshot.model_run_id}"
    lines = [f"{snapshot.analysis_date}  run {snapshot.run_id} ({how}): {snapshot.n_customers:,} customers, "
             f"k={snapshot.chosen_k}; segments " + ", ".join(f"{i} {n} ({c:,})" for i, n, c in snapshot.segments)]
    if snapshot.kind == "fit":
        lines.append("  segment ids: " + ", ".join(f"{n} {status}" for status, n in snapshot.matches))
    if snapshot.drift is not None:
        lines.append(f"  drift: {snapshot.drift.message}")
    migration = snapshot.migration
    if migration is not None:
        share = migration.moved / migration.customers_in_both if migration.customers_in_both else 0.0
        lines.append(f"  moves since {migration.from_analysis_date} (same segments): {migration.customers_in_both:,} "
                     f"customers in both, {migration.stayed:,} stayed, {migration.moved:,} moved ({share:.1%}) with "
                     f"{migration.revenue_moved:,.0f} revenue; {migration.new_customers:,} new customers")
        for flow in migration.top_flows:
            lines.append(f"    {flow.from_segment} -> {flow.to_segment}: {flow.customers:,} customers, "
                         f"{flow.revenue:,.0f} revenue" + ("  [slipping away]" if flow.is_slipping else ""))
    refit = snapshot.refit
    if refit is not None:
        lines.append(f"  REFIT (run {refit.run_id}, k={refit.chosen_k}): segments " +
                     ", ".join(f"{i} {n} ({c:,})" for i, n, c in refit.segments))
        changes = "; ".join(f"{c.segment} {c.status}" + (f", centroid moved {c.shift:.2f} sd" if c.shift is not None
                                                         and c.status == "matched" else "")
                            for c in refit.summary.changes)
        lines.append(f"    redefined: {changes}")
        lines.append(f"    {refit.summary.regrouped:,} of {refit.summary.customers:,} customers regrouped by the "
                     f"refit ({refit.summary.regrouped_revenue:,.0f} revenue); not counted as moves.")
    return "\n".join(lines)


def to_json_dict(snapshot: Snapshot) -> dict[str, Any]:
    """One snapshot as plain JSON values, for `segkit snapshots --json`."""
    migration = snapshot.migration
    refit = snapshot.refit
    return {
        "analysis_date": str(snapshot.analysis_date), "run_id": snapshot.run_id, "kind": snapshot.kind,
        "model_run_id": snapshot.model_run_id, "chosen_k": snapshot.chosen_k, "n_customers": snapshot.n_customers,
        "segments": [{"segment_id": i, "name": n, "customers": c} for i, n, c in snapshot.segments],
        "matches": dict(snapshot.matches),
        "drift": snapshot.drift.to_json_dict() if snapshot.drift is not None else None,
        "migration": None if migration is None else {
            "from_run_id": migration.from_run_id, "to_run_id": migration.to_run_id,
            "customers_in_both": migration.customers_in_both, "stayed": migration.stayed, "moved": migration.moved,
            "revenue_moved": migration.revenue_moved, "new_customers": migration.new_customers,
            "top_flows": [asdict(flow) for flow in migration.top_flows]},
        "refit": None if refit is None else {
            "run_id": refit.run_id, "chosen_k": refit.chosen_k,
            "segments": [{"segment_id": i, "name": n, "customers": c} for i, n, c in refit.segments],
            "summary": _plain(asdict(refit.summary))},
    }


def _plain(value: Any) -> Any:
    """Dataclass fields as JSON values: DataFrames as records, dates and other objects as text."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if hasattr(value, "to_dict"):
        return value.to_dict("records")
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
