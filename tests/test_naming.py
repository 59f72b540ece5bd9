"""Segment names and recommendations come from the rules files and respect uniqueness and overrides."""

import pandas as pd
import pytest

from segkit.errors import SegkitError
from segkit.formatting import money
from segkit.naming import (describe_segment, is_slipping_away, load_name_rules, load_recommendation_rules,
                           name_segments, recommend)

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
        1: "Champions", 2: "Loyal regulars", 3: "Big spenders slipping away",
        4: "Promising newcomers", 5: "At risk", 6: "One-time buyers",
    }


def test_every_rule_name_has_a_description_and_a_recommendation():
    recommendations = load_recommendation_rules()
    for rule in load_name_rules():
        assert rule.description, rule.name
        assert rule.name in recommendations, rule.name
    assert describe_segment("Champions").startswith("Bought recently")


def test_names_are_unique_and_the_better_match_keeps_a_shared_name():
    # Both are Champions by the rules; segment 2 is the clearer case, so it keeps the name.
    names = name_segments(profiles({1: (40, 4, 1200), 2: (10, 20, 9000), 3: (100, 2, 500)}), POPULATION)
    assert names[2] == "Champions"
    assert names[1] == "Loyal regulars"
    assert len(set(names.values())) == len(names)


def test_segments_that_all_fall_back_are_told_apart_by_their_traits():
    names = name_segments(profiles({1: (100, 2, 500), 2: (95, 2, 520), 3: (110, 2, 480)}), POPULATION)
    assert len(set(names.values())) == 3
    assert all(name.startswith("Steady middle") for name in names.values())
    assert not any(name.endswith((" 2", " 3")) for name in names.values())


def test_overrides_win_and_reserve_their_name():
    names = name_segments(profiles(CLEAR_CUT), POPULATION, overrides={5: "Champions", 2: "Regulars <b>"})
    assert names[5] == "Champions"
    assert names[2] == "Regulars <b>"
    assert names[1] != "Champions"
    assert len(set(names.values())) == len(names)


def test_overrides_for_unknown_segments_are_ignored_and_duplicates_refused():
    assert name_segments(profiles(CLEAR_CUT), POPULATION, overrides={99: "Ghosts"})[1] == "Champions"
    with pytest.raises(SegkitError, match="same name"):
        name_segments(profiles(CLEAR_CUT), POPULATION, overrides={1: "VIP", 2: "VIP"})


def test_recommendations_quote_the_segments_own_numbers():
    frame = profiles(CLEAR_CUT)
    at_risk = frame.loc[5]
    advice = recommend("At risk", at_risk, POPULATION, median_days_between_orders=45)
    text = " ".join([advice.goal, *advice.actions])
    assert f"{int(at_risk['customers']):,} customers" in text           # win-back pool
    assert f"{at_risk['revenue']:,.0f}" in text                          # revenue at risk
    assert "250 days" in text and "45 days" in text and "205 days past" in text  # recency vs usual gap


def test_actions_needing_a_missing_number_are_left_out_not_half_filled():
    advice = recommend("At risk", profiles(CLEAR_CUT).loc[5], POPULATION, median_days_between_orders=None)
    assert advice.actions
    assert not any("{" in action or "None" in action for action in advice.actions)


def test_user_named_segments_get_the_default_recommendation():
    advice = recommend("VIP club", profiles(CLEAR_CUT).loc[1], POPULATION, median_days_between_orders=20)
    assert "1,111 customers" in advice.goal
    assert any("15 days" in action for action in advice.actions)


def test_slipping_away_is_one_flag_in_the_rules_file():
    flagged = {rule.name for rule in load_name_rules() if rule.slipping_away}
    assert flagged == {"Big spenders slipping away", "At risk", "Lost", "Hibernating"}
    assert is_slipping_away("Lost") and is_slipping_away("At risk (4)")  # migration labels carry the id
    assert not is_slipping_away("Champions") and not is_slipping_away("Steady middle (lapsed, typical frequency, low spend)")
    assert not is_slipping_away("Lost causes")  # a user's own name never counts


def test_money_puts_a_symbol_in_front_and_a_code_after():
    assert money(5_732_241.4, "£") == "£5,732,241"
    assert money(5_732_241.4, "GBP") == "5,732,241 GBP"
    assert money(-12.5, "€") == "-€12.50"
    assert money(1_200, "US$") == "US$1,200"
    assert money(42) == "42.00"
