"""Generate a synthetic transactions file in the UCI Online Retail II layout, with planted segments and defects.

Every customer gets one planted behaviour (written to a truth CSV) so that segmentation can be checked against
known answers, and the lines carry the defects of the published data set at about its rates, so that the
cleaning models have real work to do. The same seed and size always give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segkit import demo_shop as shop
from segkit.errors import SegkitError

HEADER = ("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country")
EXTRACTION_DATE = dt.date(2011, 12, 10)
DEMO_CURRENCY = "£"  # Online Retail II is a UK shop: `segkit demo` shows money in pounds unless currency is set

# Stock codes that are not products: postage, manual entries, fees, discounts, samples and adjustments.
NON_PRODUCT_CODES = ("POST", "DOT", "M", "BANK CHARGES", "D", "S", "AMAZONFEE", "C2", "ADJUST")
BAD_DEBT_CODE = "B"

# Target shares of all lines, after the published Online Retail II figures.
MISSING_CUSTOMER_RATE = 0.2265
DUPLICATE_RATE = 0.0322
CANCELLATION_RATE = 0.019
ZERO_PRICE_RATE = 0.003
NON_PRODUCT_RATE = 0.005
UNTRIMMED_RATES = {"description": 0.006, "stock_code": 0.003, "country": 0.003, "customer_id": 0.004}
BAD_DEBT_LINES = 3
OUTLIER_QUANTITIES = (80995, 74215)

_FIRST_INVOICE = 489434


@dataclass(frozen=True)
class DemoDataSummary:
    """What `generate_demo_data` wrote."""

    path: Path
    truth_path: Path
    customers: int
    lines: int
    seed: int
    defect_counts: dict[str, int]  # lines planted per defect kind; a duplicated guest line counts in both kinds


_NON_PRODUCT_LINES = {  # code: description, share of non-product lines, price median and log-sigma, where it sits
    "POST": ("POSTAGE", 0.42, 18.0, 0.3, "foreign"),
    "DOT": ("DOTCOM POSTAGE", 0.12, 150.0, 0.8, "guest"),
    "M": ("Manual", 0.12, 3.0, 1.2, "customer"),
    "BANK CHARGES": ("Bank Charges", 0.04, 15.0, 0.0, "customer"),
    "D": ("Discount", 0.08, 20.0, 0.8, "discount"),
    "S": ("SAMPLES", 0.04, 30.0, 0.8, "customer"),
    "AMAZONFEE": ("AMAZON FEE", 0.02, 2000.0, 0.9, "guest"),
    "C2": ("CARRIAGE", 0.07, 50.0, 0.0, "customer"),
    "ADJUST": ("Adjustment by john on 26/01/2010 17", 0.09, 50.0, 0.9, "customer"),
}

# Line kinds: each line is planted as exactly one kind (then may be padded and duplicated).
_PURCHASE, _GUEST, _CANCEL, _PARTIAL_RETURN, _ZERO_PRICE, _NON_PRODUCT, _OUTLIER, _OUTLIER_CANCEL, _BAD_DEBT, \
    _FUTURE = range(10)


def default_truth_path(path: Path) -> Path:
    """`<stem>_truth.csv` beside the data file, with `.csv.gz` or `.csv` stripped."""
    name = path.name
    for suffix in (".csv.gz", ".gz", ".csv"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(f"{name}_truth.csv")


def generate_demo_data(
    path: Path, customers: int = 4000, seed: int = 42, truth_path: Path | None = None
) -> DemoDataSummary:
    """Write a synthetic Online Retail II style CSV (gzipped when `path` ends in `.gz`) and its truth CSV.

    The truth CSV has one `customer_id,behaviour` row per customer. Same `seed` and `customers`: same bytes.
    """
    if customers < len(shop.BEHAVIOURS):
        raise SegkitError(
            f"Cannot generate demo data for {customers} customers: each of the {len(shop.BEHAVIOURS)} planted "
            f"behaviours needs at least one customer. Ask for {len(shop.BEHAVIOURS)} or more customers (the default "
            "is 4000)."
        )
    path = Path(path)
    truth_path = Path(truth_path) if truth_path is not None else default_truth_path(path)
    rng = np.random.default_rng(seed)

    lines, truth, defect_counts = _build(rng, customers)
    data = lines.to_csv(index=False, lineterminator="\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:
            zipped.write(data)
    else:
        path.write_bytes(data)
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    truth_path.write_bytes(truth.to_csv(index=False, lineterminator="\n").encode("utf-8"))

    return DemoDataSummary(
        path=path,
        truth_path=truth_path,
        customers=customers,
        lines=len(lines),
        seed=seed,
        defect_counts=defect_counts,
    )


class _Invoices:
    """Invoice headers (day, minute, prefix, customer, country), appended in blocks; lines point at their index."""

    def __init__(self) -> None:
        self._blocks: list[tuple[np.ndarray, ...]] = []
        self.count = 0

    def add(self, day, minute, prefix: str, customer, country) -> np.ndarray:
        day = np.asarray(day, dtype=np.int64)
        n = len(day)
        block = (day, np.broadcast_to(np.asarray(minute, dtype=np.int64), n),
                 np.full(n, prefix, dtype=object), np.broadcast_to(np.asarray(customer, dtype=np.int64), n),
                 np.broadcast_to(np.asarray(country, dtype=np.int64), n))
        self._blocks.append(block)
        keys = np.arange(self.count, self.count + n)
        self.count += n
        return keys

    def columns(self) -> tuple[np.ndarray, ...]:
        return tuple(np.concatenate([block[i] for block in self._blocks]) for i in range(5))


def _build(rng: np.random.Generator, n_customers: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The rendered lines, the truth table and the defect counts."""
    cdf = shop.calendar_cdf()
    products = shop.products(rng, 3950)
    n_products = len(products["code"])
    codes = np.concatenate([products["code"], np.array(NON_PRODUCT_CODES + (BAD_DEBT_CODE,), dtype=object)])
    descriptions = np.concatenate([
        products["description"],
        np.array([_NON_PRODUCT_LINES[c][0] for c in NON_PRODUCT_CODES] + ["Adjust bad debt"], dtype=object),
    ])
    countries = np.array([name for name, _ in shop.COUNTRIES], dtype=object)
    country_p = np.array([p for _, p in shop.COUNTRIES])
    country_p /= country_p.sum()

    cust = shop.customers(rng, n_customers, cdf, country_p)
    invoices = _Invoices()
    parts: list[dict[str, np.ndarray]] = []

    # Customer orders: first and last on the planted dates, the others spread seasonally in between.
    freq = cust["frequency"]
    order_cust = np.repeat(np.arange(n_customers), freq)
    k = np.arange(len(order_cust)) - (np.cumsum(freq) - freq)[order_cust]
    day = shop.sample_days(rng, cdf, cust["first"][order_cust], cust["last"][order_cust])
    day = np.where(k == 0, cust["first"][order_cust], np.where(k == freq[order_cust] - 1, cust["last"][order_cust], day))
    order_inv = invoices.add(day, shop.sample_minutes(rng, len(day)), "", cust["id"][order_cust],
                             cust["country"][order_cust])
    order_value = cust["order_value"][order_cust] * rng.lognormal(0.0, 0.35, len(day))
    n_lines = 1 + rng.poisson(cust["basket_lines"][order_cust])
    line_order = np.repeat(np.arange(len(day)), n_lines)
    code = rng.choice(n_products, size=len(line_order), p=products["popularity"])
    base_price = products["price"][code]
    qty = shop.pack_quantity(order_value[line_order] / n_lines[line_order] / base_price)
    qty = np.where(rng.random(len(qty)) < 0.1, rng.integers(1, 13, len(qty)), qty)
    price = np.where(qty >= 48, np.round(base_price * 0.85, 2), base_price)
    purchases = _part(order_inv[line_order], code, qty, price, _PURCHASE)
    purchases = _drop_repeated_products(purchases)
    parts.append(purchases)

    # Rates are shares of all lines before duplication; the extras all carry a customer id.
    n_customer_lines = len(purchases["inv"])
    total = n_customer_lines / (1 - MISSING_CUSTOMER_RATE - CANCELLATION_RATE - ZERO_PRICE_RATE - NON_PRODUCT_RATE)
    n_guest = round(MISSING_CUSTOMER_RATE * total)

    # Guest invoices: no customer id, mostly UK, small quantities at retail prices.
    n_guest_inv = n_guest // 5 + 10
    guest_sizes = 1 + rng.poisson(7, n_guest_inv)
    guest_sizes = guest_sizes[: np.searchsorted(np.cumsum(guest_sizes), n_guest) + 1]
    guest_sizes[-1] -= guest_sizes.sum() - n_guest
    guest_country = np.where(rng.random(len(guest_sizes)) < 0.95, 0, rng.integers(1, len(countries), len(guest_sizes)))
    guest_inv = invoices.add(shop.sample_days(rng, cdf, np.zeros(len(guest_sizes)), shop.LAST_DAY),
                             shop.sample_minutes(rng, len(guest_sizes)), "", -1, guest_country)
    g_code = rng.choice(n_products, size=n_guest, p=products["popularity"])
    g_qty = rng.choice(np.array([1, 1, 1, 2, 2, 3, 4, 6, 12]), n_guest)
    g_price = np.round(products["price"][g_code] * 1.7, 2)
    guests = _drop_repeated_products(_part(np.repeat(guest_inv, guest_sizes), g_code, g_qty, g_price, _GUEST))
    parts.append(guests)

    inv_day, inv_minute, _, inv_cust, inv_country = invoices.columns()

    # Cancellations: C invoices a little after the purchase, mostly the full quantity, some partial returns.
    n_cancel = round(CANCELLATION_RATE * total)
    host = np.sort(rng.choice(n_customer_lines, n_cancel, replace=False))
    h_inv = purchases["inv"][host]
    host_invoices, which = np.unique(h_inv, return_inverse=True)
    c_day, c_minute = shop.later(rng, inv_day[host_invoices], inv_minute[host_invoices])
    c_inv = invoices.add(c_day, c_minute, "C", inv_cust[host_invoices], inv_country[host_invoices])
    h_qty = purchases["qty"][host]
    partial = (rng.random(n_cancel) < 0.15) & (h_qty >= 2)
    c_qty = np.where(partial, rng.integers(1, np.maximum(h_qty, 2)), h_qty)
    parts.append(_part(c_inv[which], purchases["code"][host], -c_qty, purchases["price"][host],
                       np.where(partial, _PARTIAL_RETURN, _CANCEL)))

    # Free items: an extra line at price 0 in a customer invoice.
    n_zero = round(ZERO_PRICE_RATE * total)
    host = rng.choice(n_customer_lines, n_zero, replace=False)
    parts.append(_part(purchases["inv"][host], rng.choice(n_products, n_zero), rng.integers(1, 13, n_zero),
                       np.zeros(n_zero), _ZERO_PRICE, purchases["seq"][host] + 0.3))

    # Non-product lines: postage on foreign invoices, discounts as C invoices, fees on guest invoices.
    n_non_product = round(NON_PRODUCT_RATE * total)
    shares = np.array([spec[1] for spec in _NON_PRODUCT_LINES.values()])
    per_code = rng.multinomial(n_non_product, shares / shares.sum())
    customer_invoices = np.unique(purchases["inv"])
    foreign = customer_invoices[inv_country[customer_invoices] != 0]
    for code_index, (code_name, count) in enumerate(zip(NON_PRODUCT_CODES, per_code)):
        _, _, median, sigma, place = _NON_PRODUCT_LINES[code_name]
        pool = {"foreign": foreign if len(foreign) else customer_invoices, "guest": guest_inv}.get(
            place, customer_invoices)
        hosts = rng.choice(pool, count, replace=count > len(pool))
        np_price = np.round(median * rng.lognormal(0.0, sigma, count), 2) if sigma else np.full(count, median)
        np_qty = rng.integers(1, 4, count) if code_name == "POST" else np.ones(count, dtype=np.int64)
        if place == "discount":
            d_day, d_minute = shop.later(rng, inv_day[hosts], inv_minute[hosts], same_day=True)
            hosts = invoices.add(d_day, d_minute, "C", inv_cust[hosts], inv_country[hosts])
            np_qty = -np_qty
        parts.append(_part(hosts, np.full(count, n_products + code_index), np_qty, np_price, _NON_PRODUCT,
                           np.full(count, 1e9)))

    # Extreme quantities: data-entry outliers on cheap products, each cancelled by a C invoice minutes later.
    n_outliers = min(10, max(2, round(total / 30000)))
    who = rng.choice(n_customers, n_outliers, replace=False)
    o_day = shop.sample_days(rng, cdf, cust["first"][who], cust["last"][who])
    o_minute = shop.sample_minutes(rng, n_outliers)
    o_qty = np.concatenate([OUTLIER_QUANTITIES, rng.integers(10000, 90000, n_outliers)])[:n_outliers]
    o_code = rng.choice(np.argsort(products["price"])[: n_products // 20], n_outliers)
    o_price = products["price"][o_code]
    o_inv = invoices.add(o_day, o_minute, "", cust["id"][who], cust["country"][who])
    parts.append(_part(o_inv, o_code, o_qty, o_price, _OUTLIER))
    o_day, o_minute = shop.later(rng, o_day, o_minute, same_day=True)
    o_inv = invoices.add(o_day, o_minute, "C", cust["id"][who], cust["country"][who])
    parts.append(_part(o_inv, o_code, -o_qty, o_price, _OUTLIER_CANCEL))

    # Bad-debt adjustments: A invoices with a negative price and no customer.
    b_inv = invoices.add(shop.sample_days(rng, cdf, np.full(BAD_DEBT_LINES, 400), shop.LAST_DAY),
                         shop.sample_minutes(rng, BAD_DEBT_LINES), "A", -1, 0)
    parts.append(_part(b_inv, np.full(BAD_DEBT_LINES, len(codes) - 1), np.ones(BAD_DEBT_LINES, dtype=np.int64),
                       -np.round(rng.lognormal(np.log(8000), 0.6, BAD_DEBT_LINES), 2), _BAD_DEBT))

    # Year typos: an extra line in a customer invoice dated a century late (2111 for 2011).
    n_future = min(20, max(3, round(total / 25000)))
    host = rng.choice(n_customer_lines, n_future, replace=False)
    parts.append(_part(purchases["inv"][host], rng.choice(n_products, n_future), purchases["qty"][host],
                       purchases["price"][host], _FUTURE, purchases["seq"][host] + 0.7))

    lines = pd.DataFrame({key: np.concatenate([part[key] for part in parts]) for key in parts[0]})
    # Random picks can repeat a line by chance; drop those so that planted duplicates are the only ones.
    lines["is_future"] = lines["kind"] == _FUTURE
    lines = lines[~lines.duplicated(["inv", "code", "qty", "price", "is_future"])].reset_index(drop=True)
    lines = _pad_text(rng, lines, invoices.columns()[3])
    lines = _plant_duplicates(rng, lines)

    table, lines = _render(lines, invoices.columns(), codes, descriptions, countries)
    truth = pd.DataFrame({"customer_id": cust["id"], "behaviour": cust["behaviour"]})
    return table, truth, _defect_counts(lines, table)


def _part(inv, code, qty, price, kind, seq=None) -> dict[str, np.ndarray]:
    inv = np.asarray(inv, dtype=np.int64)
    return {
        "inv": inv,
        "seq": np.arange(len(inv), dtype=float) if seq is None else np.asarray(seq, dtype=float),
        "code": np.asarray(code, dtype=np.int64),
        "qty": np.asarray(qty, dtype=np.int64),
        "price": np.asarray(price, dtype=float),
        "kind": np.broadcast_to(np.asarray(kind, dtype=np.int64), len(inv)).copy(),
    }


def _drop_repeated_products(part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep one line per product and invoice, as a till would."""
    key = part["inv"] * 100_000 + part["code"]
    _, keep = np.unique(key, return_index=True)
    keep.sort()
    return {name: values[keep] for name, values in part.items()}


def _pad_text(rng: np.random.Generator, lines: pd.DataFrame, inv_cust: np.ndarray) -> pd.DataFrame:
    """Flag lines whose text gets stray leading or trailing spaces, per column."""
    n = len(lines)
    has_customer = inv_cust[lines["inv"].to_numpy()] >= 0
    for column, rate in UNTRIMMED_RATES.items():
        flagged = rng.random(n) < rate
        if column == "customer_id":
            flagged &= has_customer
        lines[f"pad_{column}"] = np.where(flagged, rng.integers(1, 4, n), 0)  # 1 leading, 2 trailing, 3 both
    return lines


def _plant_duplicates(rng: np.random.Generator, lines: pd.DataFrame) -> pd.DataFrame:
    """Copy some lines exactly, right after the original, so that duplicates are DUPLICATE_RATE of all lines."""
    eligible = np.flatnonzero(~lines["kind"].isin([_OUTLIER, _OUTLIER_CANCEL, _BAD_DEBT]).to_numpy())
    n_dup = round(DUPLICATE_RATE / (1 - DUPLICATE_RATE) * len(lines))
    copies = lines.iloc[np.sort(rng.choice(eligible, n_dup, replace=False))].copy()
    copies["seq"] += 0.01
    lines["is_duplicate"] = False
    copies["is_duplicate"] = True
    return pd.concat([lines, copies], ignore_index=True)


def _render(lines: pd.DataFrame, invoice_columns, codes, descriptions, countries) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The lines as Online Retail II text columns in invoice order, and the planted lines in the same order."""
    inv_day, inv_minute, inv_prefix, inv_cust, inv_country = invoice_columns
    rank = np.empty(len(inv_day), dtype=np.int64)
    rank[np.lexsort((np.arange(len(inv_day)), inv_minute, inv_day))] = np.arange(len(inv_day))
    invoice_text = inv_prefix + (rank + _FIRST_INVOICE).astype(str).astype(object)
    start = np.datetime64(shop.PERIOD_START).astype("datetime64[m]")
    stamps = (start + inv_day * 1440 + inv_minute).astype("datetime64[s]")
    date_text = np.char.replace(np.datetime_as_string(stamps, unit="s"), "T", " ").astype(object)
    customer_text = np.where(inv_cust >= 0, inv_cust.astype(str).astype(object) + ".0", "")

    order = np.lexsort((lines["seq"].to_numpy(), rank[lines["inv"].to_numpy()]))
    lines = lines.iloc[order].reset_index(drop=True)
    inv = lines["inv"].to_numpy()
    table = pd.DataFrame({
        "Invoice": invoice_text[inv],
        "StockCode": codes[lines["code"].to_numpy()],
        "Description": descriptions[lines["code"].to_numpy()],
        "Quantity": lines["qty"].to_numpy(),
        "InvoiceDate": date_text[inv],
        "Price": lines["price"].to_numpy(),
        "Customer ID": customer_text[inv],
        "Country": countries[inv_country[inv]],
    })
    future = (lines["kind"] == _FUTURE).to_numpy()
    table.loc[future, "InvoiceDate"] = [f"{int(t[:4]) + 100}{t[4:]}" for t in table.loc[future, "InvoiceDate"]]
    for column, name in (("description", "Description"), ("stock_code", "StockCode"), ("country", "Country"),
                         ("customer_id", "Customer ID")):
        pad = lines[f"pad_{column}"].to_numpy()
        for style, template in ((1, " {}"), (2, "{} "), (3, " {} ")):
            table.loc[pad == style, name] = [template.format(v) for v in table.loc[pad == style, name]]
    return table, lines


def _defect_counts(lines: pd.DataFrame, table: pd.DataFrame) -> dict[str, int]:
    """Lines in the written file per defect kind (a duplicated defective line counts in both kinds)."""
    kind = lines["kind"].to_numpy()
    padded = (lines[[f"pad_{c}" for c in UNTRIMMED_RATES]].to_numpy() > 0).any(axis=1)
    return {
        "missing_customer_id": int((table["Customer ID"] == "").sum()),
        "duplicate": int(lines["is_duplicate"].sum()),
        "cancellation": int(np.isin(kind, [_CANCEL, _PARTIAL_RETURN]).sum()),
        "partial_return": int((kind == _PARTIAL_RETURN).sum()),
        "zero_price": int((kind == _ZERO_PRICE).sum()),
        "bad_debt_adjustment": int((kind == _BAD_DEBT).sum()),
        "non_product_code": int((kind == _NON_PRODUCT).sum()),
        "extreme_quantity": int((kind == _OUTLIER).sum()),
        "extreme_quantity_cancellation": int((kind == _OUTLIER_CANCEL).sum()),
        "future_date": int((kind == _FUTURE).sum()),
        "untrimmed_text": int(padded.sum()),
    }
