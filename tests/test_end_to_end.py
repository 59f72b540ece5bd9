"""The whole job as a user runs it: dbt build, then `segkit cluster`, then SQL on the tables."""

from __future__ import annotations

import json
import re

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import adjusted_rand_score

from segkit.cli import cli
from tests.conftest import DEMO_TRUTH


@pytest.fixture(scope="module")
def clustered_demo(demo_db, tmp_path_factory):
    """The demo database after `segkit cluster --json`, and what the command printed."""
    folder = tmp_path_factory.mktemp("e2e")
    db_path = folder / "demo.duckdb"
    db_path.write_bytes(demo_db.read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGKIT_DB", str(db_path))
        result = CliRunner().invoke(cli, ["cluster", "--json", "--report-path", str(folder / "report.html")])
    assert result.exit_code == 0, result.output
    return db_path, json.loads(result.stdout)


def sql(db_path, query: str) -> pd.DataFrame:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.sql(query).df()


def test_every_customer_gets_one_segment_queryable_in_sql(clustered_demo):
    db_path, summary = clustered_demo
    counts = sql(db_path, """
        select count(*) as segmented, count(distinct customer_id) as customers,
               (select count(*) from customer_rfm) as in_mart
        from customer_segments""")
    assert counts["segmented"][0] == counts["customers"][0] == counts["in_mart"][0]
    revenue = sql(db_path, """
        select segment_name, sum(r.monetary_total) as revenue
        from customer_segments s join customer_rfm r using (customer_id) group by 1""")
    assert len(revenue) == summary["chosen_k"]


def test_cluster_json_names_the_duckdb_file_it_wrote(clustered_demo):
    db_path, summary = clustered_demo
    assert summary["db_path"] == str(db_path)
    assert not {"engine", "target", "schema", "warehouse"} & set(summary)


def test_demo_segments_recover_the_planted_behaviours(clustered_demo):
    db_path, summary = clustered_demo
    labels = sql(db_path, "select customer_id, segment_id from customer_segments")
    truth = pd.read_csv(DEMO_TRUTH, dtype=str)
    joined = labels.merge(truth, on="customer_id")
    assert len(joined) == len(labels)
    ari = adjusted_rand_score(joined["behaviour"], joined["segment_id"])
    print(f"ARI against the planted behaviours: {ari:.3f} (k={summary['chosen_k']})")
    assert ari > 0.85


def test_run_history_and_metrics_are_stored(clustered_demo):
    db_path, summary = clustered_demo
    run = sql(db_path, "select * from cluster_runs")
    assert list(run["run_id"]) == [summary["run_id"]]
    assert run["k_reason"][0]
    k_rows = sql(db_path, "select * from k_selection")
    assert sorted(k_rows["k"]) == list(range(4, 9))
    assert k_rows["is_chosen"].sum() == 1


def test_the_report_has_no_customer_ids(clustered_demo):
    db_path, summary = clustered_demo
    html = open(summary["report_path"], encoding="utf-8").read()
    ids = set(sql(db_path, "select customer_id from customer_rfm")["customer_id"])
    tokens = set(re.findall(r"[A-Za-z0-9]+", html))
    assert not ids & tokens


def test_rerunning_gives_identical_labels(clustered_demo, tmp_path, monkeypatch):
    db_path, summary = clustered_demo
    copy = tmp_path / "again.duckdb"
    copy.write_bytes(db_path.read_bytes())
    monkeypatch.setenv("SEGKIT_DB", str(copy))
    result = CliRunner().invoke(cli, ["cluster", "--json", "--no-report"])
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    labels = sql(copy, f"""
        select a.customer_id, a.segment_id as first, b.segment_id as second
        from segment_assignment_history a join segment_assignment_history b using (customer_id)
        where a.run_id = '{summary["run_id"]}' and b.run_id = '{again["run_id"]}'""")
    assert len(labels) == len(sql(copy, "select * from customer_rfm"))
    assert (labels["first"] == labels["second"]).all()
