"""The HTML segment report: build a ReportModel from the stored tables, then render it with Jinja.

Build data first, render last: `build_report_model` does every query and calculation and returns plain
dataclasses; `render_report` only formats them. The page is one offline file made of aggregates, so it
stays small for any number of customers, and it carries no customer identifiers.
"""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Collection, Sequence

import duckdb
import jinja2
import pandas as pd
from markupsafe import Markup

from segkit import charts, engine
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.naming import (days as _days, describe_segment, is_slipping_away, money, name_segments, number as _num,
                           percent, recommend)
from segkit.warehouse import require_table, table_exists

SCATTER_SAMPLE_SIZE = 2_500
CLUSTER_HINT = "Run `segkit cluster` first."
DBT_HINT = "Run `dbt build` first."
RFM_SEGMENT_ORDER = ("Champions", "Loyal Customers", "Potential Loyalist", "New Customers", "Promising",
                     "Need Attention", "About To Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost")
FEATURE_LABELS = {
    "recency_days": ("Days since last order", "days"),
    "frequency": ("Orders", "orders"),
    "monetary_total": ("Total spend", ""),
    "tenure_days": ("Days since first order", "days"),
    "avg_order_value": ("Average order value", ""),
    "avg_days_between_orders": ("Days between orders", "days"),
    "returns_total": ("Returns value", ""),
    "return_rate": ("Return rate", "share"),
    "distinct_products": ("Distinct products", "products"),
    "top_category_share": ("Top category share", "share"),
}


@dataclass(frozen=True)
class Comparison:
    """One measure of the typical (median) segment customer against the typical customer overall."""

    label: str
    value: str
    population: str
    words: str  # e.g. "3.2x the typical customer"


@dataclass(frozen=True)
class SegmentCard:
    segment_id: int
    name: str
    colour: str
    suppressed: bool
    description: str
    customers: int | None = None
    customer_share: float | None = None
    revenue: float | None = None
    revenue_share: float | None = None
    comparisons: tuple[Comparison, ...] = ()
    goal: str = ""
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class KRow:
    k: int
    inertia: float
    silhouette: float | None
    davies_bouldin: float | None
    calinski_harabasz: float | None
    stability_ari: float | None
    is_knee: bool
    is_chosen: bool


@dataclass(frozen=True)
class QualityRow:
    reason: str
    row_count: int
    share_of_rows_read: float | None
    description: str


@dataclass(frozen=True)
class Table:
    """A small count table with row and column labels; None cells are hidden (see `suppress_counts`)."""

    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    counts: tuple[tuple[int | None, ...], ...]


@dataclass(frozen=True)
class MigrationView:
    """Customers moving between segments from one run to the next; filled by segkit.history when available."""

    previous_run_id: str
    current_run_id: str
    table: Table
    note: str = ""
    highlights: frozenset[tuple[int, int]] = frozenset()  # (row, column) cells of the flows that matter


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    created_at: str
    analysis_date: str
    algorithm: str
    features: tuple[str, ...]
    chosen_k: int
    k_reason: str
    n_customers: int
    n_fit_sample: int
    data_fingerprint: str
    settings: dict[str, Any]
    library_versions: dict[str, str]
    metrics: dict[str, Any]


@dataclass(frozen=True)
class ReportModel:
    title: str
    generated_at: str
    run: RunInfo
    min_segment_size: int
    currency: str
    headline: str
    summary: tuple[str, ...]
    segments: tuple[SegmentCard, ...]
    k_rows: tuple[KRow, ...]
    feature_labels: tuple[str, ...]
    # z-score and display text per (segment, feature); None rows for suppressed segments
    feature_cells: tuple[tuple[tuple[float, str, str] | None, ...], ...]
    scatter: tuple[tuple[int, tuple[tuple[float, float], ...]], ...]  # (segment_id, points) from a sample
    scatter_sample_size: int
    rfm_grid: Table      # rows r_score 5..1, columns f_score 1..5
    crosstab: Table      # rows segments, columns rfm_segment
    quality: tuple[QualityRow, ...]
    warnings: tuple[str, ...]
    migration: MigrationView | None = None
    versions: dict[str, str] = field(default_factory=dict)


