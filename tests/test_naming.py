"""Segment names and recommendations come from the rules files and respect uniqueness and overrides."""

import re

import pandas as pd
import pytest

from tests.conftest import ROOT

from segkit.errors import SegkitError
from segkit.formatting import money
from segkit.naming import (describe_segment, is_slipping_away, load_name_rules, load_recommendation_rules,
                           match_strength, name_rule, name_segments, recommend, segment_measures)

POPULATION = pd.Series({
    "median_recency_days": 100.0, "median_frequency": 2.0, "median_monetary_total": 500.0,
    "mean_recency_days": 150.0, "mean_frequency": 4.0, "mean_monetary_total": 1500.0,
})


def profiles(rows: dict[int, tuple[float, float, float]]) -> pd.DataFrame:
    """Profiles from {segment_id: (median recency days, median orders, median spend)}."""
    frame = pd.DataFrame.from_dict(
        rows, orient="index", columns=["median_recency_days", "median_frequency", "median_monetary_total"])
    frame["customers"] = 1000 + 111 * frame.index
    frame["customer_share"] = frame["customers"] / frame["customers"].sum()
    frame["revenue"] = frame["customers"] * frame["median_monetary_total"] * 1.37
    frame["revenue_share"] = frame["revenue"] / frame["revenue"].sum()
    for stat in ("recency_days", "frequency", "monetary_total"):
        frame[f"mean_{stat}"] = frame[f"median_{stat}"] * 1.2
    return frame


CLEAR_CUT = {
    1: (15, 12, 9000),   # recent, frequent, big spend
    2: (60, 4, 700),     # fairly recent, frequent
    3: (320, 4, 2500),   # long gone, used to spend a lot
    4: (25, 1, 200),     # recent first-timers
    5: (250, 3, 400),    # repeat buyers gone quiet
    6: (200, 1, 150),    # one small order, a while ago
}


def test_clear_cut_profiles_get_the_expected_names():
    names = name_segments(profiles(CLEAR_CUT), POPULATION)
    assert names == {
        1: "Top buyers", 2: "Regulars", 3: "Big spenders slipping away",
        4: "Newcomers", 5: "Lapsing repeat buyers", 6: "One-time buyers",
    }


def test_every_rule_name_has_a_description_and_a_recommendation():
    recommendations = load_recommendation_rules()
    for rule in load_name_rules():
        assert rule.description, rule.name
        assert rule.name in recommendations, rule.name
    assert describe_segment("Top buyers").startswith("Ordered more recently")


def test_names_are_unique_and_the_better_match_keeps_a_shared_name():
    # Both are Top buyers by the rules; segment 2 is the clearer case, so it keeps the name.
    names = name_segments(profiles({1: (40, 4, 1200), 2: (10, 20, 9000), 3: (100, 2, 500)}), POPULATION)
    assert names[2] == "Top buyers"
    assert names[1] == "Regulars"
    assert len(set(names.values())) == len(names)


def test_segments_no_rule_fits_are_named_by_their_traits_and_told_apart():
    # Three segments close to the typical customer: the same traits in words, so the id tells them apart.
    names = name_segments(profiles({1: (100, 2, 500), 2: (95, 2, 520), 3: (110, 2, 480)}), POPULATION)
    assert len(set(names.values())) == 3
    assert names == {1: "Steady middle", 2: "Steady middle (segment 2)", 3: "Steady middle (segment 3)"}
    # Lapsed but no rule fits (not 1.5 times as long): named by its traits, never "Steady middle".
    lapsed = name_segments(profiles({1: (140, 1.5, 450)}), POPULATION)
    assert lapsed == {1: "Lapsed, infrequent, typical spend"}
    assert "No naming rule fits" in name_rule(lapsed[1], profiles({1: (140, 1.5, 450)}).loc[1], POPULATION)


