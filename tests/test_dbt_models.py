"""The dbt project on real DuckDB files: cleaning, data quality, features and RFM scores."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import DEMO_DATA, ROOT, dbt_build
from tests.reference import classify_lines, customer_features

PROJECT_VARS = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]
FEATURE_COLUMNS = ["recency_days", "tenure_days", "frequency", "monetary_total", "avg_order_value",
                   "avg_days_between_orders", "returns_total", "return_rate", "distinct_products"]


def query(db_path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.sql(sql).df()


def demo_reference() -> pd.DataFrame:
    raw = pd.read_csv(DEMO_DATA, dtype=str, keep_default_na=False)
    return classify_lines(raw, PROJECT_VARS["columns"], PROJECT_VARS["order_date_format"],
                          non_product_codes=PROJECT_VARS["non_product_codes"],
                          extreme_quantity=PROJECT_VARS["extreme_quantity"])


def assert_features_match(db_path, lines: pd.DataFrame) -> None:
    expected = customer_features(lines).sort_index()
    actual = query(db_path, "select * from customer_rfm order by customer_id").set_index("customer_id")
    assert list(actual.index) == list(expected.index)
    for column in ("first_order_date", "last_order_date"):
        assert (pd.to_datetime(actual[column]) == expected[column]).all(), column
    for column in ("recency_days", "tenure_days", "frequency", "distinct_products"):
        assert (actual[column].astype(int) == expected[column].astype(int)).all(), column
    for column in ("monetary_total", "returns_total"):
        np.testing.assert_allclose(actual[column].astype(float), expected[column], atol=0.005 + 1e-9, rtol=0,
                                   err_msg=column)
    # A quotient rounded to cents can differ by one cent where the exact value ends in half a cent.
    np.testing.assert_allclose(actual["avg_order_value"].astype(float), expected["avg_order_value"],
                               atol=0.005 + 1e-9, rtol=0, err_msg="avg_order_value")
    np.testing.assert_allclose(actual["avg_days_between_orders"].astype(float),
                               expected["avg_days_between_orders"], rtol=1e-9, err_msg="avg_days_between_orders")
    np.testing.assert_allclose(actual["return_rate"], expected["return_rate"], rtol=1e-6, atol=1e-6)


def test_demo_build_creates_the_documented_tables(demo_db):
    tables = set(query(demo_db, "select table_name from information_schema.tables")["table_name"])
    assert {"stg_raw__lines", "int_lines_kept", "int_lines_rejected", "data_quality_summary",
            "customer_rfm", "customer_rfm_scores", "rfm_score_bins", "rfm_segment_rules"} <= tables
    assert query(demo_db, "select count(*) as n from customer_rfm")["n"][0] > 1000


def test_demo_features_match_an_independent_pandas_computation(demo_db):
    lines = demo_reference()
    analysis_date = query(demo_db, "select analysis_date from main_build.int_analysis_date_resolved")["analysis_date"][0]
    assert pd.Timestamp(analysis_date).date() == lines.attrs["analysis_date"]
    assert_features_match(demo_db, lines)


def test_demo_rejection_reasons_match_the_reference(demo_db):
    expected = demo_reference()["rejection_reason"].fillna("rows_kept").value_counts()
    summary = query(demo_db, "select reason, row_count from data_quality_summary").set_index("reason")["row_count"]
    for reason, count in expected.items():
        assert summary[reason] == count, reason
    assert summary["rows_read"] == len(pd.read_csv(DEMO_DATA, dtype=str))


def test_data_quality_summary_balances_on_demo_data(demo_db):
    summary = query(demo_db, "select reason, row_count from data_quality_summary").set_index("reason")["row_count"]
    assert summary.drop("rows_read").sum() == summary["rows_read"]
    for reason in ("missing_customer_id", "duplicate", "non_product_code", "zero_or_negative_price",
                   "extreme_quantity", "future_date"):
        assert summary[reason] > 0, f"the demo data should exercise {reason}"


def test_privacy_staging_drops_free_text(demo_db):
    columns = set(query(demo_db, "describe main_build.stg_raw__lines")["column_name"])
    assert not {"Description", "description"} & columns
    downstream = set(query(demo_db, "describe main_build.int_lines_kept")["column_name"])
    assert "country" not in downstream


def test_rfm_scores_cover_every_customer_with_a_named_segment(demo_db):
    scores = query(demo_db, "select * from customer_rfm_scores")
    assert scores["rfm_segment"].notna().all()
    assert scores["r_score"].between(1, 5).all()
    bins = query(demo_db, "select * from rfm_score_bins")
    assert bins["customers"].sum() == 3 * len(scores)


def test_rfm_scores_are_the_quintiles_of_mid_rank_percentiles(demo_db):
    """README, "RFM scores": a customer's mid-rank percentile is (customers ranked before + half its ties) / customers,
    its score 1 + floor(5 x that), 5 best: fewest days since the last order, most orders, most money."""
    features = query(demo_db, "select customer_id, recency_days, frequency, monetary_total from customer_rfm")
    scores = query(demo_db, "select customer_id, r_score, f_score, m_score from customer_rfm_scores")
    merged = features.merge(scores, on="customer_id", validate="one_to_one")
    assert len(merged) == len(features) == len(scores)
    n = len(merged)
    for score, value in [("r_score", -merged["recency_days"]), ("f_score", merged["frequency"]),
                         ("m_score", merged["monetary_total"].astype(float))]:
        before = value.rank(method="min").astype(int) - 1
        ties = value.map(value.value_counts()).astype(int)
        expected = 1 + (10 * before + 5 * ties) // (2 * n)  # floor(5 * (before + ties / 2) / n), in integers
        assert (merged[score] == expected).all(), score
        assert merged[score].nunique() > 1, score


@pytest.fixture(scope="module")
def other_layout(tmp_path_factory):
    """The demo data in another layout: customer, YYYYMMDD integer date, line amount; no order id."""
    raw = pd.read_csv(DEMO_DATA, dtype=str, keep_default_na=False)
    amount = (pd.to_numeric(raw["Quantity"], errors="coerce") * pd.to_numeric(raw["Price"], errors="coerce")).round(2)
    day = pd.to_datetime(raw["InvoiceDate"].str.strip(), errors="coerce").dt.strftime("%Y%m%d")
    other = pd.DataFrame({"client": raw["Customer ID"], "day": day.fillna("not a date"), "amount": amount})
    folder = tmp_path_factory.mktemp("other")
    other.to_csv(folder / "sales.csv", index=False)
    duckdb.from_df(other).write_parquet(str(folder / "sales.parquet"))
    columns = {"customer_id": "client", "order_date": "day", "line_amount": "amount", "order_id": None,
               "quantity": None, "unit_price": None, "product_id": None, "country": None}
    return folder, other, columns


@pytest.mark.slow
@pytest.mark.parametrize("file_name", ["sales.csv", "sales.parquet"])
def test_a_different_layout_runs_through_configuration_alone(other_layout, tmp_path, file_name):
    folder, other, columns = other_layout
    db_path = dbt_build(tmp_path / "other.duckdb", transactions_path=str(folder / file_name), columns=columns,
                        order_date_format="%Y%m%d", cancellation_prefix=None)
    summary = query(db_path, "select reason, row_count from data_quality_summary").set_index("reason")["row_count"]
    assert summary["rows_read"] == len(other)
    assert summary.drop("rows_read").sum() == summary["rows_read"]
    lines = classify_lines(other.astype(str).replace({"nan": ""}), columns, "%Y%m%d", cancellation_prefix=None)
    assert_features_match(db_path, lines)


@pytest.mark.slow
def test_analysis_date_var_sets_the_point_in_time(demo_db_as_of_2011):
    db_path = demo_db_as_of_2011  # dbt build with analysis_date 2011-01-01
    rfm = query(db_path, "select * from customer_rfm")
    assert (rfm["analysis_date"] == pd.Timestamp("2011-01-01")).all()
    assert (pd.to_datetime(rfm["last_order_date"]) < pd.Timestamp("2011-01-01")).all()
    summary = query(db_path, "select reason, row_count from data_quality_summary").set_index("reason")["row_count"]
    assert summary["after_analysis_date"] > 0


@pytest.mark.slow
def test_a_typed_date_column_parses_whatever_the_text_format(tmp_path):
    raw = pd.read_csv(DEMO_DATA, dtype=str, keep_default_na=False).head(2000)
    with duckdb.connect() as con:
        con.register("raw", raw)
        con.execute(f"""copy (select * replace (try_cast(trim(InvoiceDate) as date) as InvoiceDate) from raw)
                        to '{tmp_path / "typed.parquet"}' (format parquet)""")
    db_path = dbt_build(tmp_path / "typed.duckdb", transactions_path=str(tmp_path / "typed.parquet"))
    summary = query(db_path, "select reason, row_count from data_quality_summary").set_index("reason")["row_count"]
    assert summary["unparseable"] == 0
    assert summary["rows_kept"] > 1000
