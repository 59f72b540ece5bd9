"""An independent pandas implementation of segkit's cleaning rules and features, to check the dbt models."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

REASONS = (
    "unparseable", "missing_customer_id", "duplicate", "non_product_code", "zero_or_negative_price",
    "extreme_quantity", "extreme_amount", "date_before_1900", "future_date", "after_analysis_date",
    "return_without_purchase",
)


def _text(raw: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series([None] * len(raw), index=raw.index, dtype=object)
    stripped = raw[column].astype(str).str.strip()
    return stripped.where(stripped != "", None)


def classify_lines(raw: pd.DataFrame, columns: dict, date_format: str | None, non_product_codes=(),
                   extreme_quantity=10_000, cancellation_prefix="C", extraction_date: date | None = None,
                   analysis_date: date | None = None) -> pd.DataFrame:
    """One row per raw line with its rejection reason (None when kept), following the documented order."""
    extraction_date = extraction_date or date.today()
    lines = pd.DataFrame(index=raw.index)
    customer = _text(raw, columns.get("customer_id"))
    lines["customer_id"] = customer.str.replace(r"\.0+$", "", regex=True)
    order_id = _text(raw, columns.get("order_id"))
    date_text = _text(raw, columns.get("order_date"))
    parsed = pd.to_datetime(date_text, format=date_format, errors="coerce")
    lines["order_date"] = parsed.dt.normalize()
    quantity_text = _text(raw, columns.get("quantity"))
    price_text = _text(raw, columns.get("unit_price"))
    amount_text = _text(raw, columns.get("line_amount"))
    quantity = pd.to_numeric(quantity_text, errors="coerce")
    price = pd.to_numeric(price_text, errors="coerce")
    amount = pd.to_numeric(amount_text, errors="coerce")
    lines["line_amount"] = amount if columns.get("line_amount") else quantity * price
    product = _text(raw, columns.get("product_id"))
    lines["product_id"] = product.str.upper() if columns.get("product_id") else product
    lines["order_key"] = order_id.fillna(lines["customer_id"] + "|" + lines["order_date"].dt.strftime("%Y-%m-%d"))
    sign_source = quantity if columns.get("quantity") else amount
    is_return = sign_source < 0
    if cancellation_prefix:
        is_return |= order_id.fillna("").str.startswith(cancellation_prefix)
    lines["is_return"] = is_return

    unparseable = (
        lines["order_date"].isna()
        | (quantity_text.notna() & quantity.isna())
        | (price_text.notna() & price.isna())
        | (amount_text.notna() & amount.isna())
        | lines["line_amount"].isna()
    )
    price_or_amount = price if columns.get("unit_price") else lines["line_amount"].abs()
    checks = [
        ("unparseable", unparseable),
        ("missing_customer_id", lines["customer_id"].isna()),
        ("duplicate", raw.duplicated(keep="first")),
        ("non_product_code", lines["product_id"].isin([c.upper() for c in non_product_codes])),
        ("zero_or_negative_price", price_or_amount <= 0),
        ("extreme_quantity", quantity.abs() >= extreme_quantity),
        ("extreme_amount", lines["line_amount"].abs() >= 1_000_000_000),
        ("date_before_1900", lines["order_date"] < pd.Timestamp("1900-01-01")),
        ("future_date", lines["order_date"] > pd.Timestamp(extraction_date)),
    ]
    reason = pd.Series([None] * len(lines), index=lines.index, dtype=object)
    for name, failed in checks:
        reason = reason.where(reason.notna() | ~failed.fillna(False).astype(bool), name)
    if analysis_date is None:
        analysis_date = (lines.loc[reason.isna(), "order_date"].max() + timedelta(days=1)).date()
    after = lines["order_date"] >= pd.Timestamp(analysis_date)
    reason = reason.where(reason.notna() | ~after, "after_analysis_date")
    buyers = set(lines.loc[reason.isna() & ~lines["is_return"], "customer_id"])
    orphan_return = lines["is_return"] & ~lines["customer_id"].isin(buyers)
    reason = reason.where(reason.notna() | ~orphan_return, "return_without_purchase")
    lines["rejection_reason"] = reason
    lines.attrs["analysis_date"] = analysis_date
    return lines


def customer_features(lines: pd.DataFrame) -> pd.DataFrame:
    """Per-customer features from classified lines, as documented for the customer_rfm mart."""
    analysis_date = pd.Timestamp(lines.attrs["analysis_date"])
    kept = lines[lines["rejection_reason"].isna()]
    purchases = kept[~kept["is_return"]]
    returns = kept[kept["is_return"]]
    grouped = purchases.groupby("customer_id")
    features = pd.DataFrame({
        "first_order_date": grouped["order_date"].min(),
        "last_order_date": grouped["order_date"].max(),
        "frequency": grouped["order_key"].nunique(),
        "order_days": grouped["order_date"].nunique(),
        "monetary_total": grouped["line_amount"].sum(),
        "distinct_products": grouped["product_id"].nunique(),
    })
    features["recency_days"] = (analysis_date - features["last_order_date"]).dt.days
    features["tenure_days"] = (analysis_date - features["first_order_date"]).dt.days
    features["avg_order_value"] = features["monetary_total"] / features["frequency"]
    span = (features["last_order_date"] - features["first_order_date"]).dt.days
    features["avg_days_between_orders"] = np.where(
        features["order_days"] > 1, span / (features["order_days"] - 1).clip(lower=1), np.nan)
    features["returns_total"] = returns.groupby("customer_id")["line_amount"].sum().abs().reindex(
        features.index).fillna(0.0)
    features["return_rate"] = features["returns_total"] / features["monetary_total"]
    return features.drop(columns="order_days")
