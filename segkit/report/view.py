"""The report's view model: plain records of everything the page shows, built by segkit.report.build."""

from __future__ import annotations

from dataclasses import dataclass, field

from segkit.migration import RefitSummary
from segkit.store import StoredRun


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
    name_rule: str = ""  # the naming rule the segment's medians met, with its own ratios (segkit.naming.name_rule)
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
    """A small count table with row and column labels; None cells are hidden (segkit.report.privacy)."""

    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    counts: tuple[tuple[int | None, ...], ...]


@dataclass(frozen=True)
class MigrationView:
    """Customers moving between segments from the previous run to this one."""

    previous_run_id: str
    current_run_id: str
    table: Table
    note: str = ""
    highlights: frozenset[tuple[int, int]] = frozenset()  # (row, column) cells of the flows that matter


@dataclass(frozen=True)
class HeatCell:
    """One cell of a table drawn as a heat map: its text, fill colour, a second line and a tooltip."""

    text: str
    colour: str
    note: str = ""
    title: str = ""


@dataclass(frozen=True)
class SampleRow:
    """One segment of the customer map's sample: the numbers behind its points."""

    name: str
    customers: int
    median_recency_days: float
    median_monetary_total: float


@dataclass(frozen=True)
class ReportModel:
    title: str
    generated_at: str
    run: StoredRun
    min_segment_size: int
    currency: str
    headline: str
    summary: tuple[str, ...]
    segments: tuple[SegmentCard, ...]
    k_rows: tuple[KRow, ...]
    feature_labels: tuple[str, ...]
    # the segment's median per feature, coloured better or worse for the business; None rows for suppressed segments
    feature_cells: tuple[tuple[HeatCell, ...] | None, ...]
    scatter: tuple[tuple[int, tuple[tuple[float, float], ...]], ...]  # (segment_id, points) from a sample
    scatter_sample_size: int
    rfm_grid: Table      # rows r_score 5..1, columns f_score 1..5
    crosstab: Table      # rows segments, columns rfm_segment
    quality: tuple[QualityRow, ...]
    warnings: tuple[str, ...]
    migration: MigrationView | None = None
    refit: RefitSummary | None = None    # what this run, a fit continuing its previous run, redefined
    versions: dict[str, str] = field(default_factory=dict)
    settings: dict[str, object] = field(default_factory=dict)  # the run's settings, paths without their folders