def build_report_model(con: duckdb.DuckDBPyConnection, run_id: str | None, settings: Settings) -> ReportModel:
    """Read the stored tables for one run (the latest when run_id is None) and compute everything shown."""
    for table in ("cluster_runs", "segment_profiles", "segment_feature_profiles", "k_selection",
                  "segment_assignment_history"):
        require_table(con, table, CLUSTER_HINT)
    for table in ("customer_rfm", "customer_rfm_scores", "data_quality_summary"):
        require_table(con, table, DBT_HINT)
    run = _read_run(con, run_id)
    warnings = list(_json(run.get("warnings"), []))
    minimum = max(int(settings.min_segment_size), 1)
    currency = settings.currency

    profiles = con.execute(
        "select * from segment_profiles where run_id = ? order by segment_id", [run["run_id"]]).df()
    if profiles.empty:
        raise SegkitError(f"Run {run['run_id']} has no rows in segment_profiles; the run is incomplete. "
                          "Run `segkit cluster` again.")
    profiles = profiles.set_index("segment_id")
    # segment_assignment_history keeps every run's members (customer_segments holds the latest run only).
    in_segments = con.execute("select count(*) from segment_assignment_history where run_id = ?",
                              [run["run_id"]]).fetchone()[0]
    if not in_segments:
        raise SegkitError(f"segment_assignment_history holds no customers for run {run['run_id']}; the run is "
                          "incomplete. Run `segkit cluster` again.")
    members = "(select customer_id, segment_id from segment_assignment_history where run_id = $run)"
    analysis_dates = [row[0] for row in con.execute("select distinct analysis_date from customer_rfm").fetchall()]
    if analysis_dates and str(analysis_dates[0]) != run["analysis_date"]:
        # Population figures, gaps, the map and the grids read customer_rfm: mixing dates would mislead.
        raise SegkitError(
            f"customer_rfm now holds features as of {analysis_dates[0]}, but run {run['run_id']} was fitted as of "
            f"{run['analysis_date']}. Rebuild the features for that date first: "
            f"dbt build --vars '{{analysis_date: {run['analysis_date']}}}', then run segkit report again.")
    population = _population(con, members, run["run_id"])
    gaps = dict(con.execute(
        f"""select s.segment_id, median(r.avg_days_between_orders)
            from {members} as s join customer_rfm as r using (customer_id) group by all""",
        {"run": run["run_id"]}).fetchall())

    names = {int(i): str(n) for i, n in profiles["segment_name"].items()}
    if settings.segment_names:
        # A user's names win, also over names stored by an earlier run; the other names stay as stored
        # unless they collide, in which case the naming rules pick a replacement.
        overrides = {i: n for i, n in settings.segment_names.items() if i in names}
        if overrides:
            clash = {i for i, n in names.items() if i not in overrides and n in overrides.values()}
            renamed = name_segments(profiles, population, overrides) if clash else {}
            names = {i: overrides.get(i) or renamed.get(i) or n for i, n in names.items()}
    small = {i for i, n in profiles["customers"].items() if int(n) < minimum}
    if len(small) == 1:
        # The total is printed, so one hidden segment's size would be the total minus the others: hide the
        # next smallest too (with two segments, both).
        small.add(min((i for i in profiles.index if i not in small), key=lambda i: (profiles.at[i, "customers"], i)))
    cards = tuple(_card(int(i), names[int(i)], row, population, gaps.get(int(i)), int(i) in small, minimum, currency)
                  for i, row in profiles.iterrows())

    return ReportModel(
        title="Customer segments",
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        run=_run_info(run),
        min_segment_size=minimum,
        currency=currency,
        headline=_headline(cards),
        summary=_summary(cards, run, population, currency),
        segments=cards,
        k_rows=_k_rows(con, run["run_id"]),
        **_feature_profiles(con, run["run_id"], small, currency),
        scatter=_scatter(con, members, run["run_id"], small, settings.seed),
        scatter_sample_size=SCATTER_SAMPLE_SIZE,
        rfm_grid=_rfm_grid(con, minimum),
        crosstab=_crosstab(con, members, run["run_id"], names, small, minimum),
        quality=_quality(con),
        warnings=tuple(warnings),
        migration=_migration(con, run["run_id"], minimum, currency),
        versions=_versions(run),
    )


