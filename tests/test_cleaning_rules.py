"""The README's cleaning rules on the real models: zero quantities and amounts, returns, and dates in time zones.

Cases run through the compiled SQL of the real models (milliseconds each) and are compared with tests/reference.py,
which implements the README's rules; a real `dbt build` runs where its data tests (the contract of customer_rfm,
accepted_range) or the machine's time zone are what the case is about.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timezone

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CLEANING_MODELS, ROOT, compile_cleaning, dbt_build
from tests.reference import classify_lines, customer_features

PROJECT_VARS = yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]
WITH_FEATURES = (*CLEANING_MODELS, "customer_rfm")
TIME_ZONES = ("UTC", "Asia/Tokyo", "America/Los_Angeles")

# The layout of issue 16's example: amounts and quantities, no prices, no order ids, no cancellation prefix.
ISSUE_VARS = {
    "columns": {"customer_id": "cust", "order_date": "day", "quantity": "qty", "line_amount": "amount",
                "order_id": None, "unit_price": None, "product_id": None},
    "order_date_format": "%Y%m%d", "cancellation_prefix": None, "extraction_date": "2020-12-31",
}
# Every column mapped (an empty amount is quantity times price), and dates that may carry a UTC offset.
FULL_VARS = {
    "columns": {"customer_id": "cust", "order_id": "order", "order_date": "time", "quantity": "qty",
                "unit_price": "price", "line_amount": "amount", "product_id": "product"},
    "order_date_format": "%Y-%m-%d %H:%M:%S%z", "cancellation_prefix": "C", "extraction_date": "2011-12-31",
}
# The project's defaults (the Online Retail II layout), as the shared compiled_cleaning fixture has them.
RETAIL_VARS = {**{key: PROJECT_VARS[key] for key in ("columns", "order_date_format", "cancellation_prefix")},
               "extraction_date": "2011-12-31"}
RETAIL_HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"


@pytest.fixture(scope="module")
def issue_layout(tmp_path_factory):
    return compile_cleaning(tmp_path_factory.mktemp("issue"), WITH_FEATURES, **ISSUE_VARS)


@pytest.fixture(scope="module")
def full_layout(tmp_path_factory):
    return compile_cleaning(tmp_path_factory.mktemp("full"), WITH_FEATURES, **FULL_VARS)


def reference(text: str, dbt_vars: dict) -> pd.DataFrame:
    """The reference's classification of a CSV file's lines under dbt_vars."""
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    return classify_lines(raw, dbt_vars["columns"], dbt_vars["order_date_format"],
                          non_product_codes=PROJECT_VARS["non_product_codes"],
                          extreme_quantity=PROJECT_VARS["extreme_quantity"],
                          cancellation_prefix=dbt_vars["cancellation_prefix"],
                          extraction_date=date.fromisoformat(dbt_vars["extraction_date"]))


def assert_lines_match(con: duckdb.DuckDBPyConnection, expected: pd.DataFrame) -> None:
    """Each line's reason, return flag and date, and data_quality_summary, as the reference has them."""
    actual = con.execute("""select rejection_reason, is_return, order_date from int_lines_classified
                            order by line_id""").df()
    assert list(actual["rejection_reason"].fillna("kept")) == list(expected["rejection_reason"].fillna("kept"))
    assert list(actual["is_return"]) == list(expected["is_return"])
    assert [d.date() if not pd.isna(d) else None for d in actual["order_date"]] == list(expected["order_date"])
    summary = dict(con.execute("select reason, row_count from data_quality_summary where row_count > 0").fetchall())
    assert summary.pop("rows_read") == len(expected)
    assert summary == expected["rejection_reason"].fillna("rows_kept").value_counts().to_dict()


def assert_features_match(con: duckdb.DuckDBPyConnection, expected_lines: pd.DataFrame) -> pd.DataFrame:
    """customer_rfm as the reference computes it from its lines; returns customer_rfm."""
    expected = customer_features(expected_lines).sort_index()
    actual = con.execute("select * from customer_rfm order by customer_id").df().set_index("customer_id")
    assert list(actual.index) == list(expected.index)
    for column in ("recency_days", "tenure_days", "frequency", "distinct_products"):
        assert list(actual[column].astype(int)) == list(expected[column].astype(int)), column
    for column in ("first_order_date", "last_order_date"):
        assert list(pd.to_datetime(actual[column])) == list(expected[column]), column
    for column in ("monetary_total", "avg_order_value", "returns_total"):
        np.testing.assert_allclose(actual[column].astype(float), expected[column], atol=0.005 + 1e-9, rtol=0,
                                   err_msg=column)
    np.testing.assert_allclose(actual["return_rate"], expected["return_rate"], rtol=1e-6, atol=1e-9)
    assert (actual["monetary_total"] >= 0.01).all() and (actual["returns_total"] >= 0).all()
    return actual


# --- Zero quantities and zero amounts ----------------------------------------------------------------------------

def retail_line(invoice: str, quantity: str, day: str, price: str, customer: str) -> str:
    return f"{invoice},A,free text,{quantity},2010-12-{day} 10:00:00,{price},{customer},UK"


