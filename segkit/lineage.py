"""Segments over time: stable segment ids, migration between runs, and drift of the features.

Each clustering run calls three steps of this module inside its write transaction
(see segkit.clustering.run_clustering):

1. `match_segments`, right after the centroids are ordered. A run belongs to a lineage: the stored runs on
   the same features, the same algorithm and the same k. Its previous run is the latest run of its lineage
   whose analysis_date is on or before its own (ordered by analysis_date desc, then created_at desc; a run
   on the same date is a rerun and still counts), so a run built as of an earlier date never looks forward
   to a later one. The previous centroids, stored in original units, are put through the NEW run's
   transform, and every new centroid is paired with one previous centroid by scipy's
   ``linear_sum_assignment`` on the Euclidean distance matrix (optimal one-to-one). A pair closer than the
   match threshold keeps the previous id and name (``matched``); a new centroid without a pair that close
   gets a new id, one above the largest id ever used in the lineage (``new``); a previous segment left
   without a partner is recorded as ``disappeared``. Without a previous run (a first run, or a change of
   features, algorithm or k) the run starts a fresh lineage: ids 1..k ordered by mean monetary_total,
   descending, and names from the naming rules; when other runs are stored, a run warning says so. Ids
   and names are never carried across a change of k or algorithm: with a different number of segments
   the nearest centroids are often different customers, and an old name on them misleads.
2. `check_drift`, against that same previous run (none for a fresh lineage).
3. `record_run`, after the run's rows are written: tables ``segment_matches``, ``feature_reference_bins``,
   ``drift_checks`` and ``segment_migration``.

Thresholds (`Thresholds`, taken from the Settings fields of the same names, so a flag, a SEGKIT_* variable
or segkit.toml can set each):

- ``match_threshold`` (SEGKIT_MATCH_THRESHOLD, default 1.0): the largest centroid distance, in the new
  run's standardised units, at which a segment still counts as the same segment. 1.0 is one standard
  deviation of one feature; refits of unchanged data move centroids by far less, and segments of one run
  are typically 1.5 to 3 apart.
- ``drift_psi_threshold`` (SEGKIT_DRIFT_PSI_THRESHOLD, default 0.25): see Drift.
- ``drift_distance_ratio_threshold`` (SEGKIT_DRIFT_DISTANCE_RATIO_THRESHOLD, default 1.25): see Drift.

Drift. At fit time the deciles of every transformed feature over the fit sample are stored as bins
(``feature_reference_bins``: bin i holds values in (lower_edge, upper_edge]; tied deciles are merged, so
a feature can have fewer than 10 bins). Current customers (``customer_rfm`` now) are transformed with the
same run's transform and counted in the same bins. Per feature the Population Stability Index is

    PSI = sum over bins of (current_share - reference_share) * ln(current_share / reference_share)

with shares floored at 0.0001 so empty bins stay finite. Usual reading: below 0.1 no real change,
0.1 to 0.25 a moderate shift, above 0.25 a significant shift. The second figure is the mean distance of
current customers to their nearest centroid divided by the same mean at fit time; above 1.25 customers
sit a quarter farther from every segment than the model was built for. Either threshold exceeded: a refit
is advised (a warning in the run and in the report).

Migration between any two runs, from ``segment_assignment_history`` (customers present in both runs;
``revenue`` is their monetary_total as of the FROM run, i.e. the revenue that moved with them)::

    select f.run_id as from_run_id, t.run_id as to_run_id,
        f.segment_id as from_segment_id, f.segment_name as from_segment_name,
        t.segment_id as to_segment_id, t.segment_name as to_segment_name,
        count(*) as customers, sum(f.monetary_total) as revenue
    from segment_assignment_history as f
    join segment_assignment_history as t on t.customer_id = f.customer_id
    where f.run_id = $from_run_id and t.run_id = $to_run_id
    group by all

Every run stores this against its previous run (as defined in step 1) in ``segment_migration``;
`migration` runs it for any two runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from datetime import date
from typing import Any, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.features import apply_transform, scaled_sql
from segkit.naming import is_slipping_away, money
from segkit.segments_io import FEATURE_TABLE, insert_rows
from segkit.warehouse import table_exists

PSI_FLOOR = 1e-4
DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))

TABLES = {
    "segment_matches": """run_id varchar, previous_run_id varchar, segment_id integer, segment_name varchar,
        previous_segment_id integer, previous_segment_name varchar, distance double, status varchar""",
    "segment_migration": """from_run_id varchar, to_run_id varchar, from_segment_id integer,
        from_segment_name varchar, to_segment_id integer, to_segment_name varchar, customers integer,
        revenue decimal(18,2)""",
    "feature_reference_bins": """run_id varchar, feature varchar, feature_order integer, bin integer,
        lower_edge double, upper_edge double, reference_share double""",
    "drift_checks": """run_id varchar, reference_run_id varchar, analysis_date date, reference_analysis_date date,
        feature varchar, statistic varchar, value double, threshold double, exceeds_threshold boolean""",
}


@dataclass(frozen=True)
class Thresholds:
    """The documented thresholds of this module (see the module docstring); defaults are Settings'."""

    match_threshold: float = Settings.match_threshold
    drift_psi_threshold: float = Settings.drift_psi_threshold
    drift_distance_ratio_threshold: float = Settings.drift_distance_ratio_threshold