def _migration(con: duckdb.DuckDBPyConnection, run_id: str, minimum: int, currency: str) -> MigrationView | None:
    """Movement against the previous run on the same features (segkit.history), None for a first run."""
    from segkit.history import migration_view

    view = migration_view(con, run_id, minimum=minimum, currency=currency)
    if view is None:
        return None
    # The note under the matrix names the highlighted flows with their counts, so those are never
    # picked to hide another cell.
    counts = suppress_counts(view.table.counts, minimum, keep=view.highlights)
    return replace(view, table=replace(view.table, counts=counts))


def render_report(model: ReportModel) -> str:
    """The report as one self-contained HTML page (autoescaped; only chart SVG generated here is marked safe)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segkit", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["zip"] = zip
    env.filters["as_json"] = lambda v: v if isinstance(v, str) else json.dumps(v)
    env.filters.update(
        thousands=lambda v: f"{int(round(v)):,}",
        percent=lambda v: _percent(v),
        money=lambda v: _money(v, model.currency),
        decimal=lambda v, digits=2: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{digits}f}",
    )
    return env.get_template("report.html.j2").render(m=model, charts=_charts(model),
                                                     fewer=_fewer(model.min_segment_size),
                                                     hidden=hidden_note(model.min_segment_size))


def write_report(settings: Settings, run_id: str | None = None) -> Path:
    """Render the report for a run (latest by default) from the engine's tables, opened read-only, and write it."""
    with engine.connect(settings, read_only=True) as con:
        model = build_report_model(con, run_id, settings)
    html = render_report(model)
    path = report_file(settings, model.run.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, path)
    return path


def report_file(settings: Settings, run_id: str) -> Path:
    """Settings.report_path when it names a .html file; otherwise segments_<run id>.html in that folder or reports/."""
    target = settings.report_path
    if target is not None and Path(target).suffix.lower() in (".html", ".htm"):
        return Path(target)
    folder = Path(target) if target is not None else Path(settings.project_dir) / "reports"
    return folder / f"segments_{run_id}.html"


# ---------------------------------------------------------------------------------------------- queries


def _read_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict[str, Any]:
    query = "select * from cluster_runs " + ("where run_id = ?" if run_id else "order by created_at desc, run_id desc limit 1")
    frame = con.execute(query, [run_id] if run_id else []).df()
    if frame.empty:
        if run_id:
            known = [r[0] for r in con.execute("select run_id from cluster_runs order by created_at desc limit 5").fetchall()]
            raise SegkitError(f"There is no run {run_id!r} in cluster_runs. Recent runs: "
                              f"{', '.join(known) or 'none'}. Pick one of them, or leave out the run id for the latest.")
        raise SegkitError(f"cluster_runs is empty: no segmentation has been stored yet. {CLUSTER_HINT}")
    run = frame.iloc[0].to_dict()
    run["settings"] = _json(run.get("settings"), {})
    run["analysis_date"] = str(pd.Timestamp(run["analysis_date"]).date()) if run.get("analysis_date") is not None else ""
    return run


def _json(text: Any, default: Any) -> Any:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return default
    if isinstance(text, (dict, list)):
        return text
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return default


def _run_info(run: dict[str, Any]) -> RunInfo:
    created = run.get("created_at")
    return RunInfo(
        run_id=str(run["run_id"]),
        created_at=pd.Timestamp(created).strftime("%Y-%m-%d %H:%M:%S") if created is not None else "",
        analysis_date=run["analysis_date"],
        algorithm=str(run.get("algorithm", "")),
        features=tuple(_json(run.get("features"), [])),
        chosen_k=int(run["chosen_k"]),
        k_reason=str(run.get("k_reason") or ""),
        n_customers=int(run.get("n_customers") or 0),
        n_fit_sample=int(run.get("n_fit_sample") or 0),
        data_fingerprint=str(run.get("data_fingerprint") or ""),
        settings=run["settings"],
        library_versions={str(k): str(v) for k, v in _json(run.get("library_versions"), {}).items()},
        metrics=_json(run.get("metrics"), {}),
    )


