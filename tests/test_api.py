"""The Python API (segkit.api): a project and its runs as objects and DataFrames, on real DuckDB files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import duckdb
import pandas as pd
import pytest

import segkit
from tests.conftest import DEMO_DATA, ROOT
from segkit import charts

DEMO_COLUMNS = {"customer_id": "cust", "order_id": "Invoice", "order_date": "day", "quantity": "Quantity",
                "unit_price": "Price", "product_id": "StockCode"}


def table(db_path, sql: str, parameters=None) -> pd.DataFrame:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql, parameters).df() if parameters else con.execute(sql).df()


def test_import_segkit_lists_the_public_api_in_a_fresh_interpreter():
    code = "import segkit; print(sorted(dir(segkit))); print(segkit.Project.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in ("Project", "Run", "segment_transactions", "load_settings", "SegkitError"):
        assert f"'{name}'" in out
    assert out.splitlines()[-1] == "segkit.api"


def test_a_database_given_in_code_needs_no_profiles_yml(clustered_db, tmp_path, monkeypatch):
    # A folder with no dbt project and no profiles.yml anywhere dbt would look.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEGKIT_PROJECT_DIR", raising=False)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = segkit.load_settings(db_path=clustered_db)
    assert settings.db_path == clustered_db and settings.profile.profiles_dir is None
    run = segkit.Project(clustered_db).run()
    assert run.n_customers == len(table(clustered_db, "select * from customer_rfm"))


def test_a_feature_table_without_analysis_date_gets_a_message_not_a_binder_error(tmp_path):
    db_path = tmp_path / "own.duckdb"
    with duckdb.connect(str(db_path)) as con:
        con.execute("create table customer_rfm as select 'c' || i as customer_id, i % 50 as recency_days, "
                    "i % 7 + 1 as frequency, i * 3.5 as monetary_total from range(200) as t(i)")
    with pytest.raises(segkit.SegkitError, match="customer_rfm has no column analysis_date.*dbt build") as caught:
        segkit.Project(db_path).cluster(write_report=False, k=3)
    assert "Binder" not in str(caught.value)


def test_a_run_exposes_its_tables_as_dataframes(clustered_db):
    run = segkit.Project(clustered_db).run()
    stored = table(clustered_db, "select * from segment_profiles where run_id = ? order by segment_id", [run.run_id])
    assert run.segments.to_dict("records") == stored.drop(columns="run_id").to_dict("records")
    segments = table(clustered_db, "select customer_id, segment_id, segment_name from customer_segments "
                     "order by customer_id")
    assert run.customers[["customer_id", "segment_id", "segment_name"]].to_dict("records") == \
        segments.to_dict("records")
    assert list(run.k_selection["k"]) == [score.k for score in run.stored.k_selection]
    assert run.k_selection["is_chosen"].sum() == 1
    assert set(run.profiles["segment_id"]) == set(run.segments["segment_id"])
    assert run.migration.empty  # the first run has none
    assert len(run.centroids) == run.chosen_k * len(run.features)
    assert "<html" in run.report_html() and run.run_id in run.report_html()
    assert f"{run.n_customers:,} customers" in run._repr_html_()


def test_every_chart_is_well_formed_svg_that_carries_its_own_styles(clustered_db):
    shown = segkit.Project(clustered_db).run().charts
    assert {"elbow", "silhouette", "davies_bouldin", "stability", "shares", "scatter"} <= set(shown)
    for name, chart in shown.items():
        svg = chart._repr_svg_()
        assert svg == chart._repr_html_() == str(chart)
        root = ElementTree.fromstring(svg)  # well-formed XML, as an .svg file of its own
        style = root.find("{http://www.w3.org/2000/svg}style")
        assert style is not None and style.text == charts.STYLE, name
    # What turned black outside the report: the silhouette line and the legend swatches now say their colours.
    assert "svg.chart .line{fill:none;" in charts.STYLE
    assert "svg.chart .key.customers{fill:" in charts.STYLE
    assert "var(--" not in charts.STYLE  # no variable that only the report's page defines


@pytest.mark.slow
def test_segment_transactions_runs_the_dbt_models_on_a_dataframe(demo_db, tmp_path):
    lines = pd.read_csv(DEMO_DATA, dtype=str).rename(columns={"Customer ID": "cust", "InvoiceDate": "day"})
    run = segkit.segment_transactions(lines, DEMO_COLUMNS, db_path=tmp_path / "frame.duckdb", k=4)
    assert run.chosen_k == 4 and not list((tmp_path).glob("*.html"))
    # The same SQL as a build of the file: the same features for every customer.
    features = "select * exclude (analysis_date) from customer_rfm order by customer_id"
    pd.testing.assert_frame_equal(table(tmp_path / "frame.duckdb", features), table(demo_db, features))
    assert run.segments["customers"].sum() == run.n_customers == len(table(demo_db, features))


@pytest.mark.slow
def test_segment_transactions_builds_on_a_temporary_file_by_default():
    lines = pd.read_csv(DEMO_DATA, dtype=str, nrows=20_000)
    run = segkit.segment_transactions(lines, k=3, stability_resamples=0)
    folder = run.project.db_path.parent
    assert folder.name.startswith("segkit-") and folder.is_dir()
    assert len(run.customers) == run.n_customers
    del run
    import gc
    gc.collect()
    assert not folder.exists()


@pytest.mark.parametrize("change, message", [
    (lambda frame: frame.drop(columns="cust"),
     "the DataFrame has no column 'cust' (mapped to customer_id). Columns found: Invoice, StockCode, Description, "
     "Quantity, day, Price, Country. Fix the mapping in the var 'columns'."),
    (lambda frame: frame.iloc[0:0], "the DataFrame has no data rows"),
])
def test_a_dataframe_missing_a_mapped_column_or_with_no_rows_is_refused(tmp_path, change, message):
    lines = pd.read_csv(DEMO_DATA, dtype=str, nrows=50).rename(columns={"Customer ID": "cust", "InvoiceDate": "day"})
    with pytest.raises(segkit.SegkitError) as caught:
        segkit.segment_transactions(change(lines), DEMO_COLUMNS, db_path=tmp_path / "bad.duckdb")
    assert str(caught.value).startswith(message)
    assert str(tmp_path) not in str(caught.value)
    assert not (tmp_path / "bad.duckdb").exists()


@pytest.mark.slow
def test_the_file_input_gives_the_same_message_for_a_missing_column(tmp_path):
    lines = pd.read_csv(DEMO_DATA, dtype=str, nrows=50).rename(columns={"Customer ID": "cust", "InvoiceDate": "day"})
    path = tmp_path / "lines.csv"
    lines.drop(columns="cust").to_csv(path, index=False)
    project = segkit.Project(tmp_path / "file.duckdb", project_dir=ROOT)
    with pytest.raises(segkit.SegkitError) as caught:
        project.build(vars={"transactions_path": str(path), "columns": DEMO_COLUMNS})
    assert str(caught.value) == (f"the input '{path}' has no column 'cust' (mapped to customer_id). Columns found: "
                                 "Invoice, StockCode, Description, Quantity, day, Price, Country. Fix the mapping in "
                                 "the var 'columns'.")


@pytest.mark.slow
def test_the_readme_python_example_runs_in_a_fresh_interpreter(clustered_db, tmp_path):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Python\n"):]
    example = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    db_path = tmp_path / "segkit.duckdb"
    shutil.copy(clustered_db, db_path)
    result = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "SEGKIT_DB": str(db_path), "SEGKIT_PROJECT_DIR": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "customers of segment 1 in segment_1.csv" in result.stdout
    assert (tmp_path / "segment_1.csv").is_file()
