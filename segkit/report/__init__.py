"""The HTML segment report: build data first, render last.

`build_report_model` (segkit.report.build) reads one stored run into a view model (segkit.report.view): plain
records of aggregates only, with small groups hidden (segkit.report.privacy) and the words written
(segkit.report.prose). `render_report` (segkit.report.render) turns it into one offline page, and
`write_report` writes that page.
"""

from __future__ import annotations

import os
from pathlib import Path

from segkit import engine
from segkit.config import Settings
from segkit.report.build import build_report_model
from segkit.report.render import render_report


def write_report(settings: Settings, run_id: str | None = None) -> Path:
    """Render the report for a run (latest by default) from the engine's tables, opened read-only, and write it."""
    with engine.connect(settings, read_only=True) as con:
        model = build_report_model(con, run_id, settings)
    html = render_report(model)
    path = report_file(settings, model.run.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, path)
    return path


def report_file(settings: Settings, run_id: str) -> Path:
    """Settings.report_path when it names a .html file; otherwise segments_<run id>.html in that folder or reports/."""
    target = settings.report_path
    if target is not None and Path(target).suffix.lower() in (".html", ".htm"):
        return Path(target)
    folder = Path(target) if target is not None else Path(settings.project_dir) / "reports"
    return folder / f"segments_{run_id}.html"
