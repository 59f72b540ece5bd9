"""run_clustering end to end on small real DuckDB files with planted customer groups."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from segkit import clustering, sql, store
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.feature_pipeline import build_pipeline, transform_parameters
from segkit.warehouse import connect

# Planted groups: (recency_days, frequency, monetary_total) centres, far apart in log space.
PLANTED = [(8, 40, 20_000.0), (40, 12, 2_500.0), (150, 4, 400.0), (500, 1, 40.0)]
HISTORY = ["cluster_runs", "k_selection", "feature_transform", "segment_centroids", "segment_profiles",
           "segment_feature_profiles", "segment_assignment_history"]


def make_rfm_db(path: Path, per_group: int = 150, seed: int = 0, groups=PLANTED) -> pd.Series:
    """A DuckDB file with customer_rfm in the contract's schema; returns the planted group per customer_id."""
    rng = np.random.default_rng(seed)
    rows = []
    for group, (recency, frequency, monetary) in enumerate(groups):
        spread = lambda centre: centre * np.exp(rng.normal(0, 0.12, per_group))  # noqa: E731
        rows.append(pd.DataFrame({
            "group": group,
            "recency_days": np.maximum(1, np.round(spread(recency))).astype(int),
            "frequency": np.maximum(1, np.round(spread(frequency))).astype(int),
            "monetary_total": np.round(spread(monetary), 2),
        }))
    frame = pd.concat(rows, ignore_index=True).sample(frac=1, random_state=seed, ignore_index=True)
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(len(frame))])
    write_rfm(path, frame)
    return frame.set_index("customer_id")["group"]


def write_rfm(path: Path, frame: pd.DataFrame) -> None:
    with duckdb.connect(str(path)) as con:
        con.register("frame", frame)
        con.execute("""
            create or replace table customer_rfm as
            select customer_id::varchar as customer_id,
                date '2024-01-01' - cast(recency_days * 2 + 30 as integer) as first_order_date,
                date '2024-01-01' - cast(recency_days as integer) as last_order_date,
                date '2024-01-01' as analysis_date,
                cast(recency_days as integer) as recency_days,
                cast(recency_days * 2 + 30 as integer) as tenure_days,
                cast(frequency as integer) as frequency,
                cast(monetary_total as decimal(18,2)) as monetary_total,
                cast(monetary_total / frequency as decimal(18,2)) as avg_order_value,
                case when frequency > 1 then (recency_days + 30.0) / (frequency - 1) end as avg_days_between_orders,
                cast(0 as decimal(18,2)) as returns_total,
                0.0::double as return_rate,
                cast(frequency as integer) as distinct_products,
                cast(null as double) as top_category_share
            from frame
        """)


def settings_for(db_path: Path, **overrides) -> Settings:
    return Settings(db_path=db_path, project_dir=db_path.parent, **{"stability_resamples": 2, **overrides})


def segments(db_path: Path) -> pd.DataFrame:
    with connect(db_path, read_only=True) as con:
        return con.execute("select * from customer_segments order by customer_id").df()


@pytest.fixture
def planted_db(tmp_path):
    path = tmp_path / "segkit.duckdb"
    return path, make_rfm_db(path)


def test_planted_groups_are_found_with_the_planted_k(planted_db):
    path, truth = planted_db
    run = clustering.run_clustering(settings_for(path))
    result = segments(path)
    assert run.chosen_k == len(PLANTED)
    assert adjusted_rand_score(truth.loc[result["customer_id"]], result["segment_id"]) > 0.99
    assert "all point to it" in run.k_reason


def test_segment_ids_are_ordered_by_mean_monetary_descending(planted_db):
    path, _ = planted_db
    clustering.run_clustering(settings_for(path, k=4))
    with connect(path, read_only=True) as con:
        means = con.execute("select mean_monetary_total from segment_profiles order by segment_id").df()
    assert means["mean_monetary_total"].is_monotonic_decreasing
    assert len(means) == len(PLANTED)


