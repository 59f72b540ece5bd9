"""The same project on Apache Spark (local, dbt-spark's session method): dbt build, `segkit cluster`, SQL on
the tables and the report, and the same features and segments as DuckDB on the demo data.

The Spark metastore and tables live in a temporary SEGKIT_SPARK_DIR; the project is built once per module.

The Spark builds run the unit tests (they feed the Spark macros edge rows the demo lacks) but not the data tests:
the DuckDB build runs those, and every Spark table is compared with DuckDB's row by row here, which checks
everything they would.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from segkit.cli import cli
from segkit.config import load_settings
from segkit.dbt_runner import run_dbt
from segkit.engine import connect
from tests.conftest import ROOT

pytestmark = pytest.mark.spark

K = 6
# Decimal rounding differs by one cent where DuckDB divides decimals through a double and Spark does not;
# return_rate is a double ratio of decimals. Every other feature, date and count is identical.
TOLERANCE = {"avg_order_value": 0.01 + 1e-9, "return_rate": 1e-9}

NO_DATA_TESTS = ("build", "--exclude", "test_type:data")

SEGMENT_REVENUE_SQL = """
    select segment_name, count(*) as customers, sum(r.monetary_total) as revenue,
           round(100 * sum(r.monetary_total) / sum(sum(r.monetary_total)) over (), 1) as revenue_pct
    from customer_segments s join customer_rfm r using (customer_id)
    group by segment_name order by revenue desc
