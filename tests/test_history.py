"""Segments over time: stable ids across runs, migration, drift, and the report's migration block."""

from __future__ import annotations

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
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.features import apply_transform
from segkit.migration import summarize_migration
from segkit.report import build_report_model
from segkit.snapshots import month_starts
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