def latest_run_id(con) -> str | None:
    """The most recent run (by created_at), or None."""
    row = con.execute("select run_id from cluster_runs order by created_at desc, run_id desc limit 1").fetchone()
    return row[0] if row else None


def thresholds(settings: Settings) -> Thresholds:
    """The thresholds of a run's Settings (flag, SEGKIT_* variable, segkit.toml, default)."""
    return Thresholds(**{item.name: getattr(settings, item.name) for item in fields(Thresholds)})


# ---------------------------------------------------------------------------------------------- matching

@dataclass(frozen=True)
class SegmentMatch:
    """One row of segment_matches (without run_id)."""

    segment_id: int | None            # None when the previous segment disappeared
    segment_name: str | None          # filled by record_run from the final names
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

    rows = con.execute("select segment_id, segment_name, feature, value from segment_centroids where run_id = ?",
                       [previous]).df()
    wide = rows.pivot(index="segment_id", columns="feature", values="value").sort_index()
    previous_ids = [int(i) for i in wide.index]
    previous_names = rows.drop_duplicates("segment_id").set_index("segment_id")["segment_name"]
    previous_scaled = apply_transform(parameters, wide[list(parameters["feature"])].to_numpy(dtype=float))
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


# ------------------------------------------------------------------------------------------------- drift

@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    exceeds_threshold: bool


@dataclass(frozen=True)
class DriftReport:
    """Current customer_rfm against the data a run was fitted on."""

    reference_run_id: str
    reference_analysis_date: date | None
    analysis_date: date | None
    features: tuple[FeatureDrift, ...]   # empty when the run stored no reference bins
    mean_distance: float
    reference_mean_distance: float
    distance_ratio: float
    thresholds: Thresholds
    refit_advised: bool
    message: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "reference_run_id": self.reference_run_id,
            "reference_analysis_date": str(self.reference_analysis_date),
            "analysis_date": str(self.analysis_date),
            "psi": {d.feature: round(d.psi, 4) for d in self.features},
            "mean_distance": round(self.mean_distance, 4),
            "reference_mean_distance": round(self.reference_mean_distance, 4),
            "distance_ratio": round(self.distance_ratio, 4),
            "psi_threshold": self.thresholds.drift_psi_threshold,
            "distance_ratio_threshold": self.thresholds.drift_distance_ratio_threshold,
            "refit_advised": self.refit_advised,
            "message": self.message,
        }


def scaled_features_sql(parameters: pd.DataFrame) -> str:
    """customer_id, feature, value_scaled for every customer of customer_rfm, with a stored transform."""
    return "\n        union all ".join(
        f"select customer_id, '{row.feature}' as feature, {scaled_sql(row)} as value_scaled from {FEATURE_TABLE}"
        for _, row in parameters.iterrows())


