"""Assignment without refitting: the dbt model customer_segments_scored and `segkit assign`."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.neighbors import NearestCentroid

from segkit.assign import score
from segkit.cli import cli
from segkit.clustering import run_clustering
from segkit.config import Settings, load_settings
from segkit.dbt_runner import run_dbt
from segkit.drift import check_drift
from segkit.features import apply_transform
from segkit.store import read_run
from segkit.warehouse import connect
from tests.conftest import DEMO_DATA, ROOT, dbt_build

NEW_CUSTOMER = "77777"


def fast_settings(db: Path, **overrides) -> Settings:
    return Settings(db_path=db, project_dir=ROOT, **{"k": 5, "stability_resamples": 2, "write_report": False,
                                                     **overrides})


@pytest.fixture(scope="module")
def clustered_db(demo_db, tmp_path_factory) -> Path:
    """The demo data, clustered once, then `dbt build` of the scoring model alone."""
    db = tmp_path_factory.mktemp("assign") / "clustered.duckdb"
    shutil.copy(demo_db, db)
    run_clustering(fast_settings(db))
    run_dbt(load_settings(project_dir=ROOT, db_path=db), ("build", "--select", "customer_segments_scored"))
    return db


def test_first_build_gives_an_empty_typed_scored_table(demo_db):
    with connect(demo_db, read_only=True) as con:
        assert not con.execute("select count(*) from information_schema.tables where table_name = 'cluster_runs'"
                               ).fetchall()[0][0]
        types = dict(con.execute("""select column_name, data_type from information_schema.columns
                                    where table_name = 'customer_segments_scored'""").fetchall())
        assert con.execute("select count(*) from customer_segments_scored").fetchall()[0][0] == 0
    assert types == {"customer_id": "VARCHAR", "run_id": "VARCHAR", "segment_name": "VARCHAR",
                     "assignment_method": "VARCHAR", "segment_id": "INTEGER", "distance_to_centroid": "DOUBLE",
                     "is_in_fitted_run": "BOOLEAN", "analysis_date": "DATE"}


@pytest.mark.slow
def test_sql_scoring_agrees_with_scikit_learn_predict_for_every_customer(clustered_db):
    with connect(clustered_db, read_only=True) as con:
        model = read_run(con)
        rfm = con.execute("select * from customer_rfm order by customer_id").df()
        sql = con.execute("select * from customer_segments_scored order by customer_id").df()
        fitted = con.execute("select * from customer_segments order by customer_id").df()
    python = score(model, rfm)
    assert len(sql) == len(rfm) == len(fitted) > 3_000
    assert (sql["assignment_method"] == "scored").all() and sql["is_in_fitted_run"].all()
    assert (sql["run_id"] == model.run_id).all()
    np.testing.assert_array_equal(sql["segment_id"].to_numpy(), python["segment_id"].to_numpy())
    np.testing.assert_array_equal(sql["segment_id"].to_numpy(), fitted["segment_id"].to_numpy())
    np.testing.assert_allclose(sql["distance_to_centroid"], python["distance_to_centroid"], rtol=1e-9, atol=1e-12)
    assert list(sql["segment_name"]) == list(python["segment_name"])
    # A real scikit-learn estimator, not segkit's own score(): NearestCentroid fitted on the run's stored
    # centroids (one scaled row per segment id, so each class centroid is that row) predicts the nearest one.
    X = apply_transform(model.transform, rfm[list(model.features)].to_numpy(dtype=float))
    assert np.isfinite(X).all() and X.shape == (len(rfm), len(model.features))
    with np.errstate(invalid="ignore"):  # one row per class: the within-class spread (unused here) is 0 / 0
        estimator = NearestCentroid().fit(model.centroids, np.asarray(model.segment_ids))
    np.testing.assert_array_equal(estimator.centroids_, model.centroids)
    np.testing.assert_array_equal(sql["segment_id"].to_numpy(), estimator.predict(X))



@pytest.mark.slow
def test_python_clustering_drift_and_dbt_score_every_demo_customer_alike(clustered_db):
    """One SQL scores against a stored run (segkit.sql): `segkit assign`'s scoring, the assignment that
    `segkit cluster` stored, drift's distances and the dbt model give the same segment and distance."""
    with connect(clustered_db, read_only=True) as con:
        run = read_run(con)
        rfm = con.execute("select * from customer_rfm order by customer_id").df()
        fitted = con.execute("""select customer_id, segment_id, distance_to_centroid from segment_assignment_history
                                where run_id = ? order by customer_id""", [run.run_id]).df()
        dbt = con.execute("""select customer_id, segment_id, distance_to_centroid from customer_segments_scored
                             order by customer_id""").df()
        drift = check_drift(con, run.run_id)
    python = score(run, rfm)
    assert list(python["customer_id"]) == list(fitted["customer_id"]) == list(dbt["customer_id"])
    assert len(python) > 3_000 and python["segment_id"].nunique() == len(run.segment_ids)
    for scored in (fitted, dbt):  # the same SQL: the very same numbers, not merely close ones
        np.testing.assert_array_equal(python["segment_id"].to_numpy(), scored["segment_id"].to_numpy())
        np.testing.assert_array_equal(python["distance_to_centroid"].to_numpy(),
                                      scored["distance_to_centroid"].to_numpy())
    assert drift.mean_distance == pytest.approx(python["distance_to_centroid"].mean(), rel=1e-12)
    assert drift.reference_mean_distance == pytest.approx(fitted["distance_to_centroid"].mean(), rel=1e-12)


