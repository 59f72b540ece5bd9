"""Numbers as a marketer reads them: shares as percentages, days, counts and money with thousands separators.

None reads "–" (a figure that is missing or hidden).
"""

from __future__ import annotations

MISSING = "–"


def percent(share: float | None) -> str:
    if share is None:
        return MISSING
    value = 100 * float(share)
    return f"{value:.1f}%" if value >= 0.1 or value == 0 else "<0.1%"


def days(value: float | None) -> str:
    if value is None:
        return MISSING
    value = round(float(value))
    return f"{value:,} day" if value == 1 else f"{value:,} days"


def number(value: float | None) -> str:
    if value is None:
        return MISSING
    value = float(value)
    return f"{value:,.0f}" if value == round(value) or abs(value) >= 100 else f"{value:,.1f}"


def money(value: float | None, currency: str = "") -> str:
    """An amount with thousands separators and the currency: a code made of letters goes after
    (5,732,241 GBP), anything else is a symbol and goes in front (£5,732,241, US$1,200); none gives the number."""
    if value is None:
        return MISSING
    value = float(value)
    text = f"{abs(value):,.0f}" if abs(value) >= 100 else f"{abs(value):,.2f}"
    sign = "-" if value < 0 and text.strip("0.,") else ""
    currency = currency.strip()
    if not currency:
        return sign + text
    if currency.isalpha():
        return f"{sign}{text} {currency}"
    return f"{sign}{currency}{text}"