def _population(con: duckdb.DuckDBPyConnection, members: str, run_id: str) -> pd.Series:
    row = con.execute(
        f"""select median(recency_days) as median_recency_days, median(frequency) as median_frequency,
                   median(monetary_total)::double as median_monetary_total, avg(recency_days) as mean_recency_days,
                   avg(frequency) as mean_frequency, avg(monetary_total)::double as mean_monetary_total,
                   median(avg_days_between_orders) as median_days_between_orders
            from customer_rfm where customer_id in (select customer_id from {members})""",
        {"run": run_id}).df()
    return row.iloc[0].astype(float)


def _k_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[KRow, ...]:
    frame = con.execute("select * from k_selection where run_id = ? order by k", [run_id]).df()

    def opt(value: Any) -> float | None:
        return None if value is None or pd.isna(value) else float(value)

    return tuple(KRow(int(r.k), float(r.inertia), opt(r.silhouette), opt(r.davies_bouldin), opt(r.calinski_harabasz),
                      opt(r.stability_ari), bool(r.is_knee), bool(r.is_chosen)) for r in frame.itertuples())


def _feature_profiles(con: duckdb.DuckDBPyConnection, run_id: str, small: set[int], currency: str) -> dict[str, Any]:
    frame = con.execute(
        """select segment_id, feature, mean, median, population_mean, index_vs_population, z_score
           from segment_feature_profiles where run_id = ? order by segment_id, feature""", [run_id]).df()
    order = con.execute(
        "select feature from feature_transform where run_id = ? order by feature_order", [run_id]).fetchall() \
        if table_exists(con, "feature_transform") else []
    features = [f for (f,) in order] or list(dict.fromkeys(frame["feature"]))
    cells = []
    for segment_id in sorted(frame["segment_id"].unique()):
        if int(segment_id) in small:
            cells.append(None)
            continue
        rows = frame[frame["segment_id"] == segment_id].set_index("feature")
        row = []
        for feature in features:
            if feature not in rows.index:
                row.append((0.0, "–", "not profiled"))
                continue
            r = rows.loc[feature]
            label, unit = FEATURE_LABELS.get(feature, (feature, ""))
            text = f"{_measure(r['mean'], unit, currency)}"
            tip = (f"{label}: segment mean {_measure(r['mean'], unit, currency)}, all customers "
                   f"{_measure(r['population_mean'], unit, currency)} ({_times(r['index_vs_population'])}); "
                   f"z-score {r['z_score']:+.2f}")
            row.append((float(r["z_score"]) if pd.notna(r["z_score"]) else 0.0, text, tip))
        cells.append(tuple(row))
    return {"feature_labels": tuple(FEATURE_LABELS.get(f, (f, ""))[0] for f in features),
            "feature_cells": tuple(cells)}


def _scatter(con: duckdb.DuckDBPyConnection, members: str, run_id: str, small: set[int],
             seed: int) -> tuple[tuple[int, tuple[tuple[float, float], ...]], ...]:
    # A deterministic sample by hashing ids with the seed; only the two feature values leave the query,
    # rounded to 3 significant digits (enough for a chart, less exact than the data).
    frame = con.execute(
        f"""select s.segment_id, r.recency_days::double as x, r.monetary_total::double as y
            from {members} as s join customer_rfm as r using (customer_id)
            where r.monetary_total > 0
            order by hash(s.customer_id || $seed) limit {SCATTER_SAMPLE_SIZE}""",
        {"run": run_id, "seed": str(seed)}).df()
    frame = frame[~frame["segment_id"].isin(small)].sort_values(["segment_id", "x", "y"])
    out = []
    for segment_id, group in frame.groupby("segment_id"):
        points = tuple((_round_sig(x), _round_sig(y)) for x, y in zip(group["x"], group["y"]))
        out.append((int(segment_id), points))
    return tuple(out)


