"""Segments over time: stable ids across runs, migration, drift, and the report's migration block."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from segkit import drift, lineage, store
from segkit.cli import cli
from segkit.clustering import run_clustering
from segkit.config import Settings, load_settings
from segkit.errors import SegkitError
from segkit.features import apply_transform
from segkit.migration import summarize_migration, summarize_refit
from segkit.report import build_report_model
from segkit.snapshots import describe, month_starts, run_snapshots
from segkit.warehouse import connect
from tests.conftest import ROOT, dbt_build

pytestmark = pytest.mark.slow

EARLIER = "2011-06-01"


def fast_settings(db: Path, **overrides) -> Settings:
    return Settings(db_path=db, project_dir=ROOT, **{"k": 5, "stability_resamples": 2, "write_report": False,
                                                     **overrides})


def query(db: Path, sql: str, params=None) -> pd.DataFrame:
    with connect(db, read_only=True) as con:
        return con.execute(sql, params or []).df()


@pytest.fixture(scope="module")
def two_runs(demo_db, tmp_path_factory) -> tuple[Path, str, str]:
    """Run 1 rebuilt as of EARLIER, run 2 on the demo data as shipped (analysis date at its end)."""
    db = tmp_path_factory.mktemp("history") / "two_runs.duckdb"
    shutil.copy(demo_db, db)
    dbt_build(db, analysis_date=EARLIER)
    first = run_clustering(fast_settings(db)).run_id
    dbt_build(db)
    second = run_clustering(fast_settings(db)).run_id
    return db, first, second


def test_matching_segments_keep_their_ids_and_names(two_runs):
    db, first, second = two_runs
    matches = query(db, "select * from segment_matches where run_id = ?", [second])
    assert set(matches["previous_run_id"]) == {first}
    matched = matches[matches["status"] == "matched"]
    assert len(matched) >= 4
    assert (matched["segment_id"] == matched["previous_segment_id"]).all()
    assert (matched["segment_name"] == matched["previous_segment_name"]).all()
    assert (matched["distance"] <= drift.Thresholds().match_threshold).all()
    # Each kept id is the optimal one-to-one pairing of centroids in the new run's scaled space.
    with connect(db, read_only=True) as con:
        transform = con.execute("select * from feature_transform where run_id = ? order by feature_order",
                                [second]).df()
        centroids = {run: con.execute("""select segment_id, feature, value, value_scaled from segment_centroids
                                         where run_id = ?""", [run]).df() for run in (first, second)}
    features = list(transform["feature"])
    new = centroids[second].pivot(index="segment_id", columns="feature", values="value_scaled")[features]
    old = centroids[first].pivot(index="segment_id", columns="feature", values="value")[features]
    old_scaled = apply_transform(transform, old.to_numpy())
    for row in matched.itertuples():
        gaps = np.linalg.norm(old_scaled - new.loc[row.segment_id].to_numpy(), axis=1)
        assert gaps[list(old.index).index(row.segment_id)] == pytest.approx(row.distance)
    assert query(db, "select count(*) as n from segment_matches where run_id = ? and previous_run_id is null",
                 [first])["n"].iloc[0] == 5


def test_migration_balances_with_the_customers_in_both_runs(two_runs):
    db, first, second = two_runs
    migration = query(db, "select * from segment_migration where to_run_id = ?", [second])
    both = query(db, """select count(*) as customers, sum(f.monetary_total) as revenue
                        from segment_assignment_history as f join segment_assignment_history as t using (customer_id)
                        where f.run_id = ? and t.run_id = ?""", [first, second])
    assert set(migration["from_run_id"]) == {first}
    assert migration["customers"].sum() == both["customers"].iloc[0] > 2_000
    assert float(migration["revenue"].sum()) == pytest.approx(float(both["revenue"].iloc[0]))
    with connect(db, read_only=True) as con:
        again = store.migration(con, first, second)
        summary = summarize_migration(con, first, second)
    assert again["customers"].sum() == migration["customers"].sum()
    assert summary.stayed + summary.moved == summary.customers_in_both == int(summary.matrix.to_numpy().sum())
    # Customers whose first purchase is after EARLIER are only in the second run.
    customers = query(db, "select count(*) as n from segment_assignment_history where run_id = ?", [second])
    assert summary.new_customers == customers["n"].iloc[0] - summary.customers_in_both > 0


def test_the_report_shows_the_migration_against_the_previous_run(two_runs):
    db, first, second = two_runs
    with connect(db, read_only=True) as con:
        model = build_report_model(con, None, fast_settings(db, currency="£"))
    assert model.migration is not None
    assert "£" in model.migration.note, "revenue moved is shown in the report's currency"
    assert (model.migration.previous_run_id, model.migration.current_run_id) == (first, second)
    assert "changed segment" in model.migration.note and "Drift since the previous model" in model.migration.note
    table = model.migration.table
    assert model.migration.highlights, "the flows that matter are highlighted in the matrix"
    for row, column in model.migration.highlights:
        assert row != column, "a highlighted flow moves between two different segments"
        assert table.counts[row][column], "a highlighted cell shows its count"


def test_unmatched_segments_get_new_ids_and_disappeared_ones_are_recorded(two_runs, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(two_runs[0], db)
    with connect(db) as con:  # a tenth of the customers gone, so the refit's centroids move a little
        con.execute("delete from customer_rfm where hash(customer_id) % 10 = 0")
    # Nothing is close enough to count as the same segment.
    run = run_clustering(fast_settings(db, match_threshold=0.000001))
    matches = query(db, "select * from segment_matches where run_id = ? order by segment_id", [run.run_id])
    assert set(matches["previous_run_id"]) == {two_runs[2]}
    assert list(matches["status"].value_counts().sort_index().items()) == [("disappeared", 5), ("new", 5)]
    used = int(query(db, "select max(segment_id) as n from segment_centroids where run_id <> ?",
                     [run.run_id])["n"].iloc[0])
    assert sorted(s.segment_id for s in run.segments) == list(range(used + 1, used + 6))
    assert query(db, "select count(*) as n from customer_segments where segment_id <= ?", [used])["n"].iloc[0] == 0


def test_runs_on_other_features_are_never_matched(two_runs, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(two_runs[0], db)
    run = run_clustering(fast_settings(db, k=3, features=("recency_days", "frequency")))
    matches = query(db, "select * from segment_matches where run_id = ?", [run.run_id])
    assert matches["previous_run_id"].isna().all() and sorted(matches["segment_id"]) == [1, 2, 3]
    assert query(db, "select count(*) as n from segment_migration where to_run_id = ?", [run.run_id])["n"].iloc[0] == 0


def fresh_start(db: Path, run_id: str) -> bool:
    """True when run_id started a fresh lineage: no previous run, ids 1..k, no migration and no drift rows."""
    matches = query(db, "select * from segment_matches where run_id = ? order by segment_id", [run_id])
    stored = {table: query(db, f"select count(*) as n from {table} where {column} = ?", [run_id])["n"].iloc[0]
              for table, column in (("segment_migration", "to_run_id"), ("drift_checks", "run_id"))}
    return (matches["previous_run_id"].isna().all() and set(matches["status"]) == {"new"}
            and list(matches["segment_id"]) == list(range(1, len(matches) + 1)) and stored == {
                "segment_migration": 0, "drift_checks": 0})


def test_a_change_of_k_starts_a_fresh_lineage_with_fresh_names(two_runs, demo_db, tmp_path):
    db, alone = tmp_path / "copy.duckdb", tmp_path / "alone.duckdb"
    shutil.copy(two_runs[0], db)
    shutil.copy(demo_db, alone)  # the same customers as the last run of two_runs, with no run stored
    run = run_clustering(fast_settings(db, k=3))
    first_ever = run_clustering(fast_settings(alone, k=3))
    assert fresh_start(db, run.run_id)
    warning = ("No earlier run with the same features, algorithm and k (kmeans, k=3); "
               "segment ids and names start afresh.")
    assert warning in run.warnings
    assert warning in json.loads(query(db, "select warnings from cluster_runs where run_id = ?",
                                       [run.run_id])["warnings"].iloc[0])
    # Named by the naming rules alone, exactly as a first run on the same data, not by the k=5 run's names.
    assert [(s.segment_id, s.name) for s in run.segments] == [(s.segment_id, s.name) for s in first_ever.segments]
    assert not any("start afresh" in w for w in first_ever.warnings), "nothing to continue in an empty database"
    # Back to k=5: the k=5 lineage continues from its own latest run, not from the k=3 run in between.
    again = run_clustering(fast_settings(db))
    assert set(query(db, "select previous_run_id from segment_matches where run_id = ?",
                     [again.run_id])["previous_run_id"]) == {two_runs[2]}


def test_a_change_of_algorithm_starts_a_fresh_lineage(two_runs, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(two_runs[0], db)
    run = run_clustering(fast_settings(db, algorithm="gmm"))
    assert fresh_start(db, run.run_id)
    assert any("(gmm, k=5); segment ids and names start afresh" in warning for warning in run.warnings)


def test_a_run_on_an_earlier_date_never_takes_a_later_run_as_its_previous_run(two_runs, tmp_path):
    db, first, second = tmp_path / "copy.duckdb", two_runs[1], two_runs[2]
    shutil.copy(two_runs[0], db)
    # Stored: first (EARLIER), then second (the end of the data). Rebuild between the two and rerun.
    dbt_build(db, analysis_date="2011-09-01")
    between = run_clustering(fast_settings(db)).run_id
    assert set(query(db, "select previous_run_id from segment_matches where run_id = ?",
                     [between])["previous_run_id"]) == {first}
    assert set(query(db, "select from_run_id from segment_migration where to_run_id = ?",
                     [between])["from_run_id"]) == {first}
    assert set(query(db, "select reference_run_id from drift_checks where run_id = ?",
                     [between])["reference_run_id"]) == {first}
    features = fast_settings(db).features
    with connect(db, read_only=True) as con:  # a rerun on the same date continues the latest run of that date
        assert lineage.previous_run(con, features, "kmeans", 5, date(2011, 9, 1)) == between
        assert lineage.previous_run(con, features, "kmeans", 5, date(2011, 5, 31)) is None
        assert lineage.previous_run(con, features, "kmeans", 5, None) == second


def test_unchanged_data_shows_no_drift(two_runs):
    db, _, second = two_runs
    with connect(db, read_only=True) as con:
        report = drift.check_drift(con, second)
    assert not report.refit_advised and "No significant drift" in report.message
    assert [d.psi for d in report.features] == [0.0, 0.0, 0.0]
    assert report.distance_ratio == pytest.approx(1.0)


def test_drifted_data_triggers_the_refit_warning(two_runs, tmp_path):
    db = tmp_path / "drifted.duckdb"
    shutil.copy(two_runs[0], db)
    with connect(db) as con:  # a year without orders, and spend shrunk: the customers the model knew have moved
        con.execute("""update customer_rfm set recency_days = recency_days + 365,
                       monetary_total = cast(monetary_total * 0.2 + 0.01 as decimal(18, 2))""")
        report = drift.check_drift(con, two_runs[2])
    assert report.refit_advised and "A refit is advisable" in report.message
    assert {d.feature for d in report.features if d.exceeds_threshold} >= {"recency_days", "monetary_total"}
    result = CliRunner().invoke(cli, ["drift", "--json"], env={"SEGKIT_DB": str(db)})
    assert result.exit_code == 0 and json.loads(result.output)["refit_advised"] is True
    run = run_clustering(fast_settings(db))
    assert any("A refit is advisable" in warning for warning in run.warnings)
    stored = query(db, "select warnings from cluster_runs where run_id = ?", [run.run_id])["warnings"].iloc[0]
    assert any("drifted" in warning for warning in json.loads(stored))
    checks = query(db, "select * from drift_checks where run_id = ?", [run.run_id])
    assert set(checks["statistic"]) == {"psi", "mean_distance_ratio"} and checks["exceeds_threshold"].any()


def test_psi_and_month_starts():
    assert drift.population_stability_index(np.full(10, 0.1), np.full(10, 0.1)) == 0.0
    assert drift.population_stability_index([0.5, 0.5], [0.9, 0.1]) > 0.25
    assert [str(d) for d in month_starts(pd.Timestamp("2010-11-15").date(), pd.Timestamp("2011-02-01").date())] == \
        ["2010-11-01", "2010-12-01", "2011-01-01", "2011-02-01"]


def test_every_new_command_has_help_with_an_example():
    for command in ("snapshots", "assign", "drift"):
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output


def test_reporting_a_run_on_features_of_another_date_asks_for_a_rebuild(two_runs):
    db, first, second = two_runs
    with connect(db, read_only=True) as con:
        with pytest.raises(SegkitError, match=f"dbt build --vars '{{analysis_date: {EARLIER}}}'"):
            build_report_model(con, first, fast_settings(db))


def nearest_segments(db: Path, run_id: str) -> pd.Series:
    """Every customer of customer_rfm now, in the nearest segment of run_id's stored model: the README's rule (the
    run's transform, then the nearest centroid in scaled units), computed in numpy."""
    transform = query(db, "select * from feature_transform where run_id = ? order by feature_order", [run_id])
    centroids = query(db, "select segment_id, feature, value_scaled from segment_centroids where run_id = ?",
                      [run_id]).pivot(index="segment_id", columns="feature", values="value_scaled")
    features = list(transform["feature"])
    customers = query(db, "select * from customer_rfm order by customer_id")
    scaled = apply_transform(transform, customers[features].to_numpy(dtype=float))
    gaps = ((scaled[:, None, :] - centroids[features].to_numpy()[None, :, :]) ** 2).sum(axis=2)
    return pd.Series(centroids.index[gaps.argmin(axis=1)], index=customers["customer_id"])


def test_moves_are_counted_on_the_previous_runs_model(two_runs):
    db, first, second = two_runs
    before = query(db, "select customer_id, segment_id from segment_assignment_history where run_id = ?", [first])
    now = nearest_segments(db, first)
    both = before[before["customer_id"].isin(now.index)]
    expected = pd.crosstab(both["segment_id"], now.loc[both["customer_id"]].to_numpy()).stack()
    stored = query(db, "select from_segment_id, to_segment_id, customers from segment_migration where to_run_id = ?",
                   [second]).set_index(["from_segment_id", "to_segment_id"])["customers"]
    assert stored.to_dict() == {key: n for key, n in expected.items() if n}


def test_a_refit_moves_no_customer_whose_figures_did_not_change(two_runs, tmp_path):
    db = tmp_path / "copy.duckdb"
    shutil.copy(two_runs[0], db)
    with connect(db) as con:  # a tenth of the customers gone; everyone else exactly as in the previous run
        con.execute("delete from customer_rfm where hash(customer_id) % 10 = 0")
    run = run_clustering(fast_settings(db, fit_sample_size=300, seed=3))  # a refit on a small sample: moved centroids
    moves = query(db, "select * from segment_migration where to_run_id = ?", [run.run_id])
    assert moves["customers"].sum() == len(query(db, "select * from customer_rfm"))
    assert (moves["from_segment_id"] == moves["to_segment_id"]).all(), "nobody moved: only the model changed"
    with connect(db, read_only=True) as con:
        refit = summarize_refit(con, store.read_run(con, run.run_id))
        summary = summarize_migration(con, two_runs[2], run.run_id)
    assert summary.moved == 0 and refit is not None and refit.previous_run_id == two_runs[2]
    assert refit.regrouped > 0, "the refit regrouped customers, and says so apart from the moves"
    regrouped = query(db, """select sum(customers) as n from segment_refits
                             where run_id = ? and previous_segment_id <> segment_id""", [run.run_id])
    assert refit.regrouped == regrouped["n"].iloc[0]
    assert {c.status for c in refit.changes} <= {"matched", "new", "disappeared"} and refit.redefined
    assert all(c.shift is not None and c.shift > 0 for c in refit.changes if c.status == "matched")


def test_a_scored_run_uses_the_stored_model_and_fits_nothing(two_runs, tmp_path):
    db, first, second = tmp_path / "copy.duckdb", two_runs[1], two_runs[2]
    shutil.copy(two_runs[0], db)
    run = run_clustering(fast_settings(db, k=None), model_run_id=first)
    assert (run.kind, run.model_run_id, run.chosen_k, run.previous_run_id) == ("scored", first, 5, second)
    for table, order in (("feature_transform", "feature_order"), ("segment_centroids", "segment_id, feature")):
        pair = [query(db, f"select * exclude (run_id, segment_name) from {table} where run_id = ? order by {order}"
                      if table == "segment_centroids" else
                      f"select * exclude (run_id) from {table} where run_id = ? order by {order}", [r]) for r in
                (first, run.run_id)]
        pd.testing.assert_frame_equal(*pair)
    segments = query(db, "select customer_id, segment_id, is_in_fit_sample from customer_segments").set_index(
        "customer_id")
    assert not segments["is_in_fit_sample"].any()
    assert (segments["segment_id"] == nearest_segments(db, first).loc[segments.index]).all()
    assert run.drift is not None and run.drift.reference_run_id == first, "drift against the data of the fit"


def test_a_monthly_series_keeps_one_k_and_refits_only_on_drift_as_a_labelled_event(demo_db, tmp_path):
    db = tmp_path / "series.duckdb"
    shutil.copy(demo_db, db)
    settings = dataclasses.replace(load_settings(project_dir=ROOT, db_path=db), k_min=4, k_max=6,
                                   stability_resamples=2)
    calm = run_snapshots(settings, date(2011, 10, 1), date(2011, 11, 1))
    assert [(s.kind, s.chosen_k) for s in calm] == [("fit", calm[0].chosen_k), ("scored", calm[0].chosen_k)]
    assert calm[1].model_run_id == calm[0].run_id and calm[1].refit is None
    assert [i for i, _, _ in calm[1].segments] == [i for i, _, _ in calm[0].segments], "stable ids"
    assert calm[1].migration.moved > 0 and calm[1].migration.customers_in_both > 2_000
    # Any drift at all now calls for a refit: it follows the month's scored run, labelled and apart.
    jumpy = run_snapshots(dataclasses.replace(settings, drift_distance_ratio_threshold=1e-9), date(2011, 12, 1),
                          date(2011, 12, 1))
    month = jumpy[0]
    assert month.kind == "scored" and month.model_run_id == calm[0].run_id and month.refit is not None
    assert month.migration.from_run_id == calm[1].run_id
    with connect(db, read_only=True) as con:
        kinds = dict(con.execute("select run_id, kind from cluster_runs").fetchall())
    assert kinds[month.refit.run_id] == "fit" and kinds[month.run_id] == "scored"
    # The series keeps its k through the refit, so the refit continues the scored run, and nobody moved in it.
    assert month.refit.chosen_k == calm[0].chosen_k and month.refit.summary is not None
    assert month.refit.summary.previous_run_id == month.run_id
    assert query(db, "select count(*) as n from segment_migration where to_run_id = ? and "
                         "from_segment_id <> to_segment_id", [month.refit.run_id])["n"].iloc[0] == 0
    assert "REFIT" in describe(month) and "not counted as moves" in describe(month)