def test_feature_profiles_are_each_segments_and_the_populations_mean_and_median(planted_db):
    path, _ = planted_db
    run = clustering.run_clustering(settings_for(path, k=4))
    with connect(path, read_only=True) as con:
        customers = con.execute("select * from customer_segments join customer_rfm using (customer_id)").df()
        stored = con.execute("select * from segment_feature_profiles where run_id = ?", [run.run_id]).df()
    assert len(stored) == 4 * len(run.features)
    for row in stored.itertuples():
        values = customers[row.feature].astype(float)
        members = values[customers["segment_id"] == row.segment_id]
        assert row.mean == pytest.approx(members.mean(), rel=1e-9)
        assert row.median == pytest.approx(members.median(), rel=1e-9)
        assert row.population_mean == pytest.approx(values.mean(), rel=1e-9)
        assert row.population_median == pytest.approx(values.median(), rel=1e-9)
        assert row.index_vs_population == pytest.approx(members.mean() / values.mean(), rel=1e-9)


def test_rerun_gives_identical_labels_and_ids_and_keeps_both_runs(planted_db):
    path, _ = planted_db
    first = clustering.run_clustering(settings_for(path))
    labels_first = segments(path)
    second = clustering.run_clustering(settings_for(path))
    labels_second = segments(path)
    pd.testing.assert_frame_equal(labels_first.drop(columns="run_id"), labels_second.drop(columns="run_id"))
    assert first.run_id != second.run_id
    with connect(path, read_only=True) as con:
        for table in HISTORY:
            runs = con.execute(f"select count(distinct run_id) from {table}").fetchone()[0]
            assert runs == 2, table
        assert con.execute("select count(distinct run_id) from customer_segments").fetchone()[0] == 1


def test_forced_k_is_used_and_its_metrics_reported(planted_db):
    path, _ = planted_db
    run = clustering.run_clustering(settings_for(path, k=3))
    assert run.chosen_k == 3
    assert [score.k for score in run.k_selection] == [3]
    assert np.isfinite(run.k_selection[0].silhouette)
    assert "forced" in run.k_reason
    assert segments(path)["segment_id"].nunique() == 3


def test_sql_assignment_equals_kmeans_predict_for_every_row(planted_db):
    path, _ = planted_db
    features = ["recency_days", "frequency", "monetary_total"]
    with connect(path, read_only=True) as con:
        frame = con.execute("select * from customer_rfm order by customer_id").df()
    pipeline = build_pipeline(features, (0.01, 0.99))
    X = pipeline.fit_transform(frame[features].to_numpy(dtype=float))
    model = KMeans(n_clusters=5, n_init=2, random_state=1).fit(X)
    assignment = sql.nearest_segment_sql(transform_parameters(pipeline, features), model.cluster_centers_)
    with connect(path, read_only=True) as con:
        assigned = con.execute(f"select * from ({assignment}) order by customer_id").df()
    np.testing.assert_array_equal(assigned["segment_id"].to_numpy() - 1, model.predict(X))
    expected_distance = np.linalg.norm(X - model.cluster_centers_[model.predict(X)], axis=1)
    np.testing.assert_allclose(assigned["distance_to_centroid"], expected_distance, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "agglomerative"])
def test_each_algorithm_produces_the_same_outputs(planted_db, algorithm):
    path, truth = planted_db
    run = clustering.run_clustering(settings_for(path, algorithm=algorithm, k=4))
    result = segments(path)
    assert run.algorithm == algorithm
    assert list(result.columns) == ["customer_id", "segment_id", "segment_name", "distance_to_centroid", "run_id",
                                    "is_in_fit_sample"]
    assert adjusted_rand_score(truth.loc[result["customer_id"]], result["segment_id"]) > 0.99
    assert [s.segment_id for s in run.segments] == [1, 2, 3, 4]
    assert len({s.name for s in run.segments}) == 4
    with connect(path, read_only=True) as con:
        for table in HISTORY:
            assert con.execute(f"select count(*) from {table} where run_id = ?", [run.run_id]).fetchone()[0] > 0
        centroid_count = con.execute("select count(*) from segment_centroids").fetchone()[0]
    assert centroid_count == 4 * 3


def test_fit_on_a_sample_still_assigns_every_customer(planted_db):
    path, _ = planted_db
    run = clustering.run_clustering(settings_for(path, fit_sample_size=200, k=4))
    result = segments(path)
    assert run.n_fit_sample == 200 and run.n_customers == len(result) == 600
    assert result["is_in_fit_sample"].sum() == 200
    assert result["segment_id"].between(1, 4).all()


