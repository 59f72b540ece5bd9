"""Privacy: what the report hides so that no small group of customers can be picked out.

A segment with fewer than ``min_segment_size`` customers is shown without figures, and so is one more when its
size could be worked out from the total; a count below the minimum in any table is hidden, with enough others
that it cannot be worked out from the totals; the customers on the map are a sample, rounded.
"""

from __future__ import annotations

import math
from typing import Collection, Sequence

import pandas as pd


def hidden_segments(customers: pd.Series, minimum: int) -> set[int]:
    """The segment ids (the index of customers) whose figures are hidden: those below the minimum, and, as the
    total is printed, the next smallest when only one is, so that its size is not the total minus the others
    (with two segments, both)."""
    small = {int(i) for i, n in customers.items() if int(n) < minimum}
    if len(small) == 1:
        small.add(int(min((i for i in customers.index if i not in small), key=lambda i: (customers[i], i))))
    return small


def suppress_counts(counts: Sequence[Sequence[int | None]], minimum: int, keep: Collection[tuple[int, int]] = (),
                    published: tuple[bool, bool] = (True, True)) -> tuple[tuple[int | None, ...], ...]:
    """A count table with small cells hidden (None), and enough others that no hidden cell can be worked out.

    Primary: counts from 1 to minimum - 1 (None on input counts as already hidden): a cell that small could
    point at individual customers. Complementary: where the totals of rows (published[0]) or columns
    (published[1]) appear elsewhere in the report, a row or column with exactly one hidden cell would give
    it away by subtraction, so the smallest other non-zero cell of that line is hidden too; repeated until
    no such line has a lone hidden cell. Zeros are never hidden: a line whose other cells are all zero has a
    total below the minimum, and such segments are suppressed whole. keep: (row, column) cells published
    elsewhere, picked as the second cell only when nothing else is left.
    """
    cells = [[None if n is None or 0 < n < minimum else int(n) for n in row] for row in counts]
    n_rows, n_cols = len(cells), max((len(row) for row in cells), default=0)
    lines = ([[(r, c) for c in range(n_cols)] for r in range(n_rows)] if published[0] else []) + \
            ([[(r, c) for r in range(n_rows)] for c in range(n_cols)] if published[1] else [])
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(cells[r][c] is None for r, c in line) != 1:
                continue
            shown = [(r, c) for r, c in line if cells[r][c]]
            candidates = [p for p in shown if p not in keep] or shown
            if candidates:
                r, c = min(candidates, key=lambda p: (cells[p[0]][p[1]], p))
                cells[r][c] = None
                changed = True
    return tuple(tuple(row) for row in cells)


def round_significant(value: float, digits: int = 3) -> float:
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))
