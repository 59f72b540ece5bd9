"""segkit's cleaning rules and features in pandas, written from the README (Cleaning, Features), not from the SQL.

The dbt models are compared with this on the demo data and on small cases; where the two disagree, the README
decides which one is wrong.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

# The README's check order: a line is rejected for the first check it fails.
REASONS = (
    "unparseable", "missing_customer_id", "duplicate", "non_product_code", "zero_or_negative_price",
    "zero_quantity_or_amount", "extreme_quantity", "extreme_amount", "date_before_1900", "future_date",
    "after_analysis_date", "return_without_purchase",
)

# A plain number; or one currency symbol before or after it; thousands separators only with a decimal point.
_PLAIN = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_WITH_SYMBOL = re.compile(r"([+-]?)[£$€¥]?\s*(\d{1,3}(?:,\d{3})+\.\d+|\d+\.?\d*|\.\d+)\s*[£$€¥]?")
_SPACE = "\u200b\ufeff"  # zero-width spaces, besides what str.isspace() and category Zs cover


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    if _PLAIN.fullmatch(text):
        value = float(text)
    elif match := _WITH_SYMBOL.fullmatch(text):
        value = float(match.group(1) + match.group(2).replace(",", ""))
    else:
        return None
    return value if np.isfinite(value) else None  # NaN and infinity never parse


def _customer_id(text: str | None) -> str | None:
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text)
    text = text.strip("".join(c for c in set(text) if c.isspace() or unicodedata.category(c) == "Zs" or c in _SPACE))
    text = re.sub(r"\.0+$", "", text)
    return text or None


def _order_date(text: str | None, date_format: str | None) -> date | None:
    """The format first, else ISO; a time with a time zone is dated in UTC, one without as written."""
    if text is None:
        return None
    parsed = None
    if date_format:
        try:
            parsed = datetime.strptime(text, date_format)
        except ValueError:
            pass
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc)
    return parsed.date()


def _text(raw: pd.DataFrame, column: str | None) -> pd.Series:
    if column is None:
        return pd.Series([None] * len(raw), index=raw.index, dtype=object)
    stripped = raw[column].astype(str).str.strip()
    return stripped.where(stripped != "", None)


def _parsed(values: pd.Series, parse) -> pd.Series:
    """parse() of each distinct value, as objects (None where nothing parsed)."""
    distinct = {value: parse(value) for value in values.dropna().unique()}
    return pd.Series([distinct.get(value) if value is not None else None for value in values], index=values.index,
                     dtype=object)


def _compare(values: pd.Series, test) -> pd.Series:
    """test() of each value that is there, False where it is missing."""
    return values.map(lambda value: value is not None and not pd.isna(value) and bool(test(value))).astype(bool)


def classify_lines(raw: pd.DataFrame, columns: dict, date_format: str | None, non_product_codes=(),
                   extreme_quantity=10_000, cancellation_prefix="C", extraction_date: date | None = None,
                   analysis_date: date | None = None) -> pd.DataFrame:
    """One row per raw line (raw: every column as text) with its rejection reason, None when kept."""
    extraction_date = extraction_date or date.today()
    lines = pd.DataFrame(index=raw.index)
    lines["customer_id"] = _parsed(_text(raw, columns.get("customer_id")), _customer_id)
    order_id = _text(raw, columns.get("order_id"))
    date_text = _text(raw, columns.get("order_date"))
    lines["order_date"] = _parsed(date_text, lambda text: _order_date(text, date_format))
    texts = {name: _text(raw, columns.get(name)) for name in ("quantity", "unit_price", "line_amount")}
    numbers = {name: _parsed(text, _number) for name, text in texts.items()}
    quantity, price = numbers["quantity"], numbers["unit_price"]
    # A line's amount is its line_amount, else its quantity times its unit price.
    product = pd.Series([q * p if q is not None and p is not None else None for q, p in zip(quantity, price)],
                        index=raw.index, dtype=object)
    amount = numbers["line_amount"].where(numbers["line_amount"].notna(), product)
    lines["quantity"], lines["unit_price"], lines["line_amount"] = quantity, price, amount
    lines["product_id"] = _text(raw, columns.get("product_id")).str.upper()
    # Without an order id, an order is one customer on one date.
    lines["order_key"] = [order if order is not None else f"{customer}|{day}" if customer and day else None
                          for order, customer, day in zip(order_id, lines["customer_id"], lines["order_date"])]
    # A return: the order id starts with the cancellation prefix, or the quantity or the amount is negative.
    is_return = _compare(quantity, lambda q: q < 0) | _compare(amount, lambda a: a < 0)
    if cancellation_prefix:
        is_return |= _compare(order_id, lambda text: text.startswith(cancellation_prefix))
    lines["is_return"] = is_return

    # The order date or the amount is missing, or a mapped value is there but does not parse.
    unparseable = lines["order_date"].isna() | amount.isna()
    for name, text in texts.items():
        unparseable |= text.notna() & numbers[name].isna()
    codes = {code.upper() for code in non_product_codes}
    checks = [
        ("unparseable", unparseable),
        ("missing_customer_id", lines["customer_id"].isna()),
        ("duplicate", raw.duplicated(keep="first")),
        ("non_product_code", _compare(lines["product_id"], lambda code: code in codes)),
        ("zero_or_negative_price", _compare(price, lambda p: p <= 0)),
        ("zero_quantity_or_amount",  # no units, or worth 0.00: less than half a cent
         _compare(quantity, lambda q: q == 0) | _compare(amount, lambda a: abs(a) < 0.005)),
        ("extreme_quantity", _compare(quantity, lambda q: abs(q) >= extreme_quantity)),
        ("extreme_amount", _compare(amount, lambda a: abs(a) >= 1_000_000_000)),
        ("date_before_1900", _compare(lines["order_date"], lambda d: d < date(1900, 1, 1))),
        ("future_date", _compare(lines["order_date"], lambda d: d > extraction_date)),
    ]
    reason = pd.Series([None] * len(lines), index=lines.index, dtype=object)
    for name, failed in checks:
        reason = reason.where(reason.notna() | ~failed, name)
    if analysis_date is None:  # the day after the last line that passed the checks so far
        last = max(lines.loc[reason.isna(), "order_date"], default=None)
        analysis_date = last + timedelta(days=1) if last else None
    after = _compare(lines["order_date"], lambda d: analysis_date is None or d >= analysis_date)
    reason = reason.where(reason.notna() | ~after, "after_analysis_date")
    buyers = set(lines.loc[reason.isna() & ~lines["is_return"], "customer_id"])
    orphan_return = lines["is_return"] & ~lines["customer_id"].isin(buyers)
    reason = reason.where(reason.notna() | ~orphan_return, "return_without_purchase")
    lines["rejection_reason"] = reason
    lines.attrs["analysis_date"] = analysis_date
    return lines


def customer_features(lines: pd.DataFrame) -> pd.DataFrame:
    """Per-customer features from classified lines, as the README's Features paragraph defines them."""
    analysis_date = pd.Timestamp(lines.attrs["analysis_date"])
    kept = lines[lines["rejection_reason"].isna()].assign(
        order_date=lambda frame: pd.to_datetime(frame["order_date"]),
        line_amount=lambda frame: frame["line_amount"].astype(float))
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
    features["returns_total"] = returns["line_amount"].abs().groupby(returns["customer_id"]).sum().reindex(
        features.index).fillna(0.0)
    features["return_rate"] = features["returns_total"] / features["monetary_total"]
    return features.drop(columns="order_days")