def test_failure_while_writing_leaves_previous_results_intact(planted_db, monkeypatch):
    path, _ = planted_db
    clustering.run_clustering(settings_for(path, k=4))
    before = segments(path)

    def fail(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(store, "insert_rows", fail)  # after customer_segments was replaced in the transaction
    with pytest.raises(RuntimeError, match="injected"):
        clustering.run_clustering(settings_for(path, k=3))
    pd.testing.assert_frame_equal(segments(path), before)
    with connect(path, read_only=True) as con:
        assert con.execute("select count(*) from cluster_runs").fetchone()[0] == 1


def test_run_json_dict_is_plain_json(planted_db):
    import json

    path, _ = planted_db
    run = clustering.run_clustering(settings_for(path, k=4, stability_resamples=0))
    data = json.loads(json.dumps(run.to_json_dict(), allow_nan=False))
    assert data["chosen_k"] == 4 and data["k_selection"][0]["stability_ari"] is None
    assert set(data["timings"]) == {"read", "transform", "select_k", "assign", "profile", "write"}


def test_missing_feature_table_says_run_dbt_build(tmp_path):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(SegkitError, match="customer_rfm.*dbt build"):
        clustering.run_clustering(settings_for(path))


def test_too_few_customers_for_k(tmp_path):
    path = tmp_path / "few.duckdb"
    make_rfm_db(path, per_group=1, groups=PLANTED[:3])
    with pytest.raises(SegkitError, match="only 3 customers, too few for k=5"):
        clustering.run_clustering(settings_for(path, k=5))


def test_too_few_distinct_points_for_k(tmp_path):
    path = tmp_path / "same.duckdb"
    make_rfm_db(path, per_group=20, groups=[(10, 2, 100.0)] * 2)
    with duckdb.connect(str(path)) as con:
        con.execute("update customer_rfm set recency_days = 10, frequency = 2, monetary_total = 100")
    with pytest.raises(SegkitError, match="only 1 distinct combinations.*k=4"):
        clustering.run_clustering(settings_for(path))


@pytest.mark.parametrize("bad_value", ["null", "'NaN'::double", "'Infinity'::double"])
def test_null_or_non_finite_feature_names_feature_and_count(planted_db, bad_value):
    path, _ = planted_db
    with duckdb.connect(str(path)) as con:
        con.execute("alter table customer_rfm alter return_rate set data type double")
        con.execute(f"update customer_rfm set return_rate = {bad_value} where customer_id in ('C00001', 'C00002')")
    with pytest.raises(SegkitError, match="return_rate: 2 of 600 customers"):
        clustering.run_clustering(settings_for(path, features=("frequency", "return_rate")))


def test_unknown_feature_lists_the_valid_ones(planted_db):
    path, _ = planted_db
    with pytest.raises(SegkitError, match="Unknown feature.*'spend'.*monetary_total"):
        clustering.run_clustering(settings_for(path, features=("recency_days", "spend")))


def test_runs_on_the_dbt_built_demo_database(fresh_demo_db):
    run = clustering.run_clustering(settings_for(fresh_demo_db, k_max=5))
    result = segments(fresh_demo_db)
    with connect(fresh_demo_db, read_only=True) as con:
        n_customers = con.execute("select count(*) from customer_rfm").fetchone()[0]
    assert run.n_customers == n_customers == len(result)
    assert sorted(result["segment_id"].unique()) == list(range(1, run.chosen_k + 1))
    assert run.k_reason.startswith(f"k={run.chosen_k}")


def test_a_database_written_before_scored_runs_and_metric_noise_gets_their_columns(planted_db):
    path, _ = planted_db
    first = clustering.run_clustering(settings_for(path, k=4))
    with connect(path) as con:  # as an earlier segkit wrote them
        for table, columns in store.ADDED_COLUMNS.items():
            for column in columns:
                con.execute(f"alter table {table} drop column {column.split()[0]}")
    second = clustering.run_clustering(settings_for(path, k=4))
    assert (second.kind, second.model_run_id, second.previous_run_id) == ("fit", second.run_id, first.run_id)
    with connect(path, read_only=True) as con:
        old = store.read_run(con, first.run_id)
    assert (old.kind, old.model_run_id) == ("fit", first.run_id)
    assert np.isnan(old.k_selection[0].silhouette_noise) and np.isfinite(second.k_selection[0].silhouette_noise)
