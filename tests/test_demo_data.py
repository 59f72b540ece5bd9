"""Tests for segkit.demo_data: reproducible files, the Online Retail II layout, planted defects and behaviours."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from segkit.demo_data import EXTRACTION_DATE, NON_PRODUCT_CODES, default_truth_path, generate_demo_data
from segkit.errors import SegkitError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "data" / "demo" / "online_retail_demo.csv.gz"
HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
CUSTOMERS = 1500


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A generated file of CUSTOMERS customers, read back as text, with its summary and truth table."""
    path = tmp_path_factory.mktemp("demo") / "retail.csv.gz"
    summary = generate_demo_data(path, customers=CUSTOMERS, seed=7)
    lines = pd.read_csv(path, dtype=str, keep_default_na=False)
    truth = pd.read_csv(summary.truth_path, dtype=str)
    return summary, lines, truth


def _trimmed(lines: pd.DataFrame) -> pd.DataFrame:
    return lines.apply(lambda column: column.str.strip())


def test_same_seed_and_size_give_identical_bytes_and_another_seed_differs(tmp_path):
    first = generate_demo_data(tmp_path / "a.csv.gz", customers=300, seed=1)
    again = generate_demo_data(tmp_path / "b.csv.gz", customers=300, seed=1)
    other = generate_demo_data(tmp_path / "c.csv.gz", customers=300, seed=2)

    assert first.path.read_bytes() == again.path.read_bytes()
    assert first.truth_path.read_bytes() == again.truth_path.read_bytes()
    assert first.path.read_bytes() != other.path.read_bytes()
    assert first.truth_path.read_bytes() != other.truth_path.read_bytes()


def test_truth_path_defaults_beside_the_data_without_csv_gz(tmp_path):
    summary = generate_demo_data(tmp_path / "retail.csv.gz", customers=50)

    assert default_truth_path(Path("x/retail.csv")) == Path("x/retail_truth.csv")
    assert summary.truth_path == tmp_path / "retail_truth.csv"
    assert summary.truth_path.exists()


def test_too_few_customers_for_every_behaviour_is_a_segkit_error(tmp_path):
    with pytest.raises(SegkitError, match="at least one customer"):
        generate_demo_data(tmp_path / "retail.csv.gz", customers=3)


def test_plain_csv_path_writes_uncompressed_text(tmp_path):
    summary = generate_demo_data(tmp_path / "retail.csv", customers=50)

    assert summary.path.read_text().splitlines()[0] == HEADER


def test_header_is_exactly_the_online_retail_ii_header(demo):
    summary, _, _ = demo
    with gzip.open(summary.path, "rt") as handle:
        assert handle.readline().rstrip("\n") == HEADER


def test_summary_counts_match_the_file(demo):
    summary, lines, truth = demo

    assert summary.lines == len(lines)
    assert summary.customers == len(truth) == CUSTOMERS
    assert summary.defect_counts["missing_customer_id"] == (lines["Customer ID"] == "").sum()
    assert summary.defect_counts["duplicate"] == lines.duplicated().sum()


def test_missing_customer_ids_and_duplicates_are_at_published_rates(demo):
    _, lines, _ = demo

    assert 0.20 <= (lines["Customer ID"].str.strip() == "").mean() <= 0.25
    assert 0.025 <= lines.duplicated().mean() <= 0.04


def test_cancellations_are_negative_and_mostly_match_an_earlier_purchase(demo):
    _, lines, _ = demo
    data = _trimmed(lines).drop_duplicates()
    data["Quantity"] = data["Quantity"].astype(int)
    is_cancel = data["Invoice"].str.startswith("C")
    cancels = data[is_cancel & ~data["StockCode"].isin(NON_PRODUCT_CODES)]
    purchases = data[data["Invoice"].str.fullmatch(r"\d{6}")]
    key = ["Customer ID", "StockCode"]
    matched = cancels.assign(Quantity=-cancels["Quantity"]).merge(
        purchases[key + ["Quantity", "InvoiceDate"]], on=key + ["Quantity"], suffixes=("", "_purchase"))
    matched = matched[matched["InvoiceDate_purchase"] <= matched["InvoiceDate"]]

    assert 0.01 <= is_cancel.mean() <= 0.03
    assert (cancels["Quantity"] < 0).all()
    assert 0.6 < matched[key + ["Invoice"]].drop_duplicates().shape[0] / len(cancels) < 1.0