def _run_parameters(con: duckdb.DuckDBPyConnection, run_id: str) -> pd.DataFrame:
    return con.execute("select * from feature_transform where run_id = ? order by feature_order", [run_id]).df()


def record_reference_bins(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Store the decile bins of each transformed feature over the run's fit sample (customer_segments)."""
    parameters = _run_parameters(con, run_id)
    features = list(parameters["feature"])
    fit = f"""select v.* from ({scaled_features_sql(parameters)}) as v
              join customer_segments as s on s.customer_id = v.customer_id and s.is_in_fit_sample"""
    edges = con.execute(
        f"select feature, quantile_cont(value_scaled, {list(DECILES)}) from ({fit}) as f group by all").fetchall()
    rows = []
    for feature, cuts in edges:
        cuts = sorted(set(float(c) for c in cuts))
        bounds = [None, *cuts, None]
        for i in range(len(bounds) - 1):
            rows.append((run_id, feature, features.index(feature) + 1, i + 1, bounds[i], bounds[i + 1]))
    bins = pd.DataFrame(rows, columns=["run_id", "feature", "feature_order", "bin", "lower_edge", "upper_edge"])
    con.register("segkit_bins", bins)
    shares = _bin_shares(con, run_id, fit, "segkit_bins")
    con.unregister("segkit_bins")
    bins = bins.merge(shares.rename(columns={"share": "reference_share"}), on=["feature", "bin"], how="left")
    con.execute(f"create table if not exists feature_reference_bins ({TABLES['feature_reference_bins']})")
    insert_rows(con, "feature_reference_bins", bins)


def _bin_shares(con: duckdb.DuckDBPyConnection, run_id: str, values_sql: str,
                bins_table: str = "feature_reference_bins") -> pd.DataFrame:
    """Share of the rows of values_sql (customer_id, feature, value_scaled) in each reference bin of run_id."""
    return con.execute(f"""
        with binned as (
            select b.feature, b.bin, count(v.customer_id) as customers
            from {bins_table} as b
            left join ({values_sql}) as v on v.feature = b.feature
                and (b.lower_edge is null or v.value_scaled > b.lower_edge)
                and (b.upper_edge is null or v.value_scaled <= b.upper_edge)
            where b.run_id = $run_id
            group by all
        )
        select feature, bin, customers / sum(customers) over (partition by feature) as share
        from binned order by feature, bin
    """, {"run_id": run_id}).df()


def check_drift(con: duckdb.DuckDBPyConnection, reference_run_id: str | None = None,
                limits: Thresholds | None = None) -> DriftReport | None:
    """Compare customer_rfm now with the data run reference_run_id (default: the latest) was fitted on."""
    limits = limits or Thresholds()
    if not table_exists(con, "cluster_runs") or not table_exists(con, FEATURE_TABLE):
        return None
    reference_run_id = reference_run_id or latest_run_id(con)
    if reference_run_id is None:
        return None
    parameters = _run_parameters(con, reference_run_id)
    features = list(parameters["feature"])
    values = scaled_features_sql(parameters)
    psi_rows = []
    if table_exists(con, "feature_reference_bins"):
        current = _bin_shares(con, reference_run_id, values)
        reference = con.execute("""select feature, bin, reference_share from feature_reference_bins
                                   where run_id = ?""", [reference_run_id]).df()
        joined = reference.merge(current, on=["feature", "bin"], how="left").fillna({"share": 0.0})
        for feature in features:
            part = joined[joined["feature"] == feature]
            if part.empty:
                continue
            psi = population_stability_index(part["reference_share"].to_numpy(), part["share"].to_numpy())
            psi_rows.append(FeatureDrift(feature, psi, psi > limits.drift_psi_threshold))
    mean_distance = con.execute(f"""
        with distances as (
            select v.customer_id, c.segment_id,
                sum((v.value_scaled - c.value_scaled) * (v.value_scaled - c.value_scaled)) as squared
            from ({values}) as v
            join segment_centroids as c on c.feature = v.feature and c.run_id = $run_id
            group by all
        )
        select avg(sqrt(nearest)) from (select customer_id, min(squared) as nearest from distances group by all)
    """, {"run_id": reference_run_id}).fetchall()[0][0]
    reference_mean, reference_date = con.execute("""
        select avg(h.distance_to_centroid), any_value(r.analysis_date)
        from cluster_runs as r left join segment_assignment_history as h using (run_id)
        where r.run_id = ?""", [reference_run_id]).fetchall()[0]
    analysis_date = con.execute(f"select max(analysis_date) from {FEATURE_TABLE}").fetchall()[0][0]
    ratio = float(mean_distance) / float(reference_mean) if reference_mean else math.nan
    too_far = ratio > limits.drift_distance_ratio_threshold
    shifted = [d for d in psi_rows if d.exceeds_threshold]
    advised = bool(shifted) or too_far
    return DriftReport(reference_run_id, reference_date, analysis_date, tuple(psi_rows), float(mean_distance),
                       float(reference_mean or math.nan), ratio, limits, advised,
                       _drift_message(reference_run_id, reference_date, analysis_date, psi_rows, ratio, limits,
                                      advised))


def population_stability_index(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two share vectors over the same bins; shares are floored at PSI_FLOOR."""
    p = np.maximum(np.asarray(reference, dtype=float), PSI_FLOOR)
    q = np.maximum(np.asarray(current, dtype=float), PSI_FLOOR)
    return float(((q - p) * np.log(q / p)).sum())


def _drift_message(run_id, reference_date, analysis_date, psi_rows, ratio, limits, advised) -> str:
    psi_text = ", ".join(f"{d.feature} {d.psi:.2f}" for d in psi_rows) or "no reference bins stored"
    figures = (f"PSI {psi_text} (threshold {limits.drift_psi_threshold:g}); mean distance to the centroids "
               f"{ratio:.2f}x the fit-time mean (threshold {limits.drift_distance_ratio_threshold:g})")
    if advised:
        return (f"The customers of {analysis_date} have drifted from the data run {run_id} ({reference_date}) was "
                f"fitted on: {figures}. A refit is advisable.")
    return f"No significant drift from run {run_id} ({reference_date}): {figures}."


# ------------------------------------------------------------------------------------- recording a run

def record_run(con: duckdb.DuckDBPyConnection, run_id: str, matching: Matching, names: Mapping[int, str],
               drift: DriftReport | None) -> None:
    """Append the run's matches, reference bins, drift figures and migration (inside the run's transaction)."""
    for table, columns in TABLES.items():
        con.execute(f"create table if not exists {table} ({columns})")
    matches = pd.DataFrame([{
        "run_id": run_id, "previous_run_id": matching.previous_run_id, "segment_id": m.segment_id,
        "segment_name": names.get(m.segment_id) if m.segment_id is not None else None,
        "previous_segment_id": m.previous_segment_id, "previous_segment_name": m.previous_segment_name,
        "distance": m.distance, "status": m.status,
    } for m in matching.matches])
    insert_rows(con, "segment_matches", matches)
    record_reference_bins(con, run_id)
    if drift is not None:
        insert_rows(con, "drift_checks", drift_rows(run_id, drift))
    if matching.previous_run_id is not None:
        con.execute(f"insert into segment_migration by name {MIGRATION_SQL}",
                    {"from_run_id": matching.previous_run_id, "to_run_id": run_id})


def drift_rows(run_id: str, drift: DriftReport) -> pd.DataFrame:
    common = {"run_id": run_id, "reference_run_id": drift.reference_run_id, "analysis_date": drift.analysis_date,
              "reference_analysis_date": drift.reference_analysis_date}
    rows = [{**common, "feature": d.feature, "statistic": "psi", "value": d.psi,
             "threshold": drift.thresholds.drift_psi_threshold, "exceeds_threshold": d.exceeds_threshold}
            for d in drift.features]
    rows.append({**common, "feature": None, "statistic": "mean_distance_ratio", "value": drift.distance_ratio,
                 "threshold": drift.thresholds.drift_distance_ratio_threshold,
                 "exceeds_threshold": drift.distance_ratio > drift.thresholds.drift_distance_ratio_threshold})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- migration

MIGRATION_SQL = """
    select f.run_id as from_run_id, t.run_id as to_run_id,
        f.segment_id as from_segment_id, f.segment_name as from_segment_name,
        t.segment_id as to_segment_id, t.segment_name as to_segment_name,
        cast(count(*) as integer) as customers, cast(sum(f.monetary_total) as decimal(18, 2)) as revenue
    from segment_assignment_history as f
    join segment_assignment_history as t on t.customer_id = f.customer_id
    where f.run_id = $from_run_id and t.run_id = $to_run_id
    group by all
    order by from_segment_id, to_segment_id
"""


def migration(con: duckdb.DuckDBPyConnection, from_run_id: str, to_run_id: str) -> pd.DataFrame:
    """Customers and revenue moving from each segment of one run to each segment of another (any two runs)."""
    return con.execute(MIGRATION_SQL, {"from_run_id": from_run_id, "to_run_id": to_run_id}).df()


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


def summarize_migration(con: duckdb.DuckDBPyConnection, from_run_id: str, to_run_id: str,
                        top: int = 3, minimum: int = 1) -> MigrationSummary:
    """Headline figures; top_flows are the `top` largest moves by revenue of at least `minimum` customers,
    moves into a slipping-away segment (At risk, Hibernating, Lost...) first."""
    rows = migration(con, from_run_id, to_run_id)
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


def migration_view(con: duckdb.DuckDBPyConnection, run_id: str, minimum: int = 1, currency: str = ""):
    """The report's migration block for run_id against its previous run, or None when there is none.

    Cells with fewer than `minimum` customers are suppressed (None), like the report's other small groups.
    """
    from segkit.report import MigrationView, Table

    if not table_exists(con, "segment_matches"):
        return None
    previous = con.execute("select any_value(previous_run_id) from segment_matches where run_id = ?",
                           [run_id]).fetchall()[0][0]
    if previous is None:
        return None
    summary = summarize_migration(con, previous, run_id, minimum=minimum)
    counts = tuple(tuple(int(n) if n >= minimum or n == 0 else None for n in row)
                   for row in summary.matrix.to_numpy())
    rows, columns = list(summary.matrix.index), list(summary.matrix.columns)
    table = Table(tuple(rows), tuple(columns), counts)
    highlights = frozenset((rows.index(f.from_label), columns.index(f.to_label)) for f in summary.top_flows)
    return MigrationView(previous, run_id, table, migration_note(con, summary, run_id, currency), highlights)


def migration_note(con: duckdb.DuckDBPyConnection, summary: MigrationSummary, run_id: str,
                   currency: str = "") -> str:
    """The words under the migration matrix: what moved, the flows that matter, and drift."""
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
    if table_exists(con, "segment_matches"):
        statuses = con.execute("""select status, count(*) from segment_matches where run_id = ?
                                  group by all""", [run_id]).fetchall()
        counts = dict(statuses)
        if counts.get("new") or counts.get("disappeared"):
            parts.append(f"{counts.get('new', 0)} segment(s) are new in this run and {counts.get('disappeared', 0)} "
                         "of the previous run's disappeared (see table segment_matches).")
    if table_exists(con, "drift_checks"):
        drifted = con.execute("""select count(*) filter (where exceeds_threshold), count(*) from drift_checks
                                 where run_id = ?""", [run_id]).fetchall()[0]
        if drifted[1]:
            parts.append("Drift since the previous model: " + (
                "significant, so refitting was advisable." if drifted[0] else "none significant."))
    return " ".join(parts)


