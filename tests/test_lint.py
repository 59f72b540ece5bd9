"""segkit's code, tests and benchmarks carry no unused imports, undefined names or shadowed fixtures (pyflakes)."""

from __future__ import annotations

import io

from pyflakes.api import checkRecursive
from pyflakes.reporter import Reporter

from tests.conftest import ROOT


def test_pyflakes_finds_nothing():
    warnings, errors = io.StringIO(), io.StringIO()
    count = checkRecursive([str(ROOT / folder) for folder in ("segkit", "tests", "bench")], Reporter(warnings, errors))
    assert count == 0, warnings.getvalue() + errors.getvalue()
