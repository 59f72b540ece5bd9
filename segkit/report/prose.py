"""The report's words: the comparisons on a segment card, the headline and summary, the note under the migration
matrix, and what a hidden figure says. Numbers are written by segkit.formatting."""

from __future__ import annotations

import math
from typing import Mapping

import pandas as pd

from segkit.formatting import MISSING, days, money, number, percent
from segkit.migration import MigrationSummary
from segkit.naming import is_slipping_away
from segkit.report.view import Comparison, SegmentCard
from segkit.store import StoredRun

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


# For the business, is a higher value better (1), worse (-1) or neither (0)? The report colours by it.
FEATURE_DIRECTIONS = {
    "recency_days": -1, "frequency": 1, "monetary_total": 1, "tenure_days": 1, "avg_order_value": 1,
    "avg_days_between_orders": -1, "returns_total": -1, "return_rate": -1, "distinct_products": 1,
    "top_category_share": 0,
}


def comparisons(row: pd.Series, population: pd.Series, currency: str) -> tuple[Comparison, ...]:
    """The typical (median) customer of a segment against the typical customer overall, in words."""
    return (
        Comparison("Days since last order", days(row["median_recency_days"]), days(population["median_recency_days"]),
                   _relative(row["median_recency_days"], population["median_recency_days"], "more recent", "longer ago")),
        Comparison("Orders", number(row["median_frequency"]), number(population["median_frequency"]),
                   _relative(row["median_frequency"], population["median_frequency"], "fewer", "more")),
        Comparison("Total spend", money(row["median_monetary_total"], currency),
                   money(population["median_monetary_total"], currency),
                   _relative(row["median_monetary_total"], population["median_monetary_total"], "less", "more")),
    )


def _relative(value: float, base: float, lower: str, higher: str) -> str:
    value, base = float(value), float(base)
    if base <= 0 or math.isclose(value, base, rel_tol=0.05):
        return "about the same as the typical customer"
    ratio = value / base
    if ratio > 1:
        return f"{ratio:.1f}× the typical customer ({higher})"
    return f"{ratio:.2f}× the typical customer ({lower})"


def headline(cards: tuple[SegmentCard, ...]) -> str:
    """The page's title line: the share of customers that brings the most revenue."""
    shown = [c for c in cards if not c.suppressed]
    if not shown:
        return f"{len(cards)} segments, all too small to show."
    top = max(shown, key=lambda c: c.revenue_share or 0)
    return (f"{percent(top.customer_share)} of customers ({top.name}) bring "
            f"{percent(top.revenue_share)} of revenue")


def summary(cards: tuple[SegmentCard, ...], run: StoredRun, population: pd.Series, currency: str) -> tuple[str, ...]:
    """The executive summary: what was grouped, the segments that matter, the typical customer, what is hidden."""
    shown = [c for c in cards if not c.suppressed]
    features = ", ".join(FEATURE_LABELS.get(f, (f, ""))[0].lower() for f in run.features)
    lines = [f"We grouped {run.n_customers:,} customers into {run.chosen_k} segments "
             f"by {features or 'their purchase history'} ({run.algorithm}), using orders placed before "
             f"{run.analysis_date or ''}."]
    if shown:
        top = max(shown, key=lambda c: c.revenue_share or 0)
        lines.append(f"The most valuable segment, {top.name}, is {top.customers:,} customers "
                     f"({percent(top.customer_share)}) who bring {money(top.revenue, currency)} "
                     f"({percent(top.revenue_share)}) of revenue.")
        largest = max(shown, key=lambda c: c.customers or 0)
        if largest is not top:
            lines.append(f"The largest segment, {largest.name}, is {percent(largest.customer_share)} of customers "
                         f"and {percent(largest.revenue_share)} of revenue.")
        slipping = [c for c in shown if is_slipping_away(c.name)]
        if slipping:
            at_risk = sum(c.revenue or 0 for c in slipping)
            people = sum(c.customers or 0 for c in slipping)
            lines.append(f"{people:,} customers in segments that are drifting away "
                         f"({', '.join(c.name for c in slipping)}) spent {money(at_risk, currency)} in the past: "
                         "that is the revenue at risk and the win-back pool.")
    lines.append(f"The typical customer last ordered {days(population['median_recency_days'])} ago, has placed "
                 f"{number(population['median_frequency'])} orders and spent {money(population['median_monetary_total'], currency)} in total.")
    hidden = len(cards) - len(shown)
    if hidden:
        lines.append(f"{hidden} segment{'s' if hidden > 1 else ''} with too few customers "
                     f"{'are' if hidden > 1 else 'is'} listed without figures to protect privacy.")
    return tuple(lines)


def migration_note(summary: MigrationSummary, currency: str, matches: Mapping[str, int],
                   drift_checks: tuple[int, int]) -> str:
    """The words under the migration matrix: what moved, the flows that matter, segments new or gone (matches:
    segments per status), and drift (drift_checks: the checks past their threshold, and all checks)."""
    share = summary.moved / summary.customers_in_both if summary.customers_in_both else 0.0
    parts = [f"From {summary.from_analysis_date} to {summary.to_analysis_date}, {summary.moved:,} of "
             f"{summary.customers_in_both:,} customers ({share:.0%}) changed segment, taking "
             f"{money(summary.revenue_moved, currency)} of revenue with them; "
             f"{summary.new_customers:,} customers are new."]
    if summary.top_flows:
        flows = "; ".join(f"{f.from_segment} to {f.to_segment}: {f.customers:,} customers, "
                          f"{money(f.revenue, currency)} revenue"
                          + (" (slipping away)" if f.is_slipping else "") for f in summary.top_flows)
        parts.append(f"Flows that matter most: {flows}.")
    if matches.get("new") or matches.get("disappeared"):
        parts.append(f"{matches.get('new', 0)} segment(s) are new in this run and {matches.get('disappeared', 0)} "
                     "of the previous run's disappeared (see table segment_matches).")
    exceeded, checks = drift_checks
    if checks:
        parts.append("Drift since the previous model: " + (
            "significant, so refitting was advisable." if exceeded else "none significant."))
    return " ".join(parts)


def fewer(minimum: int) -> str:
    return (f"fewer than {minimum:,} customers, or hidden with it so that a smaller segment's size cannot be "
            "worked out from the total")


def hidden_note(minimum: int) -> str:
    return (f"hidden: fewer than {minimum:,} customers, or hidden so that such a cell "
            "cannot be worked out from the totals")


def measure(value: float | None, unit: str, currency: str) -> str:
    """A feature value in its unit (FEATURE_LABELS): days, a share, money or a count."""
    if value is None or pd.isna(value):
        return MISSING
    if unit == "days":
        return days(value)
    if unit == "share":
        return percent(value)
    if unit == "":
        return money(value, currency)
    return number(value)


def times(index: float) -> str:
    return MISSING if index is None or pd.isna(index) else f"{float(index):.2f}× all customers"