"""


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory):
    """dbt build on Spark, `segkit cluster --target spark`, the dbt scoring model, and every table the tests read."""
    folder = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_SPARK_DIR", str(folder))
        build = run_dbt(load_settings(project_dir=ROOT, target="spark"), NO_DATA_TESTS)
        result = CliRunner().invoke(cli, ["cluster", "--target", "spark", "--k", str(K), "--json",
                                          "--report-path", str(folder / "report.html")])
        assert result.exit_code == 0, result.output
        # The dbt assignment model, now that a run exists, scores every customer in Spark SQL too.
        scored = run_dbt(load_settings(project_dir=ROOT, target="spark"),
                         (*NO_DATA_TESTS, "--select", "customer_segments_scored"))
        with connect(load_settings(target="spark"), read_only=True) as con:
            tables = {
                "features": con.execute("select * from customer_rfm order by customer_id").df(),
                "quality": con.execute("select reason, row_count from data_quality_summary").df(),
                "segments": con.execute("select * from customer_segments order by customer_id").df(),
                "scored": con.execute("select * from customer_segments_scored order by customer_id").df(),
                "revenue": con.execute(SEGMENT_REVENUE_SQL).df(),
                "history": con.execute("select run_id, count(*) as customers from segment_assignment_history "
                                       "group by run_id").df(),
            }
    return build, json.loads(result.stdout), scored, tables, folder / "report.html"


@pytest.fixture(scope="module")
def duckdb_run(demo_db, tmp_path_factory):
    """The demo built by dbt on DuckDB, clustered with the same k and seed."""
    db_path = tmp_path_factory.mktemp("duckdb_k") / "demo.duckdb"
    db_path.write_bytes(demo_db.read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_DB", str(db_path))
        result = CliRunner().invoke(cli, ["cluster", "--k", str(K), "--json", "--no-report"])
        assert result.exit_code == 0, result.output
        with connect(load_settings()) as con:
            return json.loads(result.stdout), {
                "features": con.execute("select * from customer_rfm order by customer_id").df(),
                "quality": con.execute("select reason, row_count from data_quality_summary").df(),
                "segments": con.execute("select * from customer_segments order by customer_id").df(),
            }


def test_dbt_build_on_spark_builds_every_model_and_passes_every_unit_test(spark_run):
    build = spark_run[0]
    done = re.search(r"Done\. PASS=(\d+) WARN=(\d+) ERROR=(\d+) SKIP=(\d+) NO-OP=\d+ TOTAL=(\d+)", build.output)
    passed, warned, errors, skipped, total = map(int, done.groups())
    assert (errors, skipped, warned) == (0, 0, 0)
    assert passed == total
    ran = re.search(r"Finished running (.*) in ", build.output).group(1)
    assert re.search(r"\d+ table models, 9 unit tests", ran) and "data test" not in ran, ran


def test_every_customer_gets_one_segment_queryable_in_spark_sql(spark_run):
    _, summary, _, tables, _ = spark_run
    segments, features = tables["segments"], tables["features"]
    assert len(segments) == segments["customer_id"].nunique() == len(features) == summary["n_customers"]
    assert set(segments["customer_id"]) == set(features["customer_id"])
    revenue = tables["revenue"]
    assert len(revenue) == K
    assert revenue["customers"].sum() == len(features)
    assert revenue["revenue"].astype(float).sum() == pytest.approx(features["monetary_total"].astype(float).sum())
    assert tables["history"].set_index("run_id")["customers"].to_dict() == {summary["run_id"]: len(features)}


def test_the_dbt_assignment_model_gives_every_customer_the_same_segment_on_spark(spark_run):
    _, summary, _, tables, _ = spark_run
    scored, segments = tables["scored"], tables["segments"]
    assert (scored["run_id"] == summary["run_id"]).all()
    assert scored["customer_id"].tolist() == segments["customer_id"].tolist()
    assert (scored["segment_id"].to_numpy() == segments["segment_id"].to_numpy()).all()
    assert np.allclose(scored["distance_to_centroid"], segments["distance_to_centroid"], rtol=1e-9, atol=1e-9)


def test_cluster_json_says_it_ran_on_spark_and_where_the_tables_are(spark_run):
    _, summary, _, _, report = spark_run
    assert "db_path" not in summary
    assert (summary["engine"], summary["target"], summary["schema"]) == ("spark", "spark", "segkit")
    warehouse = report.parent / "warehouse"  # SEGKIT_SPARK_DIR is the report's folder
    assert summary["warehouse"] == str(warehouse)
    assert (warehouse / "segkit.db" / "customer_segments").is_dir()


def test_report_is_rendered_from_spark_without_customer_ids(spark_run):
    _, summary, _, tables, report = spark_run
    html = report.read_text(encoding="utf-8")
    assert summary["run_id"] in html
    for segment in summary["segments"]:
        assert segment["name"] in html
    ids = set(tables["segments"]["customer_id"])
    assert not ids & set(re.findall(r"\b\d{5}\b", html))


def test_spark_and_duckdb_give_the_same_features_and_segments(spark_run, duckdb_run):
    _, spark_summary, _, spark, _ = spark_run
    duck_summary, duck = duckdb_run
    features_spark, features_duck = spark["features"], duck["features"]
    assert features_spark["customer_id"].tolist() == features_duck["customer_id"].tolist()
    for column in features_duck.columns.drop("customer_id"):
        left, right = features_duck[column], features_spark[column]
        assert (left.isna() == right.isna()).all(), column
        if pd.api.types.is_numeric_dtype(left):
            gap = np.abs(left.astype(float) - right.astype(float)).max()
            assert not gap > TOLERANCE.get(column, 0.0), (column, gap)
        else:
            assert left.astype(str).tolist() == right.astype(str).tolist(), column
    assert dict(spark["quality"].itertuples(index=False)) == dict(duck["quality"].itertuples(index=False))
    # The same hash-drawn fit sample on both engines, so the same model and the same segments.
    sizes = [(s["segment_id"], s["name"], s["customers"]) for s in spark_summary["segments"]]
    assert sizes == [(s["segment_id"], s["name"], s["customers"]) for s in duck_summary["segments"]]
    assert spark["segments"]["segment_id"].tolist() == duck["segments"]["segment_id"].tolist()
