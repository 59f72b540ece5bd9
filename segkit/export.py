"""Export for activation: customer -> segment of a stored run, to CSV or Parquet, for a CRM, an email tool or an
ads audience.

This is the one place where customer ids deliberately leave the database. They leave as stored: when the build
pseudonymised them, the file holds the pseudonyms. The file is written to a temporary name in the target folder
and renamed when complete, so a failed export leaves no file and an existing one unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import duckdb
import pandas as pd

from segkit import engine, store
from segkit.config import Settings
from segkit.errors import SegkitError
from segkit.feature_mart import FEATURE_TABLE
from segkit.warehouse import quote_identifier, sql_text, table_exists

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
HISTORY = "segment_assignment_history"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    rows: int
    run_id: str
    output_format: str
    columns: tuple[str, ...]

    def to_json_dict(self) -> dict:
        return {"path": str(self.path), "rows": self.rows, "run_id": self.run_id, "format": self.output_format,
                "columns": list(self.columns)}


def export_segments(settings: Settings, path: Path, *, segment: int | str | None = None,
                    moved_between: tuple[str, str] | None = None, features: Sequence[str] = (),
                    run_id: str | None = None, output_format: str | None = None) -> ExportResult:
    """Write customer_id, segment_id, segment_name, run_id, analysis_date (and the features asked for) of every
    customer of a run (the latest by default), or of the customers whose segment changed between two runs
    (moved_between: from, to; the columns previous_* say where they came from); segment keeps one segment (id or
    name) of those."""
    output_format = _format(path, output_format)
    if not Path(path).parent.is_dir():
        raise SegkitError(f"The folder {Path(path).parent} does not exist, so {path} cannot be written. Create it "
                          f"(mkdir -p {Path(path).parent}) or choose another path, and run again.")
    with engine.connect(settings, read_only=True) as con:
        if moved_between is not None:
            earlier = store.read_run(con, moved_between[0])
            run = store.read_run(con, moved_between[1])
        else:
            earlier, run = None, store.read_run(con, run_id)
        query, parameters = _query(con, run, earlier, _segment_id(run, segment), tuple(features))
        partial = Path(path).with_name(f".{Path(path).name}.partial")
        options = "format csv, header true" if output_format == "csv" else "format parquet"
        try:
            columns = tuple(con.execute(f"{query} limit 0", parameters).df().columns)
            rows = _copy(con, engine.engine_name(settings), query, parameters, partial, options)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return ExportResult(Path(path), rows, run.run_id, output_format, columns)


def _copy(con, engine_name: str, query: str, parameters: list, file: Path, options: str) -> int:
    """Write the query's rows to file; DuckDB copies them itself, Spark's come through pandas."""
    if engine_name == "duckdb":
        return int(con.execute(f"copy ({query}) to {sql_text(str(file))} ({options})", parameters).fetchone()[0])
    frame = con.execute(query, parameters).df()
    frame["analysis_date"] = pd.to_datetime(frame["analysis_date"]).dt.date
    with duckdb.connect() as out:
        out.register("segkit_export", frame)
        out.execute(f"copy (select * from segkit_export) to {sql_text(str(file))} ({options})")
    return len(frame)


def _format(path: Path, asked: str | None) -> str:
    if asked:
        if asked.lower() not in ("csv", "parquet"):
            raise SegkitError(f"Unknown export format {asked!r}; choose csv or parquet.")
        return asked.lower()
    found = FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise SegkitError(f"Cannot tell the format of {path} from its name: end it in .csv or .parquet, or give "
                          "the format (--format csv).")
    return found


def _segment_id(run: store.StoredRun, segment: int | str | None) -> int | None:
    if segment is None:
        return None
    by_name = {name.casefold(): i for i, name in zip(run.segment_ids, run.segment_names)}
    text = str(segment).strip()
    found = int(text) if text.isdigit() and int(text) in run.segment_ids else by_name.get(text.casefold())
    if found is None:
        listed = ", ".join(f"{i} {name}" for i, name in zip(run.segment_ids, run.segment_names))
        raise SegkitError(f"Run {run.run_id} has no segment {segment!r}; its segments are {listed}. Give one of "
                          "their ids or names.")
    return found


def _query(con, run: store.StoredRun, earlier: store.StoredRun | None, segment_id: int | None,
           features: tuple[str, ...]) -> tuple[str, list]:
    columns = ["s.customer_id", "s.segment_id", "s.segment_name", "s.run_id", "s.analysis_date"]
    joins, where, parameters = [], ["s.run_id = ?"], [run.run_id]
    if earlier is not None:
        columns += ["p.segment_id as previous_segment_id", "p.segment_name as previous_segment_name",
                    "p.run_id as previous_run_id"]
        joins.append(f"join {HISTORY} as p on p.customer_id = s.customer_id and p.run_id = ?")
        where.append("p.segment_id <> s.segment_id")
        parameters.insert(0, earlier.run_id)
    if segment_id is not None:
        where.append("s.segment_id = ?")
        parameters.append(segment_id)
    if features:
        _check_features(con, run, features)
        columns += [f"f.{quote_identifier(name)}" for name in features]
        joins.append(f"join {FEATURE_TABLE} as f on f.customer_id = s.customer_id")
    return (f"select {', '.join(columns)} from {HISTORY} as s {' '.join(joins)} where {' and '.join(where)} "
            "order by s.customer_id", parameters)


def _check_features(con, run: store.StoredRun, features: tuple[str, ...]) -> None:
    """The features come from customer_rfm: only when it is still as of the run's analysis date."""
    if not table_exists(con, FEATURE_TABLE):
        raise SegkitError(f"There is no {FEATURE_TABLE} table to take the features from. Run `dbt build` first, or "
                          "export without features.")
    known = set(engine.column_types(con, FEATURE_TABLE)) - {"customer_id"}
    unknown = [name for name in features if name not in known]
    if unknown:
        raise SegkitError(f"Unknown feature(s) {', '.join(unknown)}: export columns of {FEATURE_TABLE}, some of "
                          f"{', '.join(sorted(known))}.")
    current = con.execute(f"select max(analysis_date) from {FEATURE_TABLE}").fetchone()[0]
    if run.analysis_date is not None and current is not None and current != run.analysis_date:
        raise SegkitError(f"{FEATURE_TABLE} now holds features as of {current}, and run {run.run_id} was fitted as "
                          f"of {run.analysis_date}: its customers' features then are no longer stored. Export "
                          "without features, or export the latest run.")
