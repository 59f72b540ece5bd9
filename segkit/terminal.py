"""What the `segkit` command shows besides its result: logging to stderr, dbt's progress, a run's summary.

Logging (logger "segkit"): INFO lines read '... reading features', DEBUG lines (--verbose) 'debug: ...', and
warnings 'Warning: ...'. `DbtProgress` follows a dbt build on one status line, rewritten in place, with the
seconds elapsed, only when stdout and stderr are terminals and INFO is logged; `StepProgress` shows the steps of
clustering the same way, each with its seconds.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

# Only the standard library here: the command imports this module first, and the status line should appear
# before numpy, pandas and DuckDB have loaded.
log = logging.getLogger("segkit")
# A line of dbt's progress: '12:00:01  3 of 41 OK created sql table model main_build.stg_transactions ... [OK in 0.1s]'
NODE_LINE = re.compile(r"^(?:\d\d:\d\d:\d\d\s+)?(\d+) of (\d+) (\S+) (.*?)(?:\s+\.*\s*\[[^\]]*\])?$")


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = {logging.DEBUG: "debug: ", logging.INFO: "... "}.get(record.levelno, "Warning: ")
        return prefix + record.getMessage()


@contextmanager
def logging_to_stderr(verbose: bool = False, quiet: bool = False) -> Iterator[None]:
    """segkit's log to the current stderr while a command runs: DEBUG with verbose, WARNING with quiet, else
    INFO. Afterwards the logger is as it was, so a program that calls the command keeps its own logging."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def is_terminal() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


class StatusLine:
    """One line of stderr rewritten in place every second, with the seconds elapsed; only in a terminal, at INFO
    (--verbose logs every line instead)."""

    def __init__(self, text: str):
        self.enabled = is_terminal() and log.isEnabledFor(logging.INFO) and not log.isEnabledFor(logging.DEBUG)
        self.text = text
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self):
        if self.enabled:
            self._draw()
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self.enabled:
            self._ticker.join()
            with self._lock:
                self._finish()
                sys.stderr.flush()

    def _finish(self) -> None:
        sys.stderr.write("\r\x1b[2K")

    def _line(self, seconds: float) -> str:
        raise NotImplementedError

    def _tick(self) -> None:
        while not self._done.wait(1.0):
            self._draw()

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        with self._lock:
            if not self._done.is_set():
                sys.stderr.write("\r\x1b[2K" + self._line(time.monotonic() - self.started)[:width])
                sys.stderr.flush()


class DbtProgress(StatusLine):
    """run_dbt's progress: dbt's latest line on the status line; cleared when dbt is done."""

    def __init__(self):
        super().__init__("starting dbt (it reads the project first)")

    def __call__(self, line: str) -> None:
        text = line.split("  ", 1)[-1].strip() if line[:2].isdigit() and line[2:3] == ":" else line.strip()
        if not text:
            return
        node = NODE_LINE.match(text)
        self.text = f"{node.group(1)} of {node.group(2)} {node.group(3)} {node.group(4)}" if node else text
        if self.enabled:
            self._draw()

    def _line(self, seconds: float) -> str:
        return f"... dbt build [{seconds:4.0f}s] {self.text}"


class StepProgress(StatusLine):
    """run_clustering's progress: each step on a line of its own, the current one counting its seconds (the k
    scan takes the longest); outside a terminal, each step is logged as it starts."""

    def __init__(self):
        super().__init__("")

    def __call__(self, step: str) -> None:
        if not self.enabled:
            log.info("%s", step)
            return
        with self._lock:
            if self.text:
                sys.stderr.write("\n")  # the finished step keeps its line and its time
            self.text, self.started = step, time.monotonic()
        self._draw()

    def _finish(self) -> None:
        if self.text:
            sys.stderr.write("\n")

    def _line(self, seconds: float) -> str:
        return f"... {self.text} [{seconds:.0f}s]" if self.text else ""


def summary_text(run, settings, report_path) -> str:
    """The summary `segkit cluster` prints: segments, the k scan, warnings and where the tables are."""
    from segkit.engine import engine_name

    lines = [
        f"Run {run.run_id}: {run.n_customers:,} customers in {run.chosen_k} segments ({run.algorithm}).",
        f"Why k={run.chosen_k}: {run.k_reason}",
        "",
        f"{'id':>3}  {'segment':<28} {'customers':>10} {'share':>7} {'revenue':>8}",
    ]
    for segment in run.segments:
        lines.append(f"{segment.segment_id:>3}  {segment.name:<28} {segment.customers:>10,} "
                     f"{segment.customer_share:>7.1%} {segment.revenue_share:>8.1%}")
    lines.append("")
    lines.append(f"{'k':>3} {'silhouette':>11} {'davies-bouldin':>15} {'calinski-harabasz':>18} {'stability':>10}")
    for row in run.k_selection:
        mark = "*" if row.k == run.chosen_k else " "
        stability = "not resampled" if math.isnan(row.stability_ari) else f"{row.stability_ari:>10.3f}"
        lines.append(f"{row.k:>2}{mark} {row.silhouette:>11.3f} {row.davies_bouldin:>15.3f} "
                     f"{row.calinski_harabasz:>18,.0f} {stability:>10}")
    for warning in run.warnings:
        lines.append(f"Warning: {warning}")
    lines.append("")
    where = (settings.db_path if engine_name(settings) == "duckdb"
             else f"the Spark target {settings.profile.target!r}")
    lines.append(f"Tables: customer_segments, segment_profiles, segment_centroids, k_selection, cluster_runs "
                 f"in {where}")
    if report_path:
        lines.append(f"Report: {report_path}")
    return "\n".join(lines)