@pytest.mark.slow
def test_a_new_customer_gets_a_segment_from_dbt_build_alone(clustered_db, tmp_path):
    db = tmp_path / "with_new_customer.duckdb"
    shutil.copy(clustered_db, db)
    with gzip.open(DEMO_DATA, "rt") as source:
        text = source.read().rstrip("\n")
    transactions = tmp_path / "transactions.csv.gz"
    with gzip.open(transactions, "wt") as target:
        target.write(text + "\n" + "\n".join([
            f"990001,85123A,NEW CUSTOMER,12,2011-10-03 10:00:00,2.55,{NEW_CUSTOMER}.0,Norway",
            f"990002,22423,NEW CUSTOMER,2,2011-11-14 15:00:00,12.75,{NEW_CUSTOMER}.0,Norway",
        ]) + "\n")
    dbt_build(db, transactions_path=str(transactions))
    with connect(db, read_only=True) as con:
        counts = con.execute("""select count(*), count(segment_id), count(*) filter (where not is_in_fitted_run)
                                from customer_segments_scored""").fetchall()[0]
        customers = con.execute("select count(*) from customer_rfm").fetchall()[0][0]
        new = con.execute("select * from customer_segments_scored where customer_id = ?", [NEW_CUSTOMER]).df()
        model = read_run(con)
        features = con.execute("select * from customer_rfm where customer_id = ?", [NEW_CUSTOMER]).df()
    assert counts == (customers, customers, 1)
    assert len(new) == 1 and new["segment_id"].iloc[0] == score(model, features)["segment_id"].iloc[0]
    assert new["segment_name"].iloc[0] in model.segment_names


@pytest.mark.slow
def test_cli_assign_scores_one_customer_as_json(clustered_db):
    before = os.stat(clustered_db).st_mtime_ns
    result = CliRunner().invoke(cli, ["assign", "--value", "recency_days=12", "--value", "frequency=9",
                                      "--value", "monetary_total=4200"], env={"SEGKIT_DB": str(clustered_db)})
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    with connect(clustered_db, read_only=True) as con:
        model = read_run(con)
    expected = score(model, pd.DataFrame([{"recency_days": 12, "frequency": 9, "monetary_total": 4200}]))
    assert answer["segment_id"] == int(expected["segment_id"].iloc[0])
    assert answer["assignment_method"] == "scored" and answer["run_id"] == model.run_id
    assert os.stat(clustered_db).st_mtime_ns == before


@pytest.mark.slow
def test_cli_assign_scores_a_csv_file_as_csv(clustered_db, tmp_path):
    customers = pd.DataFrame({"customer_id": ["a", "b"], "recency_days": [3, 400], "frequency": [30, 1],
                              "monetary_total": [25_000.0, 15.0]})
    customers.to_csv(tmp_path / "customers.csv", index=False)
    result = CliRunner().invoke(cli, ["assign", "--csv", str(tmp_path / "customers.csv"), "--format", "csv"],
                                env={"SEGKIT_DB": str(clustered_db)})
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(pd.io.common.StringIO(result.output), dtype={"customer_id": str})
    assert list(rows["customer_id"]) == ["a", "b"]
    assert rows["segment_id"].nunique() == 2


@pytest.mark.slow
def test_cli_assign_names_the_missing_feature(clustered_db):
    result = CliRunner().invoke(cli, ["assign", "--value", "recency_days=12"], env={"SEGKIT_DB": str(clustered_db)})
    assert result.exit_code == 1
    assert "lacks frequency, monetary_total" in result.output and "Traceback" not in result.output
