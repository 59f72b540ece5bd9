"""Business names, descriptions and recommended actions for segments, from readable rules files.

The rules live in `segkit/rules/segment_names.toml` and `segkit/rules/recommendations.toml`;
this module only applies them.
"""

from __future__ import annotations

import math
import string
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

import pandas as pd

from segkit.errors import SegkitError
from segkit.formatting import days, money, number, percent

RATIO_STATS = {
    "recency_ratio": "median_recency_days",
    "frequency_ratio": "median_frequency",
    "monetary_ratio": "median_monetary_total",
}
ABSOLUTE_STATS = ("median_frequency", "median_recency_days", "median_monetary_total", "customer_share", "revenue_share")
MIN_NAME_SHARE = 0.02  # a smaller segment, often a few extreme accounts, never takes a name from a larger one
TYPICAL_RANGE = (0.8, 1.25)  # a median within these times the population's is "typical" in trait words


@dataclass(frozen=True)
class NameRule:
    name: str
    description: str
    conditions: tuple[tuple[str, float | None, float | None], ...]  # (measure, min, max)
    slipping_away: bool = False  # its customers are drifting away (revenue at risk, flows to watch)


@dataclass(frozen=True)
class Recommendation:
    """What to do about one segment: a goal and concrete actions, filled with its own numbers."""

    goal: str
    actions: tuple[str, ...]


@lru_cache(maxsize=None)
def load_name_rules() -> tuple[NameRule, ...]:
    """The ordered naming rules from segment_names.toml; the last one must have no conditions."""
    data = _read_rules("segment_names.toml")
    rules = []
    for entry in data.get("rule", []):
        entry = dict(entry)
        name, description = entry.pop("name"), entry.pop("description", "")
        slipping_away = entry.pop("slipping_away", False)
        if not isinstance(slipping_away, bool):
            raise SegkitError(f"segment_names.toml: rule {name!r} has slipping_away = {slipping_away!r}; "
                              "use true or false.")
        conditions = []
        for measure, bounds in entry.items():
            if measure not in RATIO_STATS and measure not in ABSOLUTE_STATS:
                raise SegkitError(f"segment_names.toml: rule {name!r} uses unknown measure {measure!r}; "
                                  f"use one of {', '.join([*RATIO_STATS, *ABSOLUTE_STATS])}.")
            conditions.append((measure, bounds.get("min"), bounds.get("max")))
        rules.append(NameRule(name, description, tuple(conditions), slipping_away))
    if not rules or rules[-1].conditions:
        raise SegkitError("segment_names.toml must end with a fallback rule that has no conditions.")
    return tuple(rules)


def is_slipping_away(name: str) -> bool:
    """Whether a segment name comes from a rule marked `slipping_away = true` in segment_names.toml.

    A suffix in brackets is ignored ("Dormant (4)" is "Dormant"); user-chosen names are never slipping away.
    """
    base = str(name).split(" (")[0]
    return any(rule.slipping_away for rule in load_name_rules() if rule.name == base)


@lru_cache(maxsize=None)
def load_recommendation_rules() -> dict[str, dict[str, Any]]:
    data = _read_rules("recommendations.toml")["recommendations"]
    if "default" not in data:
        raise SegkitError("recommendations.toml needs a [recommendations.default] entry.")
    return data


def _read_rules(filename: str) -> dict[str, Any]:
    text = resources.files("segkit").joinpath("rules", filename).read_text(encoding="utf-8")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SegkitError(f"segkit/rules/{filename} is not valid TOML ({error}).") from None


def segment_measures(profile: Mapping[str, Any], population: Mapping[str, Any]) -> dict[str, float]:
    """The values the rule conditions test: ratios of the segment's medians to the population's, plus absolutes."""
    measures = {}
    for ratio, stat in RATIO_STATS.items():
        base = float(population[stat])
        measures[ratio] = float(profile[stat]) / base if base > 0 else math.inf
    for stat in ABSOLUTE_STATS:
        if stat in profile:
            measures[stat] = float(profile[stat])
    return measures


def match_strength(rule: NameRule, measures: Mapping[str, float]) -> float | None:
    """None when the rule does not match; otherwise how far past its thresholds the segment is.

    Distances are on a log scale (a ratio of 2 against a threshold of 1 counts as much as 0.5 against 1),
    summed over the rule's conditions, so a segment that fits the rule more clearly scores higher.
    """
    strength = 0.0
    for measure, low, high in rule.conditions:
        value = measures[measure]
        if low is not None:
            if value < low:
                return None
            strength += _log_margin(value, low)
        if high is not None:
            if value > high:
                return None
            strength += _log_margin(high, value)
    return strength