def test_a_zero_quantity_at_a_positive_price_is_no_order(compiled_cleaning):
    text = "\n".join([RETAIL_HEADER,
                      retail_line("1", "1", "01", "2.50", "100"),
                      retail_line("2", "0", "05", "2.50", "100"),     # later: must not set recency or frequency
                      retail_line("3", "0", "02", "2.50", "101"),     # the customer's only line
                      retail_line("4", "1", "03", "0.004", "102"),    # worth 0.004: 0.00 in money
                      retail_line("5", "3", "03", "0.004", "102")]) + "\n"  # worth 0.012: a purchase
    with compiled_cleaning.run({"t.csv": text}) as con:
        assert_lines_match(con, reference(text, RETAIL_VARS))
        purchases = con.execute("""select customer_id, orders, last_purchase_date, monetary_total
            from int_lines_aggregated_to_customers where rejection_reason is null and first_purchase_date is not null
            order by customer_id""").fetchall()
        reasons = dict(con.execute("select reason, row_count from data_quality_summary").fetchall())
    assert [(customer, orders, day.isoformat(), float(total)) for customer, orders, day, total in purchases] == [
        ("100", 1, "2010-12-01", 2.5), ("102", 1, "2010-12-03", 0.012)]
    assert reasons["zero_quantity_or_amount"] == 3


def test_zero_amounts_and_zero_quantities_are_neither_purchases_nor_returns(issue_layout):
    text = ("cust,day,qty,amount\n"
            "A,20200101,1,10.00\n"
            "A,20200102,0,10.00\n"      # no units: not an order, whatever the amount
            "B,20200101,2,0\n"          # worth nothing
            "B,20200103,1,0.004\n"      # less than half a cent
            "C,20200101,1,5.00\n"
            "C,20200104,-1,-0.001\n"    # a return worth nothing
            "D,20200105,0,0\n")
    expected = reference(text, ISSUE_VARS)
    with issue_layout.run({"t.csv": text}) as con:
        assert_lines_match(con, expected)
        rfm = assert_features_match(con, expected)
    assert list(expected["rejection_reason"].fillna("kept")) == [
        "kept", "zero_quantity_or_amount", "zero_quantity_or_amount", "zero_quantity_or_amount", "kept",
        "zero_quantity_or_amount", "zero_quantity_or_amount"]
    assert list(rfm.index) == ["A", "C"] and list(rfm["frequency"]) == [1, 1]


# --- Returns -------------------------------------------------------------------------------------------------------

ISSUE_EXAMPLE = "cust,day,qty,amount\nA,20200101,1,10.00\nA,20200105,1,-30.00\nB,20200101,1,5.00\n"


def test_a_negative_amount_at_a_positive_quantity_is_a_return(issue_layout):
    expected = reference(ISSUE_EXAMPLE, ISSUE_VARS)
    with issue_layout.run({"t.csv": ISSUE_EXAMPLE}) as con:
        assert_lines_match(con, expected)
        rfm = assert_features_match(con, expected)
    assert list(expected["is_return"]) == [False, True, False]
    a = rfm.loc["A"]
    # Returns bigger than the purchases: spend stays the purchases' gross value, the rate goes above 1.
    assert (a["frequency"], float(a["monetary_total"]), float(a["returns_total"]), a["return_rate"]) == \
        (1, 10.0, 30.0, 3.0)


def test_a_negative_quantity_at_a_positive_amount_is_a_return(issue_layout):
    text = "cust,day,qty,amount\nA,20200101,2,10.00\nA,20200103,-1,5.00\nB,20200101,-1,5.00\n"
    expected = reference(text, ISSUE_VARS)
    with issue_layout.run({"t.csv": text}) as con:
        assert_lines_match(con, expected)
        rfm = assert_features_match(con, expected)
    assert list(expected["rejection_reason"].fillna("kept")) == ["kept", "kept", "return_without_purchase"]
    assert (float(rfm.loc["A", "monetary_total"]), float(rfm.loc["A", "returns_total"])) == (10.0, 5.0)


@pytest.mark.slow
def test_returns_and_zero_lines_pass_the_data_tests_of_a_real_build(tmp_path):
    """Issue 16's example and a customer with only a zero-quantity line: before the fix, accepted_range failed."""
    text = ("cust,day,qty,price,amount\n"
            "A,20200101,1,,10.00\n"
            "A,20200105,1,,-30.00\n"
            "B,20200101,1,,5.00\n"
            "C,20200103,0,2.50,\n")
    (tmp_path / "t.csv").write_text(text)
    dbt_vars = {**ISSUE_VARS, "columns": {**ISSUE_VARS["columns"], "unit_price": "price"}}
    db_path = dbt_build(tmp_path / "t.duckdb", transactions_path=str(tmp_path / "t.csv"),
                        **dbt_vars)  # raises when a data test fails
    expected = reference(text, dbt_vars)
    with duckdb.connect(str(db_path), read_only=True) as con:
        con.execute("set search_path = 'main_build'")  # where the build keeps the line-level models
        assert_lines_match(con, expected)
        rfm = assert_features_match(con, expected)
    assert list(rfm.index) == ["A", "B"]