def _round_sig(value: float, digits: int = 3) -> float:
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _rfm_grid(con: duckdb.DuckDBPyConnection, minimum: int) -> Table:
    counts = {(r, f): n for r, f, n in con.execute(
        "select r_score, f_score, count(*) from customer_rfm_scores group by all").fetchall()}
    # Score totals are not shown anywhere, so only the small cells themselves are hidden.
    rows = suppress_counts([[counts.get((r, f), 0) for f in range(1, 6)] for r in range(5, 0, -1)], minimum,
                           published=(False, False))
    return Table(tuple(f"R{r}" for r in range(5, 0, -1)), tuple(f"F{f}" for f in range(1, 6)), rows)


def _crosstab(con: duckdb.DuckDBPyConnection, members: str, run_id: str, names: dict[int, str],
              small: set[int], minimum: int) -> Table:
    counts = {(s, g): n for s, g, n in con.execute(
        f"""select s.segment_id, coalesce(r.rfm_segment, 'not scored'), count(*)
            from {members} as s left join customer_rfm_scores as r using (customer_id) group by all""",
        {"run": run_id}).fetchall()}
    present = {g for _, g in counts}
    columns = [g for g in RFM_SEGMENT_ORDER if g in present] + sorted(present - set(RFM_SEGMENT_ORDER))
    segment_ids = [i for i in sorted(names) if i not in small]
    # Segment sizes are on the cards; classic RFM segment totals are not shown.
    rows = suppress_counts([[counts.get((i, g), 0) for g in columns] for i in segment_ids], minimum,
                           published=(True, False))
    return Table(tuple(names[i] for i in segment_ids), tuple(columns), rows)


def suppress_counts(counts: Sequence[Sequence[int | None]], minimum: int, keep: Collection[tuple[int, int]] = (),
                    published: tuple[bool, bool] = (True, True)) -> tuple[tuple[int | None, ...], ...]:
    """A count table with small cells hidden (None), and enough others that no hidden cell can be worked out.

    Primary: counts from 1 to minimum - 1 (None on input counts as already hidden): a cell that small could
    point at individual customers. Complementary: where the totals of rows (published[0]) or columns
    (published[1]) appear elsewhere in the report, a row or column with exactly one hidden cell would give
    it away by subtraction, so the smallest other non-zero cell of that line is hidden too; repeated until
    no such line has a lone hidden cell. Zeros are never hidden: a line whose other cells are all zero has a
    total below the minimum, and such segments are suppressed whole. keep: (row, column) cells published
    elsewhere, picked as the second cell only when nothing else is left.
    """
    cells = [[None if n is None or 0 < n < minimum else int(n) for n in row] for row in counts]
    n_rows, n_cols = len(cells), max((len(row) for row in cells), default=0)
    lines = ([[(r, c) for c in range(n_cols)] for r in range(n_rows)] if published[0] else []) + \
            ([[(r, c) for r in range(n_rows)] for c in range(n_cols)] if published[1] else [])
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(cells[r][c] is None for r, c in line) != 1:
                continue
            shown = [(r, c) for r, c in line if cells[r][c]]
            candidates = [p for p in shown if p not in keep] or shown
            if candidates:
                r, c = min(candidates, key=lambda p: (cells[p[0]][p[1]], p))
                cells[r][c] = None
                changed = True
    return tuple(tuple(row) for row in cells)


def _quality(con: duckdb.DuckDBPyConnection) -> tuple[QualityRow, ...]:
    frame = con.execute(
        "select reason, row_count, share_of_rows_read, description from data_quality_summary order by check_order").df()
    return tuple(QualityRow(str(r.reason), int(r.row_count),
                            None if pd.isna(r.share_of_rows_read) else float(r.share_of_rows_read),
                            "" if pd.isna(r.description) else str(r.description)) for r in frame.itertuples())


