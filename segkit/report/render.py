"""Render the report's view model as one self-contained HTML page: Jinja with autoescape, inline SVG charts, and
heat maps drawn as HTML tables (they reflow on a phone and a screen reader reads their numbers)."""

from __future__ import annotations

import json
import math
import statistics

import jinja2
from markupsafe import Markup

from segkit import charts
from segkit.formatting import money, percent
from segkit.report.prose import fewer, hidden_note
from segkit.report.view import HeatCell, ReportModel, SampleRow, Table


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
    env.filters["timestamp"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S") if v is not None else ""
    env.filters.update(
        thousands=lambda v: f"{int(round(v)):,}",
        percent=percent,
        money=lambda v: money(v, model.currency),
        decimal=lambda v, digits=2: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.{digits}f}",
        noise=lambda v, digits: "" if v is None or math.isnan(v) else f" ± {v:,.{digits}f}",
    )
    return env.get_template("report.html.j2").render(
        m=model, charts=_charts(model), fewer=fewer(model.min_segment_size), hidden=hidden_note(model.min_segment_size),
        sample_rows=_sample_rows(model), rfm_cells=_count_cells(model.rfm_grid, model.min_segment_size),
        crosstab_cells=_count_cells(model.crosstab, model.min_segment_size))


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
    colours = {c.segment_id: (c.name, c.colour) for c in model.segments}
    out["scatter"] = charts.scatter(
        [(colours[i][0], colours[i][1], points) for i, points in model.scatter],
        label="A sample of customers by days since last order and total spend (log scales), coloured by segment",
        x_label="days since last order (log scale)", y_label="total spend (log scale)")
    return out


def _sample_rows(model: ReportModel) -> list[SampleRow]:
    """The numbers behind the customer map: per segment, the customers in the sample and their medians."""
    names = {c.segment_id: c.name for c in model.segments}
    return [SampleRow(names[i], len(points), statistics.median(x for x, _ in points),
                      statistics.median(y for _, y in points)) for i, points in model.scatter if points]


def _count_cells(table: Table, minimum: int) -> list[list[HeatCell]]:
    """A count table as heat-map cells: white to blue by count; every hidden cell reads the same, so a small cell
    cannot be told from the one hidden to protect it."""
    largest = max([n for row in table.counts for n in row if n is not None] + [1])
    return [[HeatCell(f"{n:,}", charts.sequential_colour(n / largest), "", f"{r} × {c}: {n:,} customers")
             if n is not None else HeatCell("hidden", "#eeeeee", "", f"{r} × {c}: {hidden_note(minimum)}")
             for c, n in zip(table.col_labels, row)] for r, row in zip(table.row_labels, table.counts)]


def report_charts(model: ReportModel) -> dict[str, Markup]:
    """The report's charts by name, each a self-styled SVG that Jupyter displays inline (segkit.charts.Chart)."""
    return _charts(model)
