"""Migration between two runs: the customers in both, who stayed and who moved, and the flows that matter; and,
apart, what a refit changed.

The counts come from segkit.store.migration (customers present in both runs; revenue is their monetary_total as
of the earlier run, the revenue that moved with them). Between a run and its previous run both sides are scored
with the previous run's model, so a move is a change in the customer, never in the segments. A fit that
continues a previous run redefines its segments: `summarize_refit` says which, by how much (their centroid
shift), and how many customers the new model regrouped; those are not moves. A flow into a segment whose customers are slipping away
(Lapsing repeat buyers, Dormant, Long gone...: `slipping_away` in segkit/rules/segment_names.toml) from one that is not
matters most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from segkit import store
from segkit.naming import is_slipping_away


@dataclass(frozen=True)
class Flow:
    from_segment: str
    to_segment: str
    from_label: str     # the matrix row of the flow
    to_label: str       # the matrix column of the flow
    customers: int
    revenue: float
    is_slipping: bool   # into a segment whose customers are slipping away, from one that is not


@dataclass(frozen=True)
class MigrationSummary:
    """The headline figures of a migration between two runs."""

    from_run_id: str
    to_run_id: str
    from_analysis_date: date | None
    to_analysis_date: date | None
    customers_in_both: int
    stayed: int
    moved: int
    revenue_moved: float
    new_customers: int           # in the later run only
    matrix: pd.DataFrame         # customers, rows from-segment names, columns to-segment names
    top_flows: tuple[Flow, ...]  # the flows that matter most, first


SHIFT_SHOWN = 0.005  # a centroid shift that rounds to 0.00 standard deviations on the report is no redefinition


@dataclass(frozen=True)
class SegmentChange:
    """One segment of a refit: kept (matched, with the shift of its centroid), new, or gone (disappeared)."""

    segment: str            # its name and id in the refit ("Regulars (3)"), or in the previous run when gone
    status: str             # matched / new / disappeared (segment_matches)
    shift: float | None     # centroid distance in standard deviations of the scaled features


@dataclass(frozen=True)
class RefitSummary:
    """A fit that redefined the segments of its previous run: a separate event from the customers' moves."""

    run_id: str
    previous_run_id: str
    changes: tuple[SegmentChange, ...]
    customers: int           # the run's customers
    regrouped: int           # of them, in another segment under the new model than under the previous one
    regrouped_revenue: float

    @property
    def redefined(self) -> tuple[SegmentChange, ...]:
        """The segments the refit changed: new, gone, or kept with a centroid that moved."""
        return tuple(c for c in self.changes if c.status != "matched" or (c.shift or 0) >= SHIFT_SHOWN)


def summarize_refit(con, run: store.StoredRun) -> RefitSummary | None:
    """What a fit changed against its previous run; None for a scored run or a run without a previous run."""
    if run.kind != "fit" or run.previous_run_id is None:
        return None
    matches = con.execute("""select segment_id, segment_name, previous_segment_id, previous_segment_name, distance,
                                    status from segment_matches where run_id = ?
                             order by coalesce(segment_id, previous_segment_id)""", [run.run_id]).df()
    changes = tuple(SegmentChange(f"{m.segment_name} ({int(m.segment_id)})" if m.status != "disappeared"
                                  else f"{m.previous_segment_name} ({int(m.previous_segment_id)})", str(m.status),
                                  None if pd.isna(m.distance) else float(m.distance))
                    for m in matches.itertuples())
    rows = store.refits(con, run.run_id)
    moved = rows[rows["previous_segment_id"] != rows["segment_id"]]
    return RefitSummary(run.run_id, run.previous_run_id, changes, int(rows["customers"].sum()),
                        int(moved["customers"].sum()), float(moved["revenue"].astype(float).sum()))


def summarize_migration(con, from_run_id: str, to_run_id: str,
                        top: int = 3, minimum: int = 1) -> MigrationSummary:
    """Headline figures; top_flows are the `top` largest moves by revenue of at least `minimum` customers,
    moves into a slipping-away segment (Lapsing repeat buyers, Dormant, Long gone...) first."""
    rows = store.migration(con, from_run_id, to_run_id)
    rows["revenue"] = rows["revenue"].astype(float)
    dates = dict(con.execute("select run_id, analysis_date from cluster_runs where list_contains(?, run_id)",
                             [[from_run_id, to_run_id]]).fetchall())
    new_customers = con.execute("""
        select count(*) from segment_assignment_history as t
        where t.run_id = $to and not exists (
            select 1 from segment_assignment_history as f where f.run_id = $from and f.customer_id = t.customer_id)
    """, {"to": to_run_id, "from": from_run_id}).fetchall()[0][0]
    from_labels = _labels(rows, "from")
    to_labels = _labels(rows, "to")
    matrix = (rows.assign(from_label=lambda d: d["from_segment_id"].map(from_labels),
                          to_label=lambda d: d["to_segment_id"].map(to_labels))
              .pivot_table(index="from_label", columns="to_label", values="customers", aggfunc="sum", fill_value=0)
              .reindex(index=list(from_labels.values()), columns=list(to_labels.values()), fill_value=0))
    stayed_mask = rows["from_segment_id"] == rows["to_segment_id"]
    moved = rows[~stayed_mask]
    flows = [Flow(r.from_segment_name, r.to_segment_name, from_labels[int(r.from_segment_id)],
                  to_labels[int(r.to_segment_id)], int(r.customers), float(r.revenue),
                  is_slipping_away(r.to_segment_name) and not is_slipping_away(r.from_segment_name))
             for r in moved.itertuples() if r.customers >= minimum]
    flows.sort(key=lambda f: (not f.is_slipping, -f.revenue, -f.customers))
    return MigrationSummary(from_run_id, to_run_id, dates.get(from_run_id), dates.get(to_run_id),
                            int(rows["customers"].sum()), int(rows.loc[stayed_mask, "customers"].sum()),
                            int(moved["customers"].sum()), float(moved["revenue"].sum()), int(new_customers),
                            matrix, tuple(flows[:top]))


def _labels(rows: pd.DataFrame, side: str) -> dict[int, str]:
    pairs = rows[[f"{side}_segment_id", f"{side}_segment_name"]].drop_duplicates().sort_values(f"{side}_segment_id")
    return {int(i): f"{n} ({int(i)})" for i, n in pairs.itertuples(index=False)}
