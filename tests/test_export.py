"""`segkit export` and Project.export: the customers of a run, of a segment, or who moved, to CSV or Parquet."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import pytest

import segkit
from tests.conftest import segkit as run_segkit

pytestmark = pytest.mark.slow  # real segkit commands and dbt builds

COLUMNS = ["customer_id", "segment_id", "segment_name", "run_id", "analysis_date"]


def query(db_path, sql: str, parameters=None) -> pd.DataFrame:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql, parameters).df() if parameters else con.execute(sql).df()


def read_back(path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"customer_id": str, "segment_name": str, "run_id": str})
    with duckdb.connect() as con:  # pandas would need pyarrow
        return con.execute("select * from read_parquet(?)", [str(path)]).df()


def test_export_reads_back_as_customer_segments_row_by_row(clustered_db, tmp_path):
    out = tmp_path / "everyone.csv"
    result = run_segkit("export", "--out", str(out), db_path=clustered_db)
    assert result.returncode == 0, result.stderr
    exported = read_back(out)
    assert list(exported.columns) == COLUMNS
    expected = query(clustered_db, """
        select s.customer_id, s.segment_id, s.segment_name, s.run_id, r.analysis_date
        from customer_segments as s join cluster_runs as r using (run_id) order by s.customer_id""")
    assert len(exported) == len(expected) == len(query(clustered_db, "select * from customer_rfm"))
    for got, want in zip(exported.itertuples(index=False), expected.itertuples(index=False)):
        assert (got.customer_id, got.segment_id, got.segment_name, got.run_id) == \
            (want.customer_id, want.segment_id, want.segment_name, want.run_id)
        assert got.analysis_date == str(want.analysis_date.date())
    assert f"Wrote {len(expected):,} customers" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["everyone.csv"]  # no temporary file left


def test_export_of_one_segment_by_name_with_features_to_parquet(clustered_db, tmp_path):
    run = segkit.Project(clustered_db).run()
    name = run.segment_names[1]
    result = run.export(tmp_path / "audience.parquet", segment=name.upper(), features=["recency_days", "frequency"])
    exported = read_back(result.path)
    expected = query(clustered_db, """
        select s.customer_id, s.segment_id, f.recency_days, f.frequency from customer_segments as s
        join customer_rfm as f using (customer_id) where s.segment_name = ? order by s.customer_id""", [name])
    assert result.rows == len(exported) == len(expected) > 0
    assert list(exported.columns) == [*COLUMNS, "recency_days", "frequency"]
    pd.testing.assert_frame_equal(exported[["customer_id", "segment_id", "recency_days", "frequency"]], expected,
                                  check_dtype=False)
    assert set(exported["segment_name"]) == {name}


def test_export_of_the_customers_who_moved_between_two_runs(clustered_db, tmp_path):
    db_path = tmp_path / "two_runs.duckdb"
    shutil.copy(clustered_db, db_path)
    project = segkit.Project(db_path)
    first = project.run().run_id
    second = project.cluster(k=5, write_report=False, progress=lambda message: None).run_id
    out = tmp_path / "moved.csv"
    result = run_segkit("export", "--moved-between", first, second, "--out", str(out), "--json", db_path=db_path)
    assert result.returncode == 0, result.stderr
    exported = read_back(out)
    # Moved: in both runs, with another segment id in the second.
    expected = query(db_path, """
        select b.customer_id, b.segment_id, a.segment_id as previous_segment_id
        from segment_assignment_history as a join segment_assignment_history as b using (customer_id)
        where a.run_id = ? and b.run_id = ? and a.segment_id <> b.segment_id order by b.customer_id""",
                     [first, second])
    assert len(expected) > 0
    assert exported[["customer_id", "segment_id", "previous_segment_id"]].to_dict("records") == \
        expected.to_dict("records")
    assert set(exported["run_id"]) == {second} and set(exported["previous_run_id"]) == {first}
    assert '"rows": %d' % len(expected) in result.stdout


@pytest.mark.parametrize("arguments, message", [
    (["--segment", "99"], "has no segment '99'; its segments are 1 "),
    (["--segment", "Nobody at all"], "has no segment 'Nobody at all'"),
    (["--run-id", "20000101T000000Z-00000000"], "There is no run '20000101T000000Z-00000000' in cluster_runs"),
    (["--moved-between", "20000101T000000Z-00000000", "latest"], "There is no run '20000101T000000Z-00000000'"),
    (["--features", "shoe_size"], "Unknown feature(s) shoe_size"),
])
def test_bad_export_input_stops_with_a_message_and_leaves_no_file(clustered_db, tmp_path, arguments, message):
    out = tmp_path / "audience.csv"
    out.write_text("an earlier export\n")
    result = run_segkit("export", "--out", str(out), *arguments, db_path=clustered_db)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert out.read_text() == "an earlier export\n"  # unchanged
    assert [p.name for p in tmp_path.iterdir()] == ["audience.csv"]


def test_an_export_into_a_missing_folder_says_so(clustered_db, tmp_path):
    result = run_segkit("export", "--out", str(tmp_path / "missing" / "audience.csv"), db_path=clustered_db)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"The folder {tmp_path / 'missing'} does not exist" in result.stderr
    assert list(tmp_path.iterdir()) == []
