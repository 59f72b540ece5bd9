"""The simulated shop of the demo data: its products, its customers with their planted behaviours, and when and
how much each customer orders. segkit.demo_data turns the orders into lines and plants the defects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

PERIOD_START = dt.date(2009, 12, 1)
LAST_ORDER_DATE = dt.date(2011, 12, 9)

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

LAST_DAY = (LAST_ORDER_DATE - PERIOD_START).days  # day index of the last order date
ANALYSIS_DAY = LAST_DAY + 1


@dataclass(frozen=True)
class Profile:
    """How one planted behaviour orders: how often, when, and for how much."""

    frequency: tuple[float, float, int, int]  # median, log-sigma, min, max orders
    last_recency_days: tuple[int, int]  # last order this many days before the analysis date
    first_day_max: int  # latest first order, as a day index from PERIOD_START
    min_tenure_days: int  # first order at least this many days before the last
    order_value: tuple[float, float]  # median and log-sigma of an order's value
    basket_lines: float  # mean extra lines per order


PROFILES = {
    "champion": Profile((20, 0.4, 12, 80), (1, 21), 320, 0, (650.0, 0.45), 3.5),
    "loyal_regular": Profile((8, 0.3, 5, 14), (8, 90), 410, 0, (300.0, 0.35), 3.0),
    # New customers: last_recency_days is the window of the first order; a second one may follow.
    "new_customer": Profile((1, 0.0, 1, 2), (3, 60), LAST_DAY, 0, (280.0, 0.4), 3.0),
    "big_spender_lapsing": Profile((7, 0.35, 4, 14), (185, 360), 290, 0, (1600.0, 0.4), 4.0),
    "one_time_buyer": Profile((1, 0.0, 1, 1), (100, 600), LAST_DAY, 0, (220.0, 0.5), 2.5),
    "long_lost": Profile((3, 0.3, 2, 4), (460, 720), LAST_DAY, 20, (260.0, 0.4), 2.5),
    "bargain_occasional": Profile((4, 0.3, 3, 7), (25, 280), LAST_DAY, 150, (45.0, 0.35), 1.2),
}

COUNTRIES = (
    ("United Kingdom", 0.885), ("Germany", 0.02), ("France", 0.018), ("EIRE", 0.012), ("Spain", 0.01),
    ("Netherlands", 0.01), ("Belgium", 0.01), ("Switzerland", 0.009), ("Portugal", 0.008),
    ("Australia", 0.006), ("Norway", 0.006), ("Italy", 0.006),
)
MONTH_WEIGHTS = (0.75, 0.75, 0.95, 0.85, 0.9, 0.9, 0.9, 0.95, 1.25, 1.45, 1.8, 1.1)  # Jan..Dec: November peak
WEEKDAY_WEIGHTS = (1.0, 1.1, 1.1, 1.25, 0.85, 0.0, 0.6)  # Mon..Sun: the shop takes no Saturday orders
HOUR_WEIGHTS = {7: 0.5, 8: 3, 9: 6, 10: 9, 11: 10, 12: 12, 13: 11, 14: 9, 15: 8, 16: 5, 17: 3, 18: 1, 19: 0.7, 20: 0.3}
PACK_SIZES = np.array([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 25, 32, 36, 48, 50, 60, 72, 96, 100, 120, 144,
                        192, 200, 240, 288, 300, 384, 480, 576, 600, 720, 960, 1200, 1440, 2400, 3000, 4800])

ADJECTIVES = ("WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "CREAM", "BLACK", "SILVER", "GOLD", "VINTAGE",
               "RETRO", "HANGING", "GLASS", "WOODEN", "ZINC", "ENAMEL", "PAPER", "FELT", "LACE", "SPOTTY",
               "REGENCY", "JUMBO", "SMALL", "LARGE", "ANTIQUE", "FRENCH", "SCANDINAVIAN", "CHRISTMAS", "PARTY",
               "GARDEN", "SET OF 3", "SET OF 6", "MINI", "PASTEL", "FAIRY", "RUSTIC", "PAINTED", "STRIPED", "JAM")
MOTIFS = ("HEART", "POLKADOT", "PAISLEY", "BIRD", "FLOWER", "ROSE", "DOILY", "ALPHABET", "SKULL", "OWL",
           "RABBIT", "CAKE", "TEA", "LOVE", "STAR", "BUTTERFLY", "CHERRY", "APPLE", "LEAF", "SPACEBOY",
           "DOLLY GIRL", "WOODLAND", "RETROSPOT", "BAROQUE", "BIRDCAGE", "LANTERN", "SNOWFLAKE", "REINDEER",
           "VICTORIAN", "ORIENTAL")
OBJECTS = ("T-LIGHT HOLDER", "LUNCH BAG", "CAKE CASES", "MUG", "TEA TOWEL", "CANDLE", "STORAGE TIN",
            "PHOTO FRAME", "DOORSTOP", "BUNTING", "WATER BOTTLE", "CUSHION COVER", "NAPKINS", "PLATE", "BOWL",
            "CLOCK", "NOTEBOOK", "GIFT WRAP", "GIFT BAG", "JAR", "COAT RACK", "SHOPPING BAG", "PURSE",
            "KEY RING", "HOT WATER BOTTLE", "CAKESTAND", "DRAWER KNOB", "WALL ART", "STICKERS", "CHALKBOARD",
            "MIRROR", "BASKET", "LAMP", "TRINKET BOX", "PARASOL", "JIGSAW", "DOORMAT", "APRON", "BOTTLE", "HOOK")


def calendar_cdf() -> np.ndarray:
    """Cumulative order-day weights over the period: seasonal months, weekdays, closed over Christmas."""
    days = np.datetime64(PERIOD_START) + np.arange(LAST_DAY + 1)
    month = days.astype("datetime64[M]").astype(int) % 12
    day_of_month = (days - days.astype("datetime64[M]")).astype(int) + 1
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    weight = np.array(MONTH_WEIGHTS)[month] * np.array(WEEKDAY_WEIGHTS)[weekday]
    weight[((month == 11) & (day_of_month >= 23)) | ((month == 0) & (day_of_month <= 3))] = 0.0
    weight *= 1 + 0.15 * np.arange(len(days)) / len(days)  # the business grows a little
    cdf = np.cumsum(weight)
    return cdf / cdf[-1]


def sample_days(rng: np.random.Generator, cdf: np.ndarray, low, high) -> np.ndarray:
    """Order days in the inclusive windows [low, high], drawn from the seasonal calendar."""
    low, high = np.broadcast_arrays(np.asarray(low, dtype=np.int64), np.asarray(high, dtype=np.int64))
    high = np.maximum(high, low)
    before = np.where(low > 0, cdf[np.maximum(low - 1, 0)], 0.0)
    u = before + rng.random(low.shape) * (cdf[high] - before)
    return np.clip(np.searchsorted(cdf, u, side="left"), low, high)


def sample_minutes(rng: np.random.Generator, n: int) -> np.ndarray:
    hours = np.array(list(HOUR_WEIGHTS))
    weights = np.array(list(HOUR_WEIGHTS.values()), dtype=float)
    return rng.choice(hours, n, p=weights / weights.sum()) * 60 + rng.integers(0, 60, n)


def later(rng: np.random.Generator, day, minute, same_day: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A day and minute after the given ones, and not after the last order date."""
    day, minute = np.asarray(day), np.asarray(minute)
    delay = np.zeros(len(day), dtype=np.int64) if same_day else rng.geometric(0.15, len(day)) - 1
    new_day = np.minimum(day + delay, LAST_DAY)
    new_minute = np.where(new_day == day, np.minimum(minute + rng.integers(1, 60, len(day)), 1439),
                          sample_minutes(rng, len(day)))
    return new_day, new_minute


