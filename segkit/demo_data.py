"""Generate a synthetic transactions file in the UCI Online Retail II layout, with planted segments and defects.

Every customer gets one planted behaviour (written to a truth CSV) so that segmentation can be checked against
known answers, and the lines carry the defects of the published data set at about its rates, so that the
cleaning models have real work to do. The same seed and size always give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segkit.errors import SegkitError

HEADER = ("Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country")
PERIOD_START = dt.date(2009, 12, 1)
LAST_ORDER_DATE = dt.date(2011, 12, 9)
EXTRACTION_DATE = dt.date(2011, 12, 10)

# Stock codes that are not products: postage, manual entries, fees, discounts, samples and adjustments.
NON_PRODUCT_CODES = ("POST", "DOT", "M", "BANK CHARGES", "D", "S", "AMAZONFEE", "C2", "ADJUST")
BAD_DEBT_CODE = "B"

# Share of customers per planted behaviour.
BEHAVIOURS = {
    "champion": 0.09,
    "loyal_regular": 0.17,
    "new_customer": 0.08,
    "big_spender_lapsing": 0.07,
    "one_time_buyer": 0.24,
    "long_lost": 0.17,
    "bargain_occasional": 0.18,
}

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
_LAST_DAY = (LAST_ORDER_DATE - PERIOD_START).days  # day index of the last order date
_ANALYSIS_DAY = _LAST_DAY + 1


@dataclass(frozen=True)
class DemoDataSummary:
    """What `generate_demo_data` wrote."""

    path: Path
    truth_path: Path
    customers: int
    lines: int
    seed: int
    defect_counts: dict[str, int]  # lines planted per defect kind; a duplicated guest line counts in both kinds


@dataclass(frozen=True)
class _Profile:
    """How one planted behaviour orders: how often, when, and for how much."""

    frequency: tuple[float, float, int, int]  # median, log-sigma, min, max orders
    last_recency_days: tuple[int, int]  # last order this many days before the analysis date
    first_day_max: int  # latest first order, as a day index from PERIOD_START
    min_tenure_days: int  # first order at least this many days before the last
    order_value: tuple[float, float]  # median and log-sigma of an order's value
    basket_lines: float  # mean extra lines per order


_PROFILES = {
    "champion": _Profile((20, 0.4, 12, 80), (1, 21), 320, 0, (650.0, 0.45), 3.5),
    "loyal_regular": _Profile((8, 0.3, 5, 14), (8, 90), 410, 0, (300.0, 0.35), 3.0),
    # New customers: last_recency_days is the window of the first order; a second one may follow.
    "new_customer": _Profile((1, 0.0, 1, 2), (3, 60), _LAST_DAY, 0, (280.0, 0.4), 3.0),
    "big_spender_lapsing": _Profile((7, 0.35, 4, 14), (185, 360), 290, 0, (1600.0, 0.4), 4.0),
    "one_time_buyer": _Profile((1, 0.0, 1, 1), (100, 600), _LAST_DAY, 0, (220.0, 0.5), 2.5),
    "long_lost": _Profile((3, 0.3, 2, 4), (460, 720), _LAST_DAY, 20, (260.0, 0.4), 2.5),
    "bargain_occasional": _Profile((4, 0.3, 3, 7), (25, 280), _LAST_DAY, 150, (45.0, 0.35), 1.2),
}

_COUNTRIES = (
    ("United Kingdom", 0.885), ("Germany", 0.02), ("France", 0.018), ("EIRE", 0.012), ("Spain", 0.01),
    ("Netherlands", 0.01), ("Belgium", 0.01), ("Switzerland", 0.009), ("Portugal", 0.008),
    ("Australia", 0.006), ("Norway", 0.006), ("Italy", 0.006),
)
_MONTH_WEIGHTS = (0.75, 0.75, 0.95, 0.85, 0.9, 0.9, 0.9, 0.95, 1.25, 1.45, 1.8, 1.1)  # Jan..Dec: November peak
_WEEKDAY_WEIGHTS = (1.0, 1.1, 1.1, 1.25, 0.85, 0.0, 0.6)  # Mon..Sun: the shop takes no Saturday orders
_HOUR_WEIGHTS = {7: 0.5, 8: 3, 9: 6, 10: 9, 11: 10, 12: 12, 13: 11, 14: 9, 15: 8, 16: 5, 17: 3, 18: 1, 19: 0.7, 20: 0.3}
_PACK_SIZES = np.array([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 25, 32, 36, 48, 50, 60, 72, 96, 100, 120, 144,
                        192, 200, 240, 288, 300, 384, 480, 576, 600, 720, 960, 1200, 1440, 2400, 3000, 4800])

_ADJECTIVES = ("WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "BLACK", "SILVER", "GOLD", "VINTAGE",
               "RETRO", "HANGING", "GLASS", "WOODEN", "ZINC", "ENAMEL", "PAPER", "FELT", "LACE", "SPOTTY",
               "REGENCY", "JUMBO", "SMALL", "LARGE", "ANTIQUE", "FRENCH", "SCANDINAVIAN", "CHRISTMAS", "PARTY",
               "GARDEN", "SET OF 3", "SET OF 6", "MINI", "PASTEL", "FAIRY", "RUSTIC", "PAINTED", "STRIPED", "JAM")
_MOTIFS = ("HEART", "POLKADOT", "PAISLEY", "BIRD", "FLOWER", "ROSE", "DOILY", "ALPHABET", "SKULL", "OWL",
           "RABBIT", "CAKE", "TEA", "LOVE", "STAR", "BUTTERFLY", "CHERRY", "APPLE", "LEAF", "SPACEBOY",
           "DOLLY GIRL", "WOODLAND", "RETROSPOT", "BAROQUE", "BIRDCAGE", "LANTERN", "SNOWFLAKE", "REINDEER",
           "VICTORIAN", "ORIENTAL")
_OBJECTS = ("T-LIGHT HOLDER", "LUNCH BAG", "CAKE CASES", "MUG", "TEA TOWEL", "CANDLE", "STORAGE TIN",
            "PHOTO FRAME", "DOORSTOP", "BUNTING", "WATER BOTTLE", "CUSHION COVER", "NAPKINS", "PLATE", "BOWL",
            "CLOCK", "NOTEBOOK", "GIFT WRAP", "GIFT BAG", "JAR", "COAT RACK", "SHOPPING BAG", "PURSE",
            "KEY RING", "HOT WATER BOTTLE", "CAKESTAND", "DRAWER KNOB", "WALL ART", "STICKERS", "CHALKBOARD",
            "MIRROR", "BASKET", "LAMP", "TRINKET BOX", "PARASOL", "JIGSAW", "DOORMAT", "APRON", "BOTTLE", "HOOK")
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
    if customers < len(BEHAVIOURS):
        raise SegkitError(
            f"Cannot generate demo data for {customers} customers: each of the {len(BEHAVIOURS)} planted behaviours "
            f"needs at least one customer. Ask for {len(BEHAVIOURS)} or more customers (the default is 4000)."
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
    cdf = _calendar_cdf()
    products = _products(rng, 3950)
    n_products = len(products["code"])
    codes = np.concatenate([products["code"], np.array(NON_PRODUCT_CODES + (BAD_DEBT_CODE,), dtype=object)])
    descriptions = np.concatenate([
        products["description"],
        np.array([_NON_PRODUCT_LINES[c][0] for c in NON_PRODUCT_CODES] + ["Adjust bad debt"], dtype=object),
    ])
    countries = np.array([name for name, _ in _COUNTRIES], dtype=object)
    country_p = np.array([p for _, p in _COUNTRIES])
    country_p /= country_p.sum()

    cust = _customers(rng, n_customers, cdf, country_p)
    invoices = _Invoices()
    parts: list[dict[str, np.ndarray]] = []

    # Customer orders: first and last on the planted dates, the others spread seasonally in between.
    freq = cust["frequency"]
    order_cust = np.repeat(np.arange(n_customers), freq)
    k = np.arange(len(order_cust)) - (np.cumsum(freq) - freq)[order_cust]
    day = _sample_days(rng, cdf, cust["first"][order_cust], cust["last"][order_cust])
    day = np.where(k == 0, cust["first"][order_cust], np.where(k == freq[order_cust] - 1, cust["last"][order_cust], day))
    order_inv = invoices.add(day, _sample_minutes(rng, len(day)), "", cust["id"][order_cust],
                             cust["country"][order_cust])
    order_value = cust["order_value"][order_cust] * rng.lognormal(0.0, 0.35, len(day))
    n_lines = 1 + rng.poisson(cust["basket_lines"][order_cust])
    line_order = np.repeat(np.arange(len(day)), n_lines)
    code = rng.choice(n_products, size=len(line_order), p=products["popularity"])
    base_price = products["price"][code]
    qty = _pack_quantity(order_value[line_order] / n_lines[line_order] / base_price)
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
    guest_inv = invoices.add(_sample_days(rng, cdf, np.zeros(len(guest_sizes)), _LAST_DAY), _sample_minutes(rng, len(guest_sizes)), "", -1,
                             guest_country)
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
    c_day, c_minute = _later(rng, inv_day[host_invoices], inv_minute[host_invoices])
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
            d_day, d_minute = _later(rng, inv_day[hosts], inv_minute[hosts], same_day=True)
            hosts = invoices.add(d_day, d_minute, "C", inv_cust[hosts], inv_country[hosts])
            np_qty = -np_qty
        parts.append(_part(hosts, np.full(count, n_products + code_index), np_qty, np_price, _NON_PRODUCT,
                           np.full(count, 1e9)))

    # Extreme quantities: data-entry outliers on cheap products, each cancelled by a C invoice minutes later.
    n_outliers = min(10, max(2, round(total / 30000)))
    who = rng.choice(n_customers, n_outliers, replace=False)
    o_day = _sample_days(rng, cdf, cust["first"][who], cust["last"][who])
    o_minute = _sample_minutes(rng, n_outliers)
    o_qty = np.concatenate([OUTLIER_QUANTITIES, rng.integers(10000, 90000, n_outliers)])[:n_outliers]
    o_code = rng.choice(np.argsort(products["price"])[: n_products // 20], n_outliers)
    o_price = products["price"][o_code]
    o_inv = invoices.add(o_day, o_minute, "", cust["id"][who], cust["country"][who])
    parts.append(_part(o_inv, o_code, o_qty, o_price, _OUTLIER))
    o_day, o_minute = _later(rng, o_day, o_minute, same_day=True)
    o_inv = invoices.add(o_day, o_minute, "C", cust["id"][who], cust["country"][who])
    parts.append(_part(o_inv, o_code, -o_qty, o_price, _OUTLIER_CANCEL))

    # Bad-debt adjustments: A invoices with a negative price and no customer.
    b_inv = invoices.add(_sample_days(rng, cdf, np.full(BAD_DEBT_LINES, 400), _LAST_DAY),
                         _sample_minutes(rng, BAD_DEBT_LINES), "A", -1, 0)
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


def _calendar_cdf() -> np.ndarray:
    """Cumulative order-day weights over the period: seasonal months, weekdays, closed over Christmas."""
    days = np.datetime64(PERIOD_START) + np.arange(_LAST_DAY + 1)
    month = days.astype("datetime64[M]").astype(int) % 12
    day_of_month = (days - days.astype("datetime64[M]")).astype(int) + 1
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    weight = np.array(_MONTH_WEIGHTS)[month] * np.array(_WEEKDAY_WEIGHTS)[weekday]
    weight[((month == 11) & (day_of_month >= 23)) | ((month == 0) & (day_of_month <= 3))] = 0.0
    weight *= 1 + 0.15 * np.arange(len(days)) / len(days)  # the business grows a little
    cdf = np.cumsum(weight)
    return cdf / cdf[-1]


def _sample_days(rng: np.random.Generator, cdf: np.ndarray, low, high) -> np.ndarray:
    """Order days in the inclusive windows [low, high], drawn from the seasonal calendar."""
    low, high = np.broadcast_arrays(np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64))
    high = np.maximum(high, low)
    before = np.where(low > 0, cdf[np.maximum(low - 1, 0)], 0.0)
    u = before + rng.random(low.shape) * (cdf[high] - before)
    return np.clip(np.searchsorted(cdf, u, side="left"), low, high)


def _sample_minutes(rng: np.random.Generator, n: int) -> np.ndarray:
    hours = np.array(list(_HOUR_WEIGHTS))
    weights = np.array(list(_HOUR_WEIGHTS.values()), dtype=float)
    return rng.choice(hours, n, p=weights / weights.sum()) * 60 + rng.integers(0, 60, n)


def _later(rng: np.random.Generator, day, minute, same_day: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A day and minute after the given ones, and not after the last order date."""
    day, minute = np.asarray(day), np.asarray(minute)
    delay = np.zeros(len(day), dtype=np.int64) if same_day else rng.geometric(0.15, len(day)) - 1
    new_day = np.minimum(day + delay, _LAST_DAY)
    new_minute = np.where(new_day == day, np.minimum(minute + rng.integers(1, 60, len(day)), 1439),
                          _sample_minutes(rng, len(day)))
    return new_day, new_minute


