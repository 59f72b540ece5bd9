"""Small hand-written SVG charts for the report.

Why not a plotting library: inline SVG needs no dependency and no script, is a few kilobytes per chart,
scales to any screen width through its viewBox, prints sharply, and gets native hover tooltips from
<title> elements. Every function returns a Chart: Markup that Jupyter displays as the chart, with its own styles.
Every piece of text put in it goes through `escape`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from markupsafe import Markup, escape

# Paul Tol's "muted" scheme (9 colours made to stay apart for protanopes, deuteranopes and tritanopes) and a near
# black: 10 colours for up to 10 segments, every pair at least 15 CIELAB units apart under simulated protanopia,
# deuteranopia and tritanopia (tests/test_report.py; Okabe-Ito with Tableau, before, came to 5). The report gives
# a run's segments these colours in id order, so a page never repeats one.
PALETTE = ("#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499",
           "#222222")
FONT = 12
# Every chart carries its own styles, so it looks the same in the report, in a notebook and in a file of its own.
# A <style> in inline SVG applies to the whole page, so every rule is scoped to svg.chart; all charts share them.
STYLE = " ".join((
    "svg.chart{font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;"
    "background:#fff}",
    "svg.chart .axis{stroke:#7b8794;stroke-width:1}",
    "svg.chart .grid{stroke:#e4e7eb;stroke-width:1}",
    "svg.chart .tick,svg.chart .axis-label{fill:#52606d}",
    "svg.chart .axis-label{font-weight:600}",
    "svg.chart .row-label{fill:#1f2933}",
    "svg.chart .line{fill:none;stroke:#0b5cad;stroke-width:2}",
    "svg.chart .point{fill:#fff;stroke:#0b5cad;stroke-width:2}",
    "svg.chart .point.knee{fill:#f59f00;stroke:#9c5700}",
    "svg.chart .point.chosen{fill:#d9480f;stroke:#d9480f}",
    "svg.chart .mark-label{fill:#d9480f;font-weight:700}",
    "svg.chart .knee-label{fill:#9c5700;font-style:italic}",
    "svg.chart .bar.revenue{fill-opacity:.55}",
    "svg.chart .key.customers{fill:#52606d}",
    "svg.chart .key.revenue{fill:#52606d;fill-opacity:.55}",
    "svg.chart .dots{stroke-width:4.5;stroke-linecap:round;stroke-opacity:.7;fill:none}",
    "svg.chart .note{fill:#5f6b7a;font-style:italic}",
))


class Chart(Markup):
    """A chart's SVG markup, which Jupyter and IPython display as the chart itself."""

    def _repr_svg_(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return str(self)


def segment_colour(segment_id: int) -> str:
    return PALETTE[(int(segment_id) - 1) % len(PALETTE)]


def _fmt(value: float) -> str:
    """Coordinates with one decimal: enough for a screen, small in the file."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, label: str, body: Sequence[str]) -> Chart:
    return Chart(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet" style="max-width:{width}px">'
        f"<title>{escape(label)}</title><style>{STYLE}</style>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "", size: int = FONT,
          extra: str = "") -> str:
    class_attr = f' class="{cls}"' if cls else ""
    return (f'<text x="{_fmt(x)}" y="{_fmt(y)}" text-anchor="{anchor}" font-size="{size}"{class_attr}{extra}>'
            f"{escape(text)}</text>")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering low..high."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten and their 2x / 5x within low..high, thinned to stay readable."""
    low, high = max(low, 1e-9), max(high, low * 10)
    ticks = [m * 10 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
             for m in (1, 2, 5) if low <= m * 10 ** e <= high]
    if len(ticks) > 8:
        ticks = [t for t in ticks if math.isclose(math.log10(t) % 1, 0, abs_tol=1e-9)]
    return ticks or [low, high]


def short_number(value: float) -> str:
    """12,500 -> '12.5k' for axis labels; tables carry the exact numbers."""
    value = float(value)
    for limit, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else f"{int(value):,}"


@dataclass(frozen=True)
class Axis:
    low: float
    high: float
    start: float  # pixel position of low
    end: float    # pixel position of high
    log: bool = False

    def __call__(self, value: float) -> float:
        if self.log:
            low, high, value = math.log10(self.low), math.log10(self.high), math.log10(max(value, self.low))
        else:
            low, high = self.low, self.high
        share = 0.5 if high == low else (value - low) / (high - low)
        return self.start + share * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            return log_ticks(self.low, self.high)
        return [t for t in nice_ticks(self.low, self.high) if self.low - 1e-9 <= t <= self.high + 1e-9]


def _axes(x: Axis, y: Axis, x_label: str, y_label: str, x_format: Callable[[float], str] = short_number,
          y_format: Callable[[float], str] = short_number, x_ticks: Sequence[float] | None = None) -> list[str]:
    body = [f'<line class="axis" x1="{_fmt(x.start)}" y1="{_fmt(y.start)}" x2="{_fmt(x.end)}" y2="{_fmt(y.start)}"/>',
            f'<line class="axis" x1="{_fmt(x.start)}" y1="{_fmt(y.start)}" x2="{_fmt(x.start)}" y2="{_fmt(y.end)}"/>']
    for tick in y.ticks():
        py = y(tick)
        body.append(f'<line class="grid" x1="{_fmt(x.start)}" y1="{_fmt(py)}" x2="{_fmt(x.end)}" y2="{_fmt(py)}"/>')
        body.append(_text(x.start - 6, py + 4, y_format(tick), "end", "tick"))
    for tick in x_ticks if x_ticks is not None else x.ticks():
        px = x(tick)
        body.append(_text(px, y.start + 16, x_format(tick), "middle", "tick"))
    body.append(_text((x.start + x.end) / 2, y.start + 34, x_label, "middle", "axis-label"))
    body.append(_text(14, (y.start + y.end) / 2, y_label, "middle", "axis-label",
                      extra=f' transform="rotate(-90 14 {_fmt((y.start + y.end) / 2)})"'))
    return body


def line_chart(xs: Sequence[float], ys: Sequence[float | None], *, label: str, x_label: str, y_label: str,
               chosen_x: float | None = None, knee_x: float | None = None, width: int = 420, height: int = 260,
               y_format: Callable[[float], str] = short_number) -> Markup:
    """A line over k (or any x) with the chosen value circled and labelled; None values leave a gap."""
    points = [(x, y) for x, y in zip(xs, ys) if y is not None and not math.isnan(y)]
    if not points:
        return _svg(width, 60, label, [_text(10, 30, "No values to show.", cls="note")])
    y_values = [y for _, y in points]
    y_low, y_high = min(y_values), max(y_values)
    pad = (y_high - y_low) * 0.1 or abs(y_high) * 0.1 or 1
    x_axis = Axis(min(xs), max(xs), 62, width - 16)
    y_axis = Axis(y_low - pad, y_high + pad, height - 44, 14)
    body = _axes(x_axis, y_axis, x_label, y_label, x_format=lambda v: f"{v:g}", y_format=y_format,
                 x_ticks=list(xs))
    path = " ".join(f"{'M' if i == 0 else 'L'}{_fmt(x_axis(x))} {_fmt(y_axis(y))}" for i, (x, y) in enumerate(points))
    body.append(f'<path class="line" d="{path}"/>')
    for x, y in points:
        cls = "point chosen" if x == chosen_x else "point knee" if x == knee_x else "point"
        tip = f"{x_label} {x:g}: {y_format(y)}" + (" (chosen)" if x == chosen_x else "") + \
              (" (elbow)" if x == knee_x and x != chosen_x else "")
        body.append(f'<circle class="{cls}" cx="{_fmt(x_axis(x))}" cy="{_fmt(y_axis(y))}" '
                    f'r="{6 if x == chosen_x else 4}"><title>{escape(tip)}</title></circle>')
        if x == chosen_x:
            body.append(_text(x_axis(x), y_axis(y) - 10, f"chosen k = {x:g}", "middle", "mark-label"))
        elif x == knee_x:
            body.append(_text(x_axis(x) - 8, y_axis(y) + 16, "elbow", "end", "knee-label"))
    return _svg(width, height, label, body)


def share_bars(rows: Sequence[tuple[str, str, float | None, float | None]], *, label: str,
               width: int = 640) -> Markup:
    """Per row (name, colour, customer share, revenue share): two bars side by side, shares 0..1.

    Rows whose shares are None are drawn as a note (suppressed small segments).
    """
    row_height, top, left = 44, 26, 190
    height = top + row_height * len(rows) + 10
    x_axis = Axis(0, max([s for r in rows for s in r[2:] if s is not None] + [0.01]), left, width - 60)
    body = [f'<rect class="key customers" x="{left}" y="6" width="12" height="10"/>',
            _text(left + 16, 15, "share of customers", cls="tick"),
            f'<rect class="key revenue" x="{left + 140}" y="6" width="12" height="10"/>',
            _text(left + 156, 15, "share of revenue", cls="tick")]
    for index, (name, colour, customers, revenue) in enumerate(rows):
        y = top + index * row_height
        body.append(_text(left - 8, y + 22, _clip(name, 28), "end", "row-label"))
        if customers is None or revenue is None:
            body.append(_text(left + 4, y + 22, "figures suppressed (small segment)", cls="note"))
            continue
        for offset, share, cls in ((4, customers, "customers"), (21, revenue, "revenue")):
            bar_width = max(x_axis(share) - left, 1)
            body.append(f'<rect class="bar {cls}" x="{left}" y="{y + offset}" width="{_fmt(bar_width)}" height="15" '
                        f'fill="{colour}"><title>{escape(name)}: {share * 100:.1f}% of {cls}</title></rect>')
            body.append(_text(left + bar_width + 4, y + offset + 12, f"{share * 100:.1f}%", cls="tick"))
    return _svg(width, height, label, body)


def diverging_colour(z: float) -> str:
    """Blue for below the population, orange for above, white at zero; |z| >= 2 is full colour."""
    share = max(-1.0, min(1.0, z / 2))
    target = (33, 102, 172) if share < 0 else (214, 96, 77)
    mix = abs(share) * 0.85
    r, g, b = (round(255 + (c - 255) * mix) for c in target)
    return f"#{r:02x}{g:02x}{b:02x}"


def sequential_colour(share: float) -> str:
    """White to blue for 0..1."""
    share = max(0.0, min(1.0, share))
    r, g, b = (round(255 + (c - 255) * share * 0.9) for c in (8, 81, 156))
    return f"#{r:02x}{g:02x}{b:02x}"


def scatter(series: Sequence[tuple[str, str, Sequence[tuple[float, float]]]], *, label: str, x_label: str,
            y_label: str, width: int = 640, height: int = 420, x_format: Callable[[float], str] = short_number,
            y_format: Callable[[float], str] = short_number) -> Markup:
    """Log-log scatter; series are (name, colour, points). Points carry no identifiers and no per-point tooltip.

    Each series is ONE path of zero-length round-capped segments ("M x y h0"): about 12 bytes a point.
    """
    values = [p for _, _, points in series for p in points]
    if not values:
        return _svg(width, 60, label, [_text(10, 30, "No customers to show.", cls="note")])
    xs, ys = [max(p[0], 1e-9) for p in values], [max(p[1], 1e-9) for p in values]
    x_axis = Axis(min(xs) * 0.9, max(xs) * 1.1, 62, width - 16, log=True)
    y_axis = Axis(min(ys) * 0.9, max(ys) * 1.1, height - 44, 10, log=True)
    body = _axes(x_axis, y_axis, x_label, y_label, x_format=x_format, y_format=y_format)
    # The legend goes under the plot, two names a row, each in full (a name can be 50 characters).
    column_width = (width - 62) / 2
    for index, (name, colour, points) in enumerate(series):
        d = "".join(f"M{_fmt(x_axis(x))} {_fmt(y_axis(y))}h0" for x, y in points)
        body.append(f'<path class="dots" stroke="{colour}" d="{d}"><title>{escape(name)}: '
                    f'{len(points):,} customers in the sample</title></path>')
        lx, ly = 62 + (index % 2) * column_width, height + 16 + (index // 2) * 18
        body.append(f'<circle cx="{_fmt(lx + 5)}" cy="{_fmt(ly - 4)}" r="5" fill="{colour}"/>')
        body.append(_text(lx + 14, ly, name, cls="tick legend"))
    return _svg(width, height + 10 + 18 * ((len(series) + 1) // 2), label, body)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
