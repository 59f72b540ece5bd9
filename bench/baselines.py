"""The two pandas pipelines segkit is measured against, run by bench/run.py in a child process.

    python bench/baselines.py a|b FILE.parquet [FILE.parquet ...]

a: a tutorial-style notebook: read everything, clean, group by with lambdas, StandardScaler, KMeans elbow
   loop over k = 2..10, and a silhouette on every customer.
b: a well-written pandas pipeline: only the needed columns, vectorised cleaning, named aggregations,
   the same k loop with a silhouette on a seeded 10,000-customer sample.

Both apply segkit's cleaning rules (unparseable, missing customer, exact duplicates, non-product codes, zero or
negative price, extreme quantity, future dates, returns without a purchase) and its R, F, M definitions, so they
do the same work. Each step prints its elapsed time as it ends, so a run stopped by the time or memory bound
still shows how far it got.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

NON_PRODUCT_CODES = ["POST", "DOT", "M", "BANK CHARGES", "D", "S", "AMAZONFEE", "C2", "ADJUST", "ADJUST2", "B",
                     "CRUK", "PADS", "TEST001", "TEST002"]
EXTREME_QUANTITY = 10000
STARTED = time.perf_counter()


def step(name: str) -> None:
    print(f"{name} done at {time.perf_counter() - STARTED:.1f} s", flush=True)


def baseline_a(files: list[str]) -> None:
    df = pd.concat([pd.read_parquet(file) for file in files], ignore_index=True)
    step("read")
    df = df.drop_duplicates()
    df["Customer ID"] = df["Customer ID"].str.strip().str.replace(r"\.0+$", "", regex=True)
    df = df[df["Customer ID"].notna() & (df["Customer ID"] != "")]
    df = df.dropna(subset=["InvoiceDate", "Quantity", "Price"])
    df["StockCode"] = df["StockCode"].str.strip().str.upper()
    df = df[~df["StockCode"].isin(NON_PRODUCT_CODES)]
    df = df[df["Price"] > 0]
    df = df[df["Quantity"].abs() < EXTREME_QUANTITY]
    df = df[df["InvoiceDate"] <= pd.Timestamp.now()]
    df["TotalPrice"] = df["Quantity"] * df["Price"]
    df["IsReturn"] = df["Invoice"].str.startswith("C") | (df["Quantity"] < 0)
    purchases = df[~df["IsReturn"]]
    analysis_date = purchases["InvoiceDate"].max().normalize() + pd.Timedelta(days=1)
    step("clean")
    rfm = purchases.groupby("Customer ID").agg({
        "InvoiceDate": lambda dates: (analysis_date - dates.max().normalize()).days,
        "Invoice": lambda invoices: invoices.nunique(),
        "TotalPrice": lambda amounts: amounts.sum(),
    })
    rfm.columns = ["Recency", "Frequency", "Monetary"]
    step(f"group by ({len(rfm):,} customers)")
    X = StandardScaler().fit_transform(np.log1p(rfm[["Recency", "Frequency", "Monetary"]]))
    inertias = {}
    for k in range(2, 11):
        inertias[k] = KMeans(n_clusters=k, n_init=10, random_state=42).fit(X).inertia_
    step("elbow loop k=2..10")
    labels = KMeans(n_clusters=4, n_init=10, random_state=42).fit_predict(X)
    step("final fit")
    print(f"silhouette {silhouette_score(X, labels):.3f}")
    step("full silhouette")


def baseline_b(files: list[str]) -> None:
    columns = ["Invoice", "StockCode", "Quantity", "InvoiceDate", "Price", "Customer ID"]
    df = pd.concat([pd.read_parquet(file) for file in files], ignore_index=True)
    step("read")
    # An exact duplicate is a copy of the whole line, so duplicates are found before dropping columns.
    df = df[~df.duplicated()][columns]
    customer = df["Customer ID"].str.strip().str.replace(r"\.0+$", "", regex=True)
    product = df["StockCode"].str.strip().str.upper()
    keep = (customer.notna() & (customer != "") & df["InvoiceDate"].notna() & df["Quantity"].notna()
            & df["Price"].notna() & ~product.isin(NON_PRODUCT_CODES) & (df["Price"] > 0)
            & (df["Quantity"].abs() < EXTREME_QUANTITY) & (df["InvoiceDate"] <= pd.Timestamp.now()))
    lines = pd.DataFrame({
        "customer_id": customer[keep],
        "order_id": df["Invoice"][keep],
        "order_date": df["InvoiceDate"][keep].dt.normalize(),
        "amount": (df["Quantity"] * df["Price"])[keep],
        "is_return": (df["Invoice"].str.startswith("C") | (df["Quantity"] < 0))[keep],
    })
    del df
    purchases = lines[~lines["is_return"]]
    analysis_date = purchases["order_date"].max() + pd.Timedelta(days=1)
    step("clean")
    rfm = purchases.groupby("customer_id").agg(
        last_order=("order_date", "max"), frequency=("order_id", "nunique"), monetary=("amount", "sum"))
    rfm["recency"] = (analysis_date - rfm["last_order"]).dt.days
    step(f"group by ({len(rfm):,} customers)")
    X = StandardScaler().fit_transform(np.log1p(rfm[["recency", "frequency", "monetary"]].to_numpy(float)))
    rows = np.random.default_rng(42).choice(len(X), min(len(X), 10_000), replace=False)
    scores = {}
    for k in range(2, 11):
        labels = KMeans(n_clusters=k, n_init=1, random_state=42).fit_predict(X)
        scores[k] = silhouette_score(X[rows], labels[rows])
    step("k loop 2..10 with sampled silhouette")
    best_k = max(scores, key=scores.get)
    KMeans(n_clusters=best_k, n_init=1, random_state=42).fit(X)
    step(f"final fit (k={best_k})")


if __name__ == "__main__":
    {"a": baseline_a, "b": baseline_b}[sys.argv[1]](sys.argv[2:])