def _pack_quantity(raw: np.ndarray) -> np.ndarray:
    """The pack size nearest (in ratio) to the wanted quantity."""
    log_raw = np.log(np.clip(raw, 1, _PACK_SIZES[-1]))
    log_packs = np.log(_PACK_SIZES)
    upper = np.clip(np.searchsorted(log_packs, log_raw), 1, len(_PACK_SIZES) - 1)
    nearer_lower = (log_raw - log_packs[upper - 1]) < (log_packs[upper] - log_raw)
    return _PACK_SIZES[np.where(nearer_lower, upper - 1, upper)]


def _products(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Stock codes like `85123A`, gift-shop descriptions, lognormal prices and Zipf-like popularity."""
    n_motif_object = len(_MOTIFS) * len(_OBJECTS)
    combo = rng.choice(len(_ADJECTIVES) * n_motif_object, n, replace=False)
    adjective, rest = np.divmod(combo, n_motif_object)
    motif, obj = np.divmod(rest, len(_OBJECTS))
    description = np.array([f"{_ADJECTIVES[a]} {_MOTIFS[m]} {_OBJECTS[o]}" for a, m, o in zip(adjective, motif, obj)],
                           dtype=object)
    base = rng.choice(np.arange(10002, 90000), n, replace=False)
    suffix = np.where(rng.random(n) < 0.12, np.array(list("ABCDEFGH"))[rng.integers(0, 8, n)], "")
    code = np.array([f"{b}{s}" for b, s in zip(base, suffix)], dtype=object)
    price = np.maximum(np.round(rng.lognormal(np.log(2.5), 0.8, n) * 20) / 20, 0.1)
    popularity = 1.0 / (rng.permutation(n) + 8.0) ** 0.9
    return {"code": code, "description": description, "price": price, "popularity": popularity / popularity.sum()}


def _customers(rng: np.random.Generator, n: int, cdf: np.ndarray, country_p: np.ndarray) -> dict[str, np.ndarray]:
    """Customer ids, planted behaviours, countries and order plans (frequency, first and last day, order value)."""
    names = list(BEHAVIOURS)
    counts = np.floor(np.array(list(BEHAVIOURS.values())) * n).astype(int)
    counts[np.argmax(counts)] += n - counts.sum()
    behaviour = rng.permutation(np.repeat(np.arange(len(names)), counts))
    profiles = [_PROFILES[name] for name in names]

    def column(get) -> np.ndarray:
        return np.array([get(p) for p in profiles])[behaviour]

    median, sigma, low, high = (column(lambda p, i=i: p.frequency[i]) for i in range(4))
    frequency = np.clip(np.round(rng.lognormal(np.log(median), sigma)), low, high).astype(np.int64)
    is_new = behaviour == names.index("new_customer")
    frequency[is_new] = 1 + (rng.random(is_new.sum()) < 0.3)

    last = _sample_days(rng, cdf, _ANALYSIS_DAY - column(lambda p: p.last_recency_days[1]),
                        _ANALYSIS_DAY - column(lambda p: p.last_recency_days[0]))
    first = _sample_days(rng, cdf, 0, np.minimum(column(lambda p: p.first_day_max),
                                                 last - column(lambda p: p.min_tenure_days)))
    first = np.where(frequency == 1, last, first)
    # New customers: the window above was their first order; a second one may follow up to the last day.
    first[is_new] = last[is_new]
    second = _sample_days(rng, cdf, np.minimum(last + 1, _LAST_DAY), _LAST_DAY)
    last = np.where(is_new & (frequency == 2), second, last)
    # Someone orders on the last day, so the analysis date is the day after the last order date.
    latest = np.argmax(last)
    first[latest] = _LAST_DAY if first[latest] == last[latest] else first[latest]
    last[latest] = _LAST_DAY

    order_value = column(lambda p: p.order_value[0]) * rng.lognormal(0.0, column(lambda p: p.order_value[1]))
    big_account = np.isin(behaviour, [names.index(b) for b in ("champion", "loyal_regular", "big_spender_lapsing")])
    big_account &= rng.random(n) < 0.03
    order_value = np.where(big_account, order_value * rng.uniform(4, 12, n), order_value)

    pool = np.arange(12346, 12346 + max(5942, n + n // 4))  # 12346..18287 as in the published data
    return {
        "id": np.sort(rng.choice(pool, n, replace=False)),
        "behaviour": np.array(names, dtype=object)[behaviour],
        "country": rng.choice(len(country_p), n, p=country_p),
        "frequency": frequency,
        "first": first,
        "last": last,
        "order_value": order_value,
        "basket_lines": column(lambda p: p.basket_lines),
    }


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
    stamps = (np.datetime64(PERIOD_START).astype("datetime64[m]") + inv_day * 1440 + inv_minute).astype("datetime64[s]")
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
