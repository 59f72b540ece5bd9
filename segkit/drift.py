"""Drift: how far the customers of customer_rfm now are from the data a run was fitted on.

At fit time the deciles of every transformed feature over the fit sample are stored as bins
(``feature_reference_bins``; bin i holds values in (lower_edge, upper_edge], tied deciles merged). The current
customers, transformed with the same run's transform, are counted in the same bins, and per feature the
Population Stability Index is ``sum((current - reference) * ln(current / reference))`` over the bins, shares
floored at PSI_FLOOR so that empty bins stay finite (below 0.1 no real change, above 0.25 a significant
shift). The second figure is the mean distance of the current customers to their nearest centroid over the
same mean at fit time. Past either threshold a refit is advised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from segkit import sql, store
from segkit.config import Settings
from segkit.feature_mart import FEATURE_TABLE
from segkit.warehouse import table_exists

PSI_FLOOR = 1e-4
DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))


@dataclass(frozen=True)
class Thresholds:
    """The thresholds of segments over time; each defaults to the Settings field of the same name."""

    match_threshold: float = Settings.match_threshold
    drift_psi_threshold: float = Settings.drift_psi_threshold
    drift_distance_ratio_threshold: float = Settings.drift_distance_ratio_threshold


def thresholds(settings: Settings) -> Thresholds:
    """The thresholds of a run's Settings (flag, SEGKIT_* variable, segkit.toml, default)."""
    return Thresholds(**{item.name: getattr(settings, item.name) for item in fields(Thresholds)})


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


def reference_bins(con, transform: pd.DataFrame, fit_customers: str) -> pd.DataFrame:
    """The rows of feature_reference_bins (without run_id): the decile bins of each transformed feature over the
    fit sample (`fit_customers`, a relation of customer ids), and the sample's share in each."""
    features = list(transform["feature"])
    fit = f"""select v.* from ({sql.scaled_values_sql(transform, FEATURE_TABLE)}) as v
              join {fit_customers} as s on s.customer_id = v.customer_id"""
    edges = con.execute(
        f"select feature, quantile_cont(value_scaled, {list(DECILES)}) from ({fit}) as f group by all").fetchall()
    rows = []
    for feature, cuts in edges:
        cuts = sorted(set(float(c) for c in cuts))
        bounds = [None, *cuts, None]
        for i in range(len(bounds) - 1):
            rows.append((feature, features.index(feature) + 1, i + 1, bounds[i], bounds[i + 1]))
    bins = pd.DataFrame(rows, columns=["feature", "feature_order", "bin", "lower_edge", "upper_edge"])
    con.register("segkit_bins", bins)
    shares = _bin_shares(con, "segkit_bins", fit)
    con.unregister("segkit_bins")
    return bins.merge(shares.rename(columns={"share": "reference_share"}), on=["feature", "bin"], how="left")


def _bin_shares(con, bins: str, values_sql: str, parameters: dict[str, Any] | None = None) -> pd.DataFrame:
    """Share of the rows of values_sql (customer_id, feature, value_scaled) in each of the bins."""
    return con.execute(f"""
        with binned as (
            select b.feature, b.bin, count(v.customer_id) as customers
            from {bins} as b
            left join ({values_sql}) as v on v.feature = b.feature
                and (b.lower_edge is null or v.value_scaled > b.lower_edge)
                and (b.upper_edge is null or v.value_scaled <= b.upper_edge)
            group by all
        )
        select feature, bin, customers / sum(customers) over (partition by feature) as share
        from binned order by feature, bin
    """, *([parameters] if parameters else [])).df()


def check_drift(con, reference_run_id: str | None = None, limits: Thresholds | None = None) -> DriftReport | None:
    """Compare customer_rfm now with the data run reference_run_id (default: the latest) was fitted on (for a run
    scored with another run's model, the data of that fit); None when there is no run or no feature mart."""
    limits = limits or Thresholds()
    if not table_exists(con, FEATURE_TABLE) or store.latest_run_id(con) is None:
        return None
    run = store.read_run(con, reference_run_id)
    if run.model_run_id != run.run_id:  # a scored run: its model was fitted on the data of another run
        run = store.read_run(con, run.model_run_id)
    psi_rows = _feature_drift(con, run, limits)
    scored = sql.nearest_segment_sql(run.transform, run.centroids, run.segment_ids, FEATURE_TABLE)
    mean_distance = con.execute(f"select avg(distance_to_centroid) from ({scored}) as scored").fetchall()[0][0]
    reference_mean = con.execute("select avg(distance_to_centroid) from segment_assignment_history where run_id = ?",
                                 [run.run_id]).fetchall()[0][0]
    analysis_date = con.execute(f"select max(analysis_date) from {FEATURE_TABLE}").fetchall()[0][0]
    ratio = float(mean_distance) / float(reference_mean) if reference_mean else math.nan
    advised = any(d.exceeds_threshold for d in psi_rows) or ratio > limits.drift_distance_ratio_threshold
    return DriftReport(run.run_id, run.analysis_date, analysis_date, tuple(psi_rows), float(mean_distance),
                       float(reference_mean or math.nan), ratio, limits, advised,
                       _drift_message(run.run_id, run.analysis_date, analysis_date, psi_rows, ratio, limits, advised))


def _feature_drift(con, run: store.StoredRun, limits: Thresholds) -> list[FeatureDrift]:
    """PSI of every feature of the run that has reference bins."""
    if not table_exists(con, "feature_reference_bins"):
        return []
    reference_bins = "(select * from feature_reference_bins where run_id = $run_id)"
    current = _bin_shares(con, reference_bins, sql.scaled_values_sql(run.transform, FEATURE_TABLE),
                          {"run_id": run.run_id})
    reference = con.execute("select feature, bin, reference_share from feature_reference_bins where run_id = ?",
                            [run.run_id]).df()
    joined = reference.merge(current, on=["feature", "bin"], how="left").fillna({"share": 0.0})
    psi_rows = []
    for feature in run.transform["feature"]:
        part = joined[joined["feature"] == feature]
        if not part.empty:
            psi = population_stability_index(part["reference_share"].to_numpy(), part["share"].to_numpy())
            psi_rows.append(FeatureDrift(feature, psi, psi > limits.drift_psi_threshold))
    return psi_rows


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


def drift_rows(drift: DriftReport) -> pd.DataFrame:
    """The rows of drift_checks (without run_id): PSI per feature, then the mean distance ratio."""
    common = {"reference_run_id": drift.reference_run_id, "analysis_date": drift.analysis_date,
              "reference_analysis_date": drift.reference_analysis_date}
    rows = [{**common, "feature": d.feature, "statistic": "psi", "value": d.psi,
             "threshold": drift.thresholds.drift_psi_threshold, "exceeds_threshold": d.exceeds_threshold}
            for d in drift.features]
    rows.append({**common, "feature": None, "statistic": "mean_distance_ratio", "value": drift.distance_ratio,
                 "threshold": drift.thresholds.drift_distance_ratio_threshold,
                 "exceeds_threshold": drift.distance_ratio > drift.thresholds.drift_distance_ratio_threshold})
    return pd.DataFrame(rows)