def test_every_extreme_quantity_is_cancelled_by_the_same_customer_code_and_quantity(demo):
    _, lines, _ = demo
    data = _trimmed(lines)
    data["Quantity"] = data["Quantity"].astype(int)
    outliers = data[data["Quantity"] >= 10_000]
    cancels = data[(data["Quantity"] <= -10_000) & data["Invoice"].str.startswith("C")]
    reversed_keys = set(zip(cancels["Customer ID"], cancels["StockCode"], -cancels["Quantity"]))

    assert len(outliers) >= 2
    assert 80995 in set(outliers["Quantity"])
    assert set(zip(outliers["Customer ID"], outliers["StockCode"], outliers["Quantity"])) <= reversed_keys


def test_other_defects_are_present(demo):
    summary, lines, _ = demo
    data = _trimmed(lines)
    dates = pd.to_datetime(data["InvoiceDate"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    future = data["InvoiceDate"] > f"{EXTRACTION_DATE:%Y-%m-%d}"
    untrimmed = (lines != data).any(axis=1)
    bad_debt = data[data["Invoice"].str.startswith("A")]

    assert future.sum() >= 3 and data.loc[future, "InvoiceDate"].str.startswith("21").all()
    assert dates[~future].between("2009-12-01", "2011-12-10").all()
    assert untrimmed.sum() == summary.defect_counts["untrimmed_text"] > 0
    for column in ("Description", "StockCode", "Country", "Customer ID"):
        assert (lines[column] != data[column]).any(), column
    assert 0.001 <= (data["Price"].astype(float) == 0).mean() <= 0.006
    assert 0.003 <= data["StockCode"].isin(NON_PRODUCT_CODES).mean() <= 0.008
    assert len(bad_debt) >= 1
    assert (bad_debt["StockCode"] == "B").all() and (bad_debt["Customer ID"] == "").all()
    assert (bad_debt["Price"].astype(float) < 0).all()


def test_invoice_numbers_and_customer_ids_look_like_the_published_file(demo):
    _, lines, _ = demo
    data = _trimmed(lines)

    assert data["Invoice"].str.fullmatch(r"[CA]?\d{6}").all()
    assert data["Customer ID"].str.fullmatch(r"(\d+\.0)?").all()
    assert (data["Country"] == "United Kingdom").mean() > 0.8
    assert data["StockCode"].nunique() > 3000


def test_every_customer_has_exactly_one_truth_row_and_vice_versa(demo):
    _, lines, truth = demo
    in_data = set(_trimmed(lines)["Customer ID"].str.removesuffix(".0")) - {""}

    assert truth["customer_id"].is_unique
    assert set(truth["customer_id"]) == in_data
    assert set(truth["behaviour"]) == {
        "champion", "loyal_regular", "new_customer", "big_spender_lapsing",
        "one_time_buyer", "long_lost", "bargain_occasional",
    }


def test_planted_behaviours_are_recovered_by_kmeans_on_log_rfm(demo):
    _, lines, truth = demo
    data = _trimmed(lines).drop_duplicates()
    data = data[(data["Customer ID"] != "") & data["Invoice"].str.fullmatch(r"\d{6}")]
    data = data[~data["StockCode"].isin(NON_PRODUCT_CODES) & (data["InvoiceDate"] < f"{EXTRACTION_DATE:%Y-%m-%d}")]
    data = data[(data["Price"].astype(float) > 0) & (data["Quantity"].astype(int) < 10_000)]
    data = data.assign(
        customer_id=data["Customer ID"].str.removesuffix(".0"),
        order_date=pd.to_datetime(data["InvoiceDate"]).dt.normalize(),
        amount=data["Quantity"].astype(int) * data["Price"].astype(float),
    )
    analysis_date = data["order_date"].max() + pd.Timedelta(days=1)
    rfm = data.groupby("customer_id").agg(
        last_order=("order_date", "max"), frequency=("Invoice", "nunique"), monetary=("amount", "sum"))
    rfm["recency_days"] = (analysis_date - rfm["last_order"]).dt.days
    rfm = rfm.join(truth.set_index("customer_id"))
    features = StandardScaler().fit_transform(np.log(rfm[["recency_days", "frequency", "monetary"]]))
    labels = KMeans(n_clusters=7, n_init=10, random_state=0).fit_predict(features)

    assert analysis_date == pd.Timestamp(EXTRACTION_DATE)
    assert adjusted_rand_score(rfm["behaviour"], labels) > 0.8


# The shipped file is generated once and kept: numpy promises no seeded stream across versions, so the
# defaults may write other bytes under another numpy. What must hold is the documented planted structure.
SHIPPED_LINES = 119_617
SHIPPED_DEFECTS = {  # data/demo/README.md, "Planted defects"
    "missing_customer_id": 26_996, "duplicate": 3_852, "cancellation": 2_284, "non_product_code": 610,
    "zero_price": 364, "extreme_quantity": 4, "extreme_quantity_cancellation": 4, "future_date": 5,
    "bad_debt_adjustment": 3, "untrimmed_text": 1_826,
}


def _defects_in(lines: pd.DataFrame) -> dict[str, int]:
    """Each documented defect, counted from the file's text alone."""
    data = _trimmed(lines)
    quantity = data["Quantity"].astype(int)
    is_product = ~data["StockCode"].isin(NON_PRODUCT_CODES)
    return {
        "missing_customer_id": int((data["Customer ID"] == "").sum()),
        "duplicate": int(lines.duplicated().sum()),
        "cancellation": int((data["Invoice"].str.startswith("C") & is_product & (quantity > -10_000)).sum()),
        "non_product_code": int((~is_product).sum()),
        "zero_price": int((data["Price"].astype(float) == 0).sum()),
        "extreme_quantity": int((quantity >= 10_000).sum()),
        "extreme_quantity_cancellation": int((quantity <= -10_000).sum()),
        "future_date": int((data["InvoiceDate"] > f"{EXTRACTION_DATE:%Y-%m-%d}").sum()),
        "bad_debt_adjustment": int(data["Invoice"].str.startswith("A").sum()),
        "untrimmed_text": int((lines != data).any(axis=1).sum()),
    }

DOCUMENTED_BEHAVIOUR_SHARES = {  # data/demo/README.md, "Planted behaviours"
    "champion": 0.09, "loyal_regular": 0.17, "new_customer": 0.08, "big_spender_lapsing": 0.07,
    "one_time_buyer": 0.24, "long_lost": 0.17, "bargain_occasional": 0.18,
}


@pytest.fixture(scope="module")
def shipped():
    lines = pd.read_csv(SHIPPED, dtype=str, keep_default_na=False)
    truth = pd.read_csv(default_truth_path(SHIPPED), dtype=str)
    return lines, truth


def test_shipped_demo_file_has_the_documented_lines_defects_and_behaviours(shipped):
    lines, truth = shipped
    customers = set(_trimmed(lines)["Customer ID"].str.removesuffix(".0")) - {""}

    assert len(lines) == SHIPPED_LINES
    assert _defects_in(lines) == SHIPPED_DEFECTS
    assert truth["customer_id"].is_unique and set(truth["customer_id"]) == customers
    assert len(truth) == 4000
    assert truth["behaviour"].value_counts().to_dict() == {
        name: round(share * 4000) for name, share in DOCUMENTED_BEHAVIOUR_SHARES.items()}


def test_the_defaults_generate_the_shipped_structure_on_any_numpy(tmp_path, shipped):
    lines, truth = shipped
    summary = generate_demo_data(tmp_path / SHIPPED.name)
    generated = pd.read_csv(summary.path, dtype=str, keep_default_na=False)
    generated_truth = pd.read_csv(summary.truth_path, dtype=str)

    assert generated_truth["behaviour"].value_counts().to_dict() == truth["behaviour"].value_counts().to_dict()
    assert abs(len(generated) - len(lines)) <= 0.02 * len(lines)
    for defect, count in _defects_in(generated).items():
        assert abs(count - SHIPPED_DEFECTS[defect]) <= max(3, 0.1 * SHIPPED_DEFECTS[defect]), defect