def pack_quantity(raw: np.ndarray) -> np.ndarray:
    """The pack size nearest (in ratio) to the wanted quantity."""
    log_raw = np.log(np.clip(raw, 1, PACK_SIZES[-1]))
    log_packs = np.log(PACK_SIZES)
    upper = np.clip(np.searchsorted(log_packs, log_raw), 1, len(PACK_SIZES) - 1)
    nearer_lower = (log_raw - log_packs[upper - 1]) < (log_packs[upper] - log_raw)
    return PACK_SIZES[np.where(nearer_lower, upper - 1, upper)]


def products(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Stock codes like `85123A`, gift-shop descriptions, lognormal prices and Zipf-like popularity."""
    n_motif_object = len(MOTIFS) * len(OBJECTS)
    combo = rng.choice(len(ADJECTIVES) * n_motif_object, n, replace=False)
    adjective, rest = np.divmod(combo, n_motif_object)
    motif, obj = np.divmod(rest, len(OBJECTS))
    description = np.array([f"{ADJECTIVES[a]} {MOTIFS[m]} {OBJECTS[o]}" for a, m, o in zip(adjective, motif, obj)],
                           dtype=object)
    base = rng.choice(np.arange(10002, 90000), n, replace=False)
    suffix = np.where(rng.random(n) < 0.12, np.array(list("ABCDEFGH"))[rng.integers(0, 8, n)], "")
    code = np.array([f"{b}{s}" for b, s in zip(base, suffix)], dtype=object)
    price = np.maximum(np.round(rng.lognormal(np.log(2.5), 0.8, n) * 20) / 20, 0.1)
    popularity = 1.0 / (rng.permutation(n) + 8.0) ** 0.9
    return {"code": code, "description": description, "price": price, "popularity": popularity / popularity.sum()}


def customers(rng: np.random.Generator, n: int, cdf: np.ndarray, country_p: np.ndarray) -> dict[str, np.ndarray]:
    """Customer ids, planted behaviours, countries and order plans (frequency, first and last day, order value)."""
    names = list(BEHAVIOURS)
    counts = np.floor(np.array(list(BEHAVIOURS.values())) * n).astype(int)
    counts[np.argmax(counts)] += n - counts.sum()
    behaviour = rng.permutation(np.repeat(np.arange(len(names)), counts))
    profiles = [PROFILES[name] for name in names]

    def column(get) -> np.ndarray:
        return np.array([get(p) for p in profiles])[behaviour]

    median, sigma, low, high = (column(lambda p, i=i: p.frequency[i]) for i in range(4))
    frequency = np.clip(np.round(rng.lognormal(np.log(median), sigma)), low, high).astype(np.int64)
    is_new = behaviour == names.index("new_customer")
    frequency[is_new] = 1 + (rng.random(is_new.sum()) < 0.3)

    last = sample_days(rng, cdf, ANALYSIS_DAY - column(lambda p: p.last_recency_days[1]),
                        ANALYSIS_DAY - column(lambda p: p.last_recency_days[0]))
    first = sample_days(rng, cdf, 0, np.minimum(column(lambda p: p.first_day_max),
                                                 last - column(lambda p: p.min_tenure_days)))
    first = np.where(frequency == 1, last, first)
    # New customers: the window above was their first order; a second one may follow up to the last day.
    first[is_new] = last[is_new]
    second = sample_days(rng, cdf, np.minimum(last + 1, LAST_DAY), LAST_DAY)
    last = np.where(is_new & (frequency == 2), second, last)
    # Someone orders on the last day, so the analysis date is the day after the last order date.
    latest = np.argmax(last)
    first[latest] = LAST_DAY if first[latest] == last[latest] else first[latest]
    last[latest] = LAST_DAY

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
