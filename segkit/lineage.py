"""Stable segment ids: each run continues its lineage, and its segments keep the ids and names of the matching
segments of its previous run.

A lineage is the stored runs on the same features with the same algorithm and k. A run's previous run is the
latest run of its lineage whose analysis_date is on or before its own (a rerun on the same date counts), so a
run as of an earlier date never looks forward. The previous centroids, put through the new run's transform, are
paired one-to-one with the new ones by `linear_sum_assignment` on their distances; a pair closer than
``match_threshold`` (in the new run's standardised units) keeps the previous id and name, a new centroid
without one gets an id above any the lineage used, and a previous segment left alone has disappeared. Without
a previous run the ids are 1..k and names come from the naming rules. See "Segments over time" in the README.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from segkit import store
from segkit.features import apply_transform
from segkit.warehouse import table_exists


@dataclass(frozen=True)
class SegmentMatch:
    """One row of segment_matches (without run_id)."""

    segment_id: int | None            # None when the previous segment disappeared
    segment_name: str | None          # filled by `match_rows` from the final names
    previous_segment_id: int | None   # None for a new segment
    previous_segment_name: str | None
    distance: float | None            # to the partner, or to the nearest centroid of the other run
    status: str                       # matched / new / disappeared


@dataclass(frozen=True)
class Matching:
    """How the segments of a new run map onto its previous run (same features, algorithm and k)."""

    previous_run_id: str | None
    segment_ids: tuple[int, ...]      # the id of each row of `centroids`, ascending
    centroids: np.ndarray             # the new run's centroids re-ordered to follow segment_ids
    matches: tuple[SegmentMatch, ...]
    threshold: float
    warning: str | None = None        # why ids and names start afresh, when earlier runs exist

    @property
    def kept_names(self) -> dict[int, str]:
        return {m.segment_id: m.previous_segment_name for m in self.matches if m.status == "matched"}


def lineage_runs(con: duckdb.DuckDBPyConnection, features: Sequence[str], algorithm: str, k: int,
                 on_or_before: date | None = None) -> list[str]:
    """The stored runs on these features with this algorithm and k, newest first (analysis_date desc, then
    created_at desc); only those with an analysis_date on or before `on_or_before` when it is given."""
    if not table_exists(con, "cluster_runs"):
        return []
    rows = con.execute("""select run_id, features from cluster_runs
                          where algorithm = $algorithm and chosen_k = $k
                              and ($on_or_before is null or analysis_date <= $on_or_before)
                          order by analysis_date desc nulls last, created_at desc, run_id desc""",
                       {"algorithm": algorithm, "k": int(k), "on_or_before": on_or_before}).fetchall()
    return [run_id for run_id, stored in rows if tuple(json.loads(stored)) == tuple(features)]


def latest_model(con: duckdb.DuckDBPyConnection, features: Sequence[str], algorithm: str, k: int | None,
                 on_or_before: date) -> str | None:
    """The model (a fit's run id) of the latest stored run on these features with this algorithm (and k, when given)
    whose analysis_date is on or before `on_or_before`: what a series continues. None when there is none."""
    if not table_exists(con, "cluster_runs"):
        return None
    runs = con.execute("""select * from cluster_runs
                          where algorithm = $algorithm and ($k is null or chosen_k = $k) and analysis_date <= $date
                          order by analysis_date desc, created_at desc, run_id desc""",
                       {"algorithm": algorithm, "k": k, "date": on_or_before}).df()
    for run in runs.itertuples():
        if tuple(json.loads(run.features)) == tuple(features):
            model = getattr(run, "model_run_id", None)  # runs stored before scored runs existed were all fits
            return run.run_id if model is None or pd.isna(model) else str(model)
    return None


def previous_run(con: duckdb.DuckDBPyConnection, features: Sequence[str], algorithm: str, k: int,
                 analysis_date: date | None) -> str | None:
    """The run a new run as of analysis_date continues: the latest of its lineage on or before that date
    (a rerun on the same date counts), or None. See the module docstring."""
    runs = lineage_runs(con, features, algorithm, k, analysis_date)
    return runs[0] if runs else None


def match_segments(con: duckdb.DuckDBPyConnection, features: Sequence[str], parameters: pd.DataFrame,
                   centroids: np.ndarray, threshold: float, algorithm: str,
                   analysis_date: date | None) -> Matching:
    """Give the new centroids (scaled by `parameters`, in id order 1..k) stable ids; see the module docstring."""
    centroids = np.asarray(centroids, dtype=float)
    k = len(centroids)
    previous = previous_run(con, features, algorithm, k, analysis_date)
    if previous is None:
        ids = tuple(range(1, k + 1))
        matches = tuple(SegmentMatch(i, None, None, None, None, "new") for i in ids)
        return Matching(None, ids, centroids, matches, threshold, _fresh_lineage_warning(con, algorithm, k))

    before = store.read_run(con, previous)  # on the same features, in the same order
    previous_ids = list(before.segment_ids)
    previous_names = dict(zip(before.segment_ids, before.segment_names))
    previous_scaled = apply_transform(parameters, before.centroid_values)
    distances = cdist(centroids, previous_scaled)
    new_rows, old_rows = linear_sum_assignment(distances)

    next_id = _max_segment_id(con, lineage_runs(con, features, algorithm, k)) + 1
    ids: list[int | None] = [None] * len(centroids)
    matches = []
    paired_old = set()
    for new, old in zip(new_rows, old_rows):
        if distances[new, old] <= threshold:
            ids[new] = previous_ids[old]
            paired_old.add(old)
            matches.append(SegmentMatch(previous_ids[old], None, previous_ids[old],
                                        str(previous_names[previous_ids[old]]), float(distances[new, old]), "matched"))
    for new in range(len(centroids)):  # in order of mean monetary_total, so new ids follow it too
        if ids[new] is None:
            ids[new], next_id = next_id, next_id + 1
            matches.append(SegmentMatch(ids[new], None, None, None, float(distances[new].min()), "new"))
    for old, old_id in enumerate(previous_ids):
        if old not in paired_old:
            matches.append(SegmentMatch(None, None, old_id, str(previous_names[old_id]),
                                        float(distances[:, old].min()), "disappeared"))
    order = np.argsort(ids)
    return Matching(previous, tuple(int(ids[i]) for i in order), centroids[order], tuple(matches), threshold)


def _fresh_lineage_warning(con: duckdb.DuckDBPyConnection, algorithm: str, k: int) -> str | None:
    """Why a run starts afresh, or None for the first run in the database (nothing to continue)."""
    if not table_exists(con, "cluster_runs") or not con.execute("select count(*) from cluster_runs").fetchall()[0][0]:
        return None
    return (f"No earlier run with the same features, algorithm and k ({algorithm}, k={k}); "
            "segment ids and names start afresh.")


def _max_segment_id(con: duckdb.DuckDBPyConnection, runs: Sequence[str]) -> int:
    """The largest segment id any of these runs used (in segment_centroids or segment_matches)."""
    used = con.execute("select max(segment_id) from segment_centroids where list_contains(?, run_id)",
                       [list(runs)]).fetchall()[0][0]
    if table_exists(con, "segment_matches"):
        recorded = con.execute("select max(segment_id) from segment_matches where list_contains(?, run_id)",
                               [list(runs)]).fetchall()[0][0]
        used = max(used or 0, recorded or 0)
    return int(used or 0)


def name_overrides(matching: Matching, user_names: Mapping[int, str] | None = None) -> dict[int, str]:
    """Names to impose when naming the new run: kept names of matched segments, and the user's (which win)."""
    user = {int(i): str(n) for i, n in (user_names or {}).items() if int(i) in matching.segment_ids}
    kept = {i: n for i, n in matching.kept_names.items() if i not in user and n not in user.values()}
    return {**kept, **user}


def match_rows(matching: Matching, names: Mapping[int, str]) -> pd.DataFrame:
    """The rows of segment_matches (without run_id), with the run's final segment names."""
    return pd.DataFrame([{
        "previous_run_id": matching.previous_run_id, "segment_id": m.segment_id,
        "segment_name": names.get(m.segment_id) if m.segment_id is not None else None,
        "previous_segment_id": m.previous_segment_id, "previous_segment_name": m.previous_segment_name,
        "distance": m.distance, "status": m.status,
    } for m in matching.matches])