# --- Dates in time zones --------------------------------------------------------------------------------------------

def test_a_time_with_a_utc_offset_is_dated_in_utc_whatever_the_session_time_zone(full_layout):
    times = ["2010-12-01 20:00:00+0000",      # 05:00 the next day in Tokyo
             "2010-12-02 01:00:00+0900",      # read with %z: 2010-12-01 in UTC
             "2010-12-03T01:00:00+09:00",     # ISO text with an offset: 2010-12-02 in UTC
             "2010-12-04 23:30:00",           # no time zone: as written
             "2010-12-05 03:00:00+00:00"]     # 19:00 the day before in Los Angeles
    text = "order,cust,time,qty,price,amount,product\n" + "".join(
        f"{n},A,{time},1,2.50,,P{n}\n" for n, time in enumerate(times))
    expected = reference(text, FULL_VARS)
    assert [d.isoformat() for d in expected["order_date"]] == [
        "2010-12-01", "2010-12-01", "2010-12-02", "2010-12-04", "2010-12-05"]
    for time_zone in TIME_ZONES:
        with full_layout.run({"t.csv": text}, time_zone=time_zone) as con:
            assert_lines_match(con, expected)
            assert_features_match(con, expected)


@pytest.mark.slow
def test_a_typed_timestamp_with_a_time_zone_is_dated_in_utc_on_any_machine(tmp_path, monkeypatch):
    instants = [datetime(2020, 1, 1, 20, tzinfo=timezone.utc), datetime(2020, 1, 3, 10, tzinfo=timezone.utc),
                datetime(2020, 1, 2, 16, 30, tzinfo=timezone.utc)]
    frame = pd.DataFrame({"cust": ["A", "A", "B"], "ts": instants, "qty": [1, 1, 2], "amount": [10.0, 5.0, 4.0]})
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.register("frame", frame)
        con.execute(f"copy (select cust, cast(ts as timestamptz) as ts, qty, amount from frame) "
                    f"to '{tmp_path / 't.parquet'}' (format parquet)")
        assert con.execute(f"select typeof(ts) from '{tmp_path / 't.parquet'}' limit 1").fetchone()[0] == \
            "TIMESTAMP WITH TIME ZONE"
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # dbt's DuckDB session takes the machine's time zone from TZ
    columns = {**ISSUE_VARS["columns"], "order_date": "ts"}
    dbt_vars = {**ISSUE_VARS, "columns": columns, "order_date_format": None}
    db_path = dbt_build(tmp_path / "t.duckdb", select="+int_lines_aggregated_to_customers",
                        transactions_path=str(tmp_path / "t.parquet"), **dbt_vars)
    # The same instants as ISO text, through the reference.
    text = frame.assign(ts=[instant.isoformat() for instant in instants]).to_csv(index=False)
    expected = customer_features(reference(text, dbt_vars))
    with duckdb.connect(str(db_path), read_only=True) as con:
        dates = con.execute("""select customer_id, first_purchase_date, last_purchase_date
                               from main_build.int_lines_aggregated_to_customers
                               where rejection_reason is null order by customer_id""").fetchall()
    assert dates == [(customer, row.first_order_date.date(), row.last_order_date.date())
                     for customer, row in expected.iterrows()]
    assert dates == [("A", date(2020, 1, 1), date(2020, 1, 3)), ("B", date(2020, 1, 2), date(2020, 1, 2))]


# --- Generated lines against the reference ---------------------------------------------------------------------------

generated_lines = st.lists(st.tuples(
    st.sampled_from(["1", "2", "C3", ""]),                                   # order
    st.sampled_from(["A", "B", "C"]),                                        # customer
    st.sampled_from(["2010-12-01 10:00:00+0000", "2010-12-02 01:00:00+0900", "2010-12-01T20:00:00-05:00",
                     "2010-12-03 23:00:00", "2011-12-31 23:00:00", "2012-01-01 01:00:00+0900",
                     "1899-12-31 10:00:00", "not a date"]),                  # time
    st.sampled_from(["1", "3", "-1", "-2", "0", "10000", "-10000", "", "x"]),  # quantity
    st.sampled_from(["2.50", "0.004", "0", "-1", "1000000", ""]),            # price
    st.sampled_from(["", "", "10.00", "-30.00", "0", "0.004", "-0.001", "1000000000"]),  # amount
    st.sampled_from(["P1", "P2", "POST"]),                                   # product
), min_size=1, max_size=20)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=generated_lines, time_zone=st.sampled_from(TIME_ZONES))
def test_generated_lines_are_classified_and_summed_as_the_reference_says(full_layout, rows, time_zone):
    text = "order,cust,time,qty,price,amount,product\n" + "".join(",".join(row) + "\n" for row in rows)
    expected = reference(text, FULL_VARS)
    with full_layout.run({"t.csv": text}, time_zone=time_zone) as con:
        assert_lines_match(con, expected)
        assert_features_match(con, expected)
