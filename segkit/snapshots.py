"""A series of monthly snapshots: for each month start, `dbt build` as of that date, then cluster.

Each snapshot rebuilds the feature mart with var ``analysis_date`` set to the month start (features use
only lines dated before it), refits with `run_clustering` (which keeps segment ids stable and stores the
migration), and reports drift of the new data against the previous model and the
migration from it. The previous model is the run's previous run as segkit.lineage defines it: same
features, algorithm and k, analysis date on or before the snapshot's, so with a fixed k each snapshot
continues the one before and a series never compares against a later date.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, Callable

from segkit import engine
from segkit.config import Settings
from segkit.dbt_runner import run_dbt
from segkit.drift import DriftReport
from segkit.errors import SegkitError
from segkit.migration import MigrationSummary, summarize_migration


@dataclass(frozen=True)
class Snapshot:
    analysis_date: date
    run_id: str
    chosen_k: int
    n_customers: int
    segments: tuple[tuple[int, str, int], ...]    # segment id, name, customers
    matches: tuple[tuple[str, int], ...]          # status, segments
    drift: DriftReport | None                     # the new data against the previous model, before refitting
    migration: MigrationSummary | None            # from the previous run (see the module docstring)


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
    """Build and cluster one snapshot per month start from start to end; see the module docstring."""
    from segkit.clustering import run_clustering

    say = progress or (lambda message: None)
    settings = dataclasses.replace(settings, write_report=False)
    snapshots = []
    months = month_starts(start, end)
    for number, analysis_date in enumerate(months, start=1):
        say(f"month {number} of {len(months)}: dbt build as of {analysis_date}")
        run_dbt(settings, dbt_vars={**(dbt_vars or {}), "analysis_date": str(analysis_date)})
        say(f"month {number} of {len(months)}: clustering as of {analysis_date}")
        run = run_clustering(settings, progress=None)
        with engine.connect(settings, read_only=True) as con:
            # run.previous_run_id: the run it continues (same features, algorithm and k, on or before this
            # date), which its ids were matched with and run.drift was measured against.
            summary = (summarize_migration(con, run.previous_run_id, run.run_id, minimum=settings.min_segment_size)
                       if run.previous_run_id else None)
        snapshots.append(Snapshot(analysis_date, run.run_id, run.chosen_k, run.n_customers,
                                  tuple((s.segment_id, s.name, s.customers) for s in run.segments),
                                  tuple(run.matches.items()), run.drift, summary))
    return snapshots


def describe(snapshot: Snapshot) -> str:
    """A few lines of text for one snapshot: segments, matching, drift and migration."""
    lines = [f"{snapshot.analysis_date}  run {snapshot.run_id}: {snapshot.n_customers:,} customers, "
             f"k={snapshot.chosen_k}; segments " + ", ".join(f"{i} {n} ({c:,})" for i, n, c in snapshot.segments)]
    lines.append("  segment ids: " + ", ".join(f"{n} {status}" for status, n in snapshot.matches))
    if snapshot.drift is not None:
        lines.append(f"  drift: {snapshot.drift.message}")
    migration = snapshot.migration
    if migration is not None:
        share = migration.moved / migration.customers_in_both if migration.customers_in_both else 0.0
        lines.append(f"  migration from {migration.from_analysis_date}: {migration.customers_in_both:,} customers in "
                     f"both, {migration.stayed:,} stayed, {migration.moved:,} moved ({share:.1%}) with "
                     f"{migration.revenue_moved:,.0f} revenue; {migration.new_customers:,} new customers")
        for flow in migration.top_flows:
            lines.append(f"    {flow.from_segment} -> {flow.to_segment}: {flow.customers:,} customers, "
                         f"{flow.revenue:,.0f} revenue" + ("  [slipping away]" if flow.is_slipping else ""))
    return "\n".join(lines)


def to_json_dict(snapshot: Snapshot) -> dict[str, Any]:
    """One snapshot as plain JSON values, for `segkit snapshots --json`."""
    migration = snapshot.migration
    return {
        "analysis_date": str(snapshot.analysis_date), "run_id": snapshot.run_id, "chosen_k": snapshot.chosen_k,
        "n_customers": snapshot.n_customers,
        "segments": [{"segment_id": i, "name": n, "customers": c} for i, n, c in snapshot.segments],
        "matches": dict(snapshot.matches),
        "drift": snapshot.drift.to_json_dict() if snapshot.drift is not None else None,
        "migration": None if migration is None else {
            "from_run_id": migration.from_run_id, "to_run_id": migration.to_run_id,
            "customers_in_both": migration.customers_in_both, "stayed": migration.stayed, "moved": migration.moved,
            "revenue_moved": migration.revenue_moved, "new_customers": migration.new_customers,
            "top_flows": [asdict(flow) for flow in migration.top_flows]},
    }