def test_overrides_win_and_reserve_their_name():
    names = name_segments(profiles(CLEAR_CUT), POPULATION, overrides={5: "Top buyers", 2: "Regulars <b>"})
    assert names[5] == "Top buyers"
    assert names[2] == "Regulars <b>"
    assert names[1] != "Top buyers"
    assert len(set(names.values())) == len(names)


def test_overrides_for_unknown_segments_are_ignored_and_duplicates_refused():
    assert name_segments(profiles(CLEAR_CUT), POPULATION, overrides={99: "Ghosts"})[1] == "Top buyers"
    with pytest.raises(SegkitError, match="same name"):
        name_segments(profiles(CLEAR_CUT), POPULATION, overrides={1: "VIP", 2: "VIP"})


def test_recommendations_quote_the_segments_own_numbers():
    frame = profiles(CLEAR_CUT)
    at_risk = frame.loc[5]
    advice = recommend("Lapsing repeat buyers", at_risk, POPULATION, median_days_between_orders=45)
    text = " ".join([advice.goal, *advice.actions])
    assert f"{int(at_risk['customers']):,} customers" in text           # win-back pool
    assert f"{at_risk['revenue']:,.0f}" in text                          # revenue at risk
    assert "250 days" in text and "45 days" in text and "205 days past" in text  # recency vs usual gap


def test_actions_needing_a_missing_number_are_left_out_not_half_filled():
    advice = recommend("Lapsing repeat buyers", profiles(CLEAR_CUT).loc[5], POPULATION, median_days_between_orders=None)
    assert advice.actions
    assert not any("{" in action or "None" in action for action in advice.actions)


def test_user_named_segments_get_the_default_recommendation():
    advice = recommend("VIP club", profiles(CLEAR_CUT).loc[1], POPULATION, median_days_between_orders=20)
    assert "1,111 customers" in advice.goal
    assert any("15 days" in action for action in advice.actions)


def test_slipping_away_is_one_flag_in_the_rules_file():
    flagged = {rule.name for rule in load_name_rules() if rule.slipping_away}
    assert flagged == {"Big spenders slipping away", "Lapsing repeat buyers", "Long gone", "Dormant"}
    assert is_slipping_away("Long gone") and is_slipping_away("Dormant (4)")  # migration labels carry the id
    assert not is_slipping_away("Top buyers") and not is_slipping_away("Lapsed, typical frequency, low spend")
    assert not is_slipping_away("Long gone causes")  # a user's own name never counts


def test_money_puts_a_symbol_in_front_and_a_code_after():
    assert money(5_732_241.4, "£") == "£5,732,241"
    assert money(5_732_241.4, "GBP") == "5,732,241 GBP"
    assert money(-12.5, "€") == "-€12.50"
    assert money(1_200, "US$") == "US$1,200"
    assert money(42) == "42.00"


# What each phrase of a description claims, as the README's naming rules say it: (measure, bound that must hold).
CLAIMS = {
    "more recently": ("recency_ratio", "max", lambda bound: bound < 1),
    "more often": ("frequency_ratio", "min", lambda bound: bound > 1),
    "at least as often": ("frequency_ratio", "min", lambda bound: bound >= 1),
    "no more often": ("frequency_ratio", "max", lambda bound: bound <= 1),
    "spent more": ("monetary_ratio", "min", lambda bound: bound > 1),
    "spent less": ("monetary_ratio", "max", lambda bound: bound < 1),
    "at least 3 times the typical amount": ("monetary_ratio", "min", lambda bound: bound >= 3),
    "at least 1.5 times the typical amount": ("monetary_ratio", "min", lambda bound: bound >= 1.5),
    "longer without an order": ("recency_ratio", "min", lambda bound: bound > 1),
    "at least 1.5 times as long": ("recency_ratio", "min", lambda bound: bound >= 1.5),
    "at least 3 times as long ago": ("recency_ratio", "min", lambda bound: bound >= 3),
    "no more recently": ("recency_ratio", "min", lambda bound: bound >= 1),
    "ordered once": ("median_frequency", "max", lambda bound: bound <= 1),
}
VAGUE = ("fairly", "a lot", "high-value")