def _versions(run: dict[str, Any]) -> dict[str, str]:
    versions = {"python (report)": platform.python_version()}
    for package in ("segkit", "duckdb", "jinja2"):
        try:
            versions[f"{package} (report)"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[f"{package} (report)"] = "not installed"
    return versions


# ---------------------------------------------------------------------------------------------- words


def _card(segment_id: int, name: str, row: pd.Series, population: pd.Series, gap: float | None, suppressed: bool,
          minimum: int, currency: str) -> SegmentCard:
    colour = charts.segment_colour(segment_id)
    description = describe_segment(name, row, population)
    if suppressed:
        return SegmentCard(segment_id, name, colour, True, description)
    comparisons = (
        Comparison("Days since last order", _days(row["median_recency_days"]), _days(population["median_recency_days"]),
                   _relative(row["median_recency_days"], population["median_recency_days"], "more recent", "longer ago")),
        Comparison("Orders", _num(row["median_frequency"]), _num(population["median_frequency"]),
                   _relative(row["median_frequency"], population["median_frequency"], "fewer", "more")),
        Comparison("Total spend", _money(row["median_monetary_total"], currency),
                   _money(population["median_monetary_total"], currency),
                   _relative(row["median_monetary_total"], population["median_monetary_total"], "less", "more")),
    )
    advice = recommend(name, row, population, gap, currency)
    return SegmentCard(segment_id, name, colour, False, description, int(row["customers"]),
                       float(row["customer_share"]), float(row["revenue"]), float(row["revenue_share"]),
                       comparisons, advice.goal, advice.actions)


def _relative(value: float, base: float, lower: str, higher: str) -> str:
    value, base = float(value), float(base)
    if base <= 0 or math.isclose(value, base, rel_tol=0.05):
        return "about the same as the typical customer"
    ratio = value / base
    if ratio > 1:
        return f"{ratio:.1f}× the typical customer ({higher})"
    return f"{ratio:.2f}× the typical customer ({lower})"


def _headline(cards: tuple[SegmentCard, ...]) -> str:
    shown = [c for c in cards if not c.suppressed]
    if not shown:
        return f"{len(cards)} segments, all too small to show."
    top = max(shown, key=lambda c: c.revenue_share or 0)
    return (f"{_percent(top.customer_share)} of customers ({top.name}) bring "
            f"{_percent(top.revenue_share)} of revenue")


def _summary(cards: tuple[SegmentCard, ...], run: dict[str, Any], population: pd.Series, currency: str) -> tuple[str, ...]:
    shown = [c for c in cards if not c.suppressed]
    features = ", ".join(FEATURE_LABELS.get(f, (f, ""))[0].lower() for f in _json(run.get("features"), []))
    lines = [f"We grouped {int(run.get('n_customers') or 0):,} customers into {int(run['chosen_k'])} segments "
             f"by {features or 'their purchase history'} ({run.get('algorithm', '')}), using orders up to "
             f"{run['analysis_date']}."]
    if shown:
        top = max(shown, key=lambda c: c.revenue_share or 0)
        lines.append(f"The most valuable segment, {top.name}, is {top.customers:,} customers "
                     f"({_percent(top.customer_share)}) who bring {_money(top.revenue, currency)} "
                     f"({_percent(top.revenue_share)}) of revenue.")
        largest = max(shown, key=lambda c: c.customers or 0)
        if largest is not top:
            lines.append(f"The largest segment, {largest.name}, is {_percent(largest.customer_share)} of customers "
                         f"and {_percent(largest.revenue_share)} of revenue.")
        slipping = [c for c in shown if is_slipping_away(c.name)]
        if slipping:
            at_risk = sum(c.revenue or 0 for c in slipping)
            people = sum(c.customers or 0 for c in slipping)
            lines.append(f"{people:,} customers in segments that are drifting away "
                         f"({', '.join(c.name for c in slipping)}) spent {_money(at_risk, currency)} in the past: "
                         "that is the revenue at risk and the win-back pool.")
    lines.append(f"The typical customer last ordered {_days(population['median_recency_days'])} ago, has placed "
                 f"{_num(population['median_frequency'])} orders and spent {_money(population['median_monetary_total'], currency)} in total.")
    hidden = len(cards) - len(shown)
    if hidden:
        lines.append(f"{hidden} segment{'s' if hidden > 1 else ''} with too few customers "
                     f"{'are' if hidden > 1 else 'is'} listed without figures to protect privacy.")
    return tuple(lines)


def _charts(model: ReportModel) -> dict[str, Markup]:
    ks = [r.k for r in model.k_rows]
    chosen = next((r.k for r in model.k_rows if r.is_chosen), model.run.chosen_k)
    knee = next((r.k for r in model.k_rows if r.is_knee), None)
    out = {
        "elbow": charts.line_chart(ks, [r.inertia for r in model.k_rows], label="Inertia by number of segments (elbow)",
                                   x_label="k", y_label="inertia (lower = tighter)", chosen_x=chosen, knee_x=knee),
        "silhouette": charts.line_chart(ks, [r.silhouette for r in model.k_rows], label="Silhouette by k (higher is better)",
                                        x_label="k", y_label="silhouette", chosen_x=chosen, y_format=lambda v: f"{v:.2f}"),
        "davies_bouldin": charts.line_chart(ks, [r.davies_bouldin for r in model.k_rows],
                                            label="Davies-Bouldin by k (lower is better)", x_label="k",
                                            y_label="Davies-Bouldin", chosen_x=chosen, y_format=lambda v: f"{v:.2f}"),
        "stability": charts.line_chart(ks, [r.stability_ari for r in model.k_rows],
                                       label="Stability by k (adjusted Rand index between resamples, higher is better)",
                                       x_label="k", y_label="stability (ARI)", chosen_x=chosen,
                                       y_format=lambda v: f"{v:.2f}"),
        "shares": charts.share_bars([(c.name, c.colour, c.customer_share, c.revenue_share) for c in model.segments],
                                    label="Share of customers and of revenue per segment"),
    }
    names = [c.name for c in model.segments]
    heat_cells = [None if row is None else [(charts.diverging_colour(z), text, tip) for z, text, tip in row]
                  for row in model.feature_cells]
    out["profiles"] = charts.heatmap(names, model.feature_labels, heat_cells,
                                     label="Segment means per feature; colour shows the distance from all customers "
                                           "(blue below, orange above, in standard deviations)",
                                     suppressed_text=_fewer(model.min_segment_size))
    colours = {c.segment_id: (c.name, c.colour) for c in model.segments}
    out["scatter"] = charts.scatter(
        [(colours[i][0], colours[i][1], points) for i, points in model.scatter],
        label="A sample of customers by days since last order and total spend (log scales), coloured by segment",
        x_label="days since last order (log scale)", y_label="total spend (log scale)")
    out["rfm_grid"] = _count_heatmap(model.rfm_grid, "Customers by recency score (rows) and frequency score "
                                     "(columns), 5 = best", "recency ↓ / frequency →", model.min_segment_size)
    out["crosstab"] = _count_heatmap(model.crosstab, "Customers per segment and classic RFM segment",
                                     "", model.min_segment_size, cell_width=96)
    return out


def _count_heatmap(table: Table, label: str, corner: str, minimum: int, cell_width: int = 80) -> Markup:
    largest = max([n for row in table.counts for n in row if n is not None] + [1])
    # Every hidden cell reads the same, so a small cell cannot be told from the one hidden to protect it.
    cells = [[(charts.sequential_colour(n / largest) if n is not None else "#eeeeee",
               f"{n:,}" if n is not None else "hidden",
               f"{r} × {c}: " + (f"{n:,} customers" if n is not None else hidden_note(minimum)))
              for c, n in zip(table.col_labels, row)] for r, row in zip(table.row_labels, table.counts)]
    return charts.heatmap(table.row_labels, table.col_labels, cells, label=label, cell_width=cell_width, corner=corner,
                           suppressed_text=f"fewer than {minimum:,} customers")


def _fewer(minimum: int) -> str:
    return (f"fewer than {minimum:,} customers, or hidden with it so that a smaller segment's size cannot be "
            "worked out from the total")


def hidden_note(minimum: int) -> str:
    return (f"hidden: fewer than {minimum:,} customers, or hidden so that such a cell "
            "cannot be worked out from the totals")


def _measure(value: float, unit: str, currency: str) -> str:
    if value is None or pd.isna(value):
        return "–"
    if unit == "days":
        return _days(value)
    if unit == "share":
        return _percent(value)
    if unit == "":
        return _money(value, currency)
    return _num(value)


def _times(index: float) -> str:
    return "–" if index is None or pd.isna(index) else f"{float(index):.2f}× all customers"


def _percent(value: float | None) -> str:
    return "–" if value is None else percent(value)


def _money(value: float | None, currency: str = "") -> str:
    return "–" if value is None else money(value, currency)