def _log_margin(larger: float, smaller: float) -> float:
    if smaller <= 0 or larger <= 0:
        return abs(larger - smaller)
    return math.log(larger / smaller)


def name_segments(
    profiles: pd.DataFrame, population: pd.Series, overrides: Mapping[int, str] | None = None,
    kept: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """A unique business name per segment id.

    User overrides win outright, and their names are reserved. Names kept from an earlier run (`kept`) stay only
    while the segment still meets their rule. Every other segment takes the first rule in segment_names.toml
    it matches; when several segments claim one name, the strongest match (see `match_strength`; then the lower
    segment id) keeps it, except that a tiny segment (under MIN_NAME_SHARE of the customers) yields to any
    larger one, and the others move to their next matching rule, until all names differ. A segment no rule fits is named by its own traits (`_fallback_names`).
    """
    overrides = {int(k): str(v) for k, v in (overrides or {}).items() if int(k) in set(profiles.index)}
    if len(set(overrides.values())) < len(overrides):
        raise SegkitError(f"The segment_names setting gives two segments the same name ({overrides}); "
                          "segment names must be unique.")
    rules = load_name_rules()
    by_name = {rule.name: rule for rule in rules if rule.conditions}
    for segment_id, name in (kept or {}).items():
        segment_id = int(segment_id)
        if (segment_id in set(profiles.index) and segment_id not in overrides and name not in overrides.values()
                and name in by_name
                and match_strength(by_name[name], segment_measures(profiles.loc[segment_id], population)) is not None):
            overrides[segment_id] = name
    candidates: dict[int, list[tuple[str, float]]] = {}
    for segment_id, profile in profiles.iterrows():
        if int(segment_id) in overrides:
            continue
        measures = segment_measures(profile, population)
        candidates[int(segment_id)] = [
            (rule.name, strength) for rule in rules
            if (strength := match_strength(rule, measures)) is not None
        ]
    total = float(profiles["customers"].sum()) if "customers" in profiles else 0.0
    tiny = {int(i) for i, n in (profiles["customers"].items() if total else ()) if n < MIN_NAME_SHARE * total}
    position = {segment_id: 0 for segment_id in candidates}
    fallback = rules[-1].name
    while True:
        claims: dict[str, list[int]] = {}
        for segment_id, index in position.items():
            if index < len(candidates[segment_id]) and candidates[segment_id][index][0] != fallback:
                claims.setdefault(candidates[segment_id][index][0], []).append(segment_id)
        moved = False
        for name, claimants in claims.items():
            reserved = name in overrides.values()
            ranked = sorted(claimants, key=lambda s: (s in tiny, -candidates[s][position[s]][1], s))
            for loser in ranked if reserved else ranked[1:]:
                position[loser] += 1
                moved = True
        if not moved:
            break
    names = dict(overrides)
    leftovers = []
    for segment_id, index in position.items():
        if index < len(candidates[segment_id]) and candidates[segment_id][index][0] != fallback:
            names[segment_id] = candidates[segment_id][index][0]
        else:
            leftovers.append(segment_id)
    names.update(_fallback_names(fallback, leftovers, profiles, population, set(names.values())))
    return dict(sorted(names.items()))


def _fallback_names(fallback: str, segment_ids: list[int], profiles: pd.DataFrame,
                    population: pd.Series, taken: set[str]) -> dict[int, str]:
    """The fallback rule's name for one segment close to the typical customer on every measure; any other segment
    no rule fits is named by its traits, e.g. "Lapsed, infrequent, low spend"."""
    names: dict[int, str] = {}
    for segment_id in sorted(segment_ids):
        measures = segment_measures(profiles.loc[segment_id], population)
        name = fallback if is_typical(measures) else trait_name(measures)
        if name in taken or name in names.values():
            # Same traits in words: the id is the only honest way left to tell them apart.
            name = f"{name} (segment {segment_id})"
        names[segment_id] = name
    return names


def is_typical(measures: Mapping[str, float]) -> bool:
    """Within TYPICAL_RANGE of the typical customer on recency, frequency and spend."""
    low, high = TYPICAL_RANGE
    return all(low <= measures[ratio] <= high for ratio in RATIO_STATS)


def trait_name(measures: Mapping[str, float]) -> str:
    words = trait_words(measures)
    return words[0].upper() + words[1:]


def trait_words(measures: Mapping[str, float]) -> str:
    """Recency, frequency and spend in words, e.g. 'recent, frequent, high spend' (TYPICAL_RANGE is typical)."""
    low, high = TYPICAL_RANGE

    def word(value: float, below: str, mid: str, above: str) -> str:
        return below if value < low else above if value > high else mid
    return ", ".join([
        word(measures["recency_ratio"], "recent", "typical recency", "lapsed"),
        word(measures["frequency_ratio"], "infrequent", "typical frequency", "frequent"),
        word(measures["monetary_ratio"], "low spend", "typical spend", "high spend"),
    ])


CONDITION_WORDS = {
    "recency_ratio": "days since the last order",
    "frequency_ratio": "orders",
    "monetary_ratio": "total spend",
    "median_frequency": "orders",
    "median_recency_days": "days since the last order",
    "median_monetary_total": "total spend",
    "customer_share": "share of customers",
    "revenue_share": "share of revenue",
}


def name_rule(name: str, profile: Mapping[str, Any], population: Mapping[str, Any]) -> str:
    """The rule a segment's name met, with the segment's own figures, e.g. "orders ≥ 1.5× the typical customer's
    (here 4.8×)"; for a name no rule gave, how it was named."""
    measures = segment_measures(profile, population)
    rule = next((r for r in load_name_rules() if r.name == name and r.conditions), None)
    if rule is None:
        if name.split(" (segment ")[0] in (trait_name(measures), load_name_rules()[-1].name):
            low, high = TYPICAL_RANGE
            return (f"No naming rule fits; named by its medians against the typical customer's (typical: "
                    f"{low:g} to {high:g} times): {trait_words(measures)}.")
        return "Named by you (segment_names setting)."
    parts = []
    for measure, low, high in rule.conditions:
        value, ratio = measures[measure], measure.endswith("_ratio")
        bound = " and ".join(f"{sign} {limit:g}{'×' if ratio else ''}" for sign, limit in (("≥", low), ("≤", high))
                             if limit is not None)
        parts.append(f"median {CONDITION_WORDS[measure]} {bound}" + (f" the typical customer's (here {value:.2f}×)"
                                                                     if ratio else f" (here {value:g})"))
    return f"Rule met: {'; '.join(parts)}."


def describe_segment(name: str, profile: Mapping[str, Any] | None = None,
                     population: Mapping[str, Any] | None = None) -> str:
    """The one-line business description of a name from the rules; user-chosen names get a trait summary."""
    base = next((r for r in load_name_rules() if r.name == name.split(" (segment ")[0]), None)
    if base is not None:
        return base.description
    if profile is not None and population is not None:
        measures = segment_measures(profile, population)
        if name.split(" (segment ")[0] == trait_name(measures):
            return f"No naming rule fits these customers; against the typical customer they are {trait_words(measures)}."
        return f"Named by you; compared with all customers: {trait_words(measures)}."
    return ""


def recommend(name: str, profile: Mapping[str, Any], population: Mapping[str, Any],
              median_days_between_orders: float | None = None, currency: str = "") -> Recommendation:
    """Goal and actions for a segment from recommendations.toml, filled with the segment's own numbers.

    median_days_between_orders: the segment's typical gap between orders (customers with 2+ orders),
    which the profile alone does not carry; actions that need it are left out when it is None.
    """
    rules = load_recommendation_rules()
    entry = rules.get(name) or rules.get(name.split(" (")[0]) or rules["default"]
    values = recommendation_values(profile, population, median_days_between_orders, currency)
    goal = _fill(entry["goal"], values) or ""
    actions = tuple(text for text in (_fill(t, values) for t in entry.get("actions", [])) if text)
    return Recommendation(goal=goal, actions=actions)


def recommendation_values(profile: Mapping[str, Any], population: Mapping[str, Any],
                          median_days_between_orders: float | None, currency: str = "") -> dict[str, str | None]:
    recency = float(profile["median_recency_days"])
    gap = None if median_days_between_orders is None or pd.isna(median_days_between_orders) \
        else float(median_days_between_orders)
    overdue = recency - gap if gap is not None and recency - gap >= 1 else None
    return {
        "customers": f"{int(profile['customers']):,}",
        "customer_share": percent(profile["customer_share"]),
        "revenue": money(profile["revenue"], currency),
        "revenue_share": percent(profile["revenue_share"]),
        "recency_days": days(recency),
        "gap_days": days(gap) if gap is not None else None,
        "overdue_days": days(overdue) if overdue is not None else None,
        "orders": number(profile["median_frequency"]),
        "spend": money(profile["median_monetary_total"], currency),
        "population_recency_days": days(population["median_recency_days"]),
        "population_spend": money(population["median_monetary_total"], currency),
        "population_orders": number(population["median_frequency"]),
    }


def _fill(template: str, values: Mapping[str, str | None]) -> str | None:
    fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
    unknown = fields - set(values)
    if unknown:
        raise SegkitError(f"recommendations.toml uses unknown placeholder(s) {sorted(unknown)} in {template!r}.")
    if any(values[field] is None for field in fields):
        return None
    return template.format(**values)