def test_every_claim_of_a_description_is_guaranteed_by_its_rule():
    for rule in load_name_rules()[:-1]:
        text = rule.description.lower()
        assert not [w for w in VAGUE if w in text], (rule.name, text)
        bounds = {(measure, "min"): low for measure, low, _ in rule.conditions} | \
                 {(measure, "max"): high for measure, _, high in rule.conditions}
        claimed = []
        for phrase in sorted(CLAIMS, key=len, reverse=True):  # "no more often" before "more often"
            if phrase in text:
                claimed.append(phrase)
                text = text.replace(phrase, "")
        assert claimed, f"{rule.name}: its description claims nothing checkable: {rule.description}"
        unbacked = [w for w in ("often", "recent", "frequent", "high", "low", "little", "long", "small", "big", "most")
                    if re.search(rf"\b{w}", text)]
        assert not unbacked, f"{rule.name}: {unbacked} is claimed beyond its rule"
        for phrase in claimed:
            measure, side, holds = CLAIMS[phrase]
            bound = bounds.get((measure, side))
            assert bound is not None and holds(bound), f"{rule.name}: '{phrase}' is not guaranteed by its rule"


def test_bargain_hunters_who_order_as_often_as_everyone_are_not_said_to_order_more():
    # The case: median orders equal the overall median (4), yet the card said "order fairly often".
    population = POPULATION.copy()
    population["median_frequency"] = 4.0
    frame = profiles({1: (80, 4, 200), 2: (10, 30, 9000), 3: (400, 1, 100)})
    names = name_segments(frame, population)
    assert names[1] == "Bargain hunters"
    assert "at least as often" in describe_segment(names[1]) and "more often" not in describe_segment(names[1])


def test_a_tiny_extreme_segment_cannot_take_a_name_from_the_larger_one_it_describes():
    frame = profiles({1: (3, 200, 400_000), 2: (20, 10, 6000), 3: (200, 1, 150)})
    frame.loc[1, "customers"], frame.loc[2, "customers"] = 40, 900  # 1.8% of 2,273 customers: tiny
    assert match_strength(next(r for r in load_name_rules() if r.name == "Top buyers"),
                          segment_measures(frame.loc[1], POPULATION)) > \
        match_strength(next(r for r in load_name_rules() if r.name == "Top buyers"),
                       segment_measures(frame.loc[2], POPULATION)), "the tiny one is the stronger match"
    assert name_segments(frame, POPULATION)[2] == "Top buyers"


def test_a_name_kept_from_an_earlier_run_is_dropped_once_its_rule_no_longer_holds():
    frame = profiles(CLEAR_CUT)
    # Segment 6 (one small order long ago) kept "Top buyers" from an earlier run: it no longer meets that rule.
    names = name_segments(frame, POPULATION, kept={6: "Top buyers", 2: "Regulars"})
    assert names[6] == "One-time buyers" and names[2] == "Regulars" and names[1] == "Top buyers"


def test_every_granted_name_states_the_rule_it_met_with_the_segments_figures():
    frame = profiles(CLEAR_CUT)
    for segment_id, name in name_segments(frame, POPULATION).items():
        text = name_rule(name, frame.loc[segment_id], POPULATION)
        assert text.startswith("Rule met: "), (name, text)
    assert "median orders ≥ 1.5× the typical customer's (here 6.00×)" in name_rule("Top buyers", frame.loc[1], POPULATION)


def test_no_cluster_name_shares_a_word_with_a_classic_rfm_segment():
    classic = pd.read_csv(ROOT / "dbt_project" / "seeds" / "rfm_segment_rules.csv")["rfm_segment"]
    words = lambda names: {w.strip(",'()").lower() for n in names for w in n.split()}  # noqa: E731
    ours = [rule.name for rule in load_name_rules()] + ["Lapsed, infrequent, low spend", "Recent, frequent, high spend"]
    assert not words(ours) & words(classic), words(ours) & words(classic)
