"""Workbooks as input (.xlsx, .xlsm, .xlsb, .xls, .ods): their sheets cached as Parquet beside the database.

python-calamine reads each sheet once; the first row with a value is the header, blank rows are skipped (as a
CSV reader skips blank lines). A column keeps its type when every cell of it, in every sheet read, is a number
(DOUBLE) or a date and time (TIMESTAMP); a column that mixes them is text, with whole numbers written without
'.0' and dates as ISO text, so `C489449` and `489434` are one Invoice column. Each sheet becomes one part file,
numbered in the order of files and sheets, so a line's position (DuckDB's file_index and file_row_number)
names its sheet and its row. The cache is rewritten only when a workbook or the sheets asked for change.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from segkit.errors import SegkitError
from segkit.warehouse import quote_identifier, sql_text

if TYPE_CHECKING:
    import python_calamine

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SheetPart:
    """One sheet of one workbook, cached as one Parquet file."""

    file: str
    sheet: str
    part: str          # the Parquet file
    rows: int          # data rows, blank rows left out
    columns: list[str]


def cache_workbooks(files: list[str], sheets: list[str] | None, folder: Path) -> list[SheetPart]:
    """Cache every sheet of `files` (or those named in `sheets`) in `folder`; return the parts in line order."""
    key = _cache_key(files, sheets)
    manifest = folder / MANIFEST
    if manifest.is_file():
        cached = json.loads(manifest.read_text())
        if cached.get("key") == key:
            return [SheetPart(**part) for part in cached["parts"]]
    tables = []
    for file in files:
        workbook = _open(file)
        for sheet in _sheet_names(file, workbook, sheets):
            header, columns = _read_sheet(workbook, sheet)
            if header:  # a blank sheet holds no line
                tables.append((file, sheet, header, columns))
    types = _column_types(tables)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    parts = []
    with duckdb.connect() as con:
        for number, (file, sheet, header, columns) in enumerate(tables):
            part = folder / f"{number:05d}.parquet"
            _write_part(con, part, header, columns, types)
            parts.append(SheetPart(file, sheet, str(part), len(columns[0]), header))
    # Written last, so an interrupted run leaves no manifest and the next one rebuilds the cache.
    manifest.write_text(json.dumps({"key": key, "parts": [asdict(part) for part in parts]}))
    return parts


def _cache_key(files: list[str], sheets: list[str] | None) -> str:
    stats = [(file, os.stat(file).st_size, os.stat(file).st_mtime_ns) for file in files]
    return hashlib.sha256(json.dumps([stats, sheets]).encode()).hexdigest()


def _open(file: str) -> python_calamine.CalamineWorkbook:
    try:
        import python_calamine  # here: only a workbook input needs it, and dbt loads this module at every start
    except ImportError:
        raise SegkitError("reading workbooks needs python-calamine: pip install python-calamine (or install segkit "
                          "with its dependencies), or export the sheets as CSV.") from None
    try:
        return python_calamine.CalamineWorkbook.from_path(file)
    except Exception as error:  # calamine raises its own error types, and zip and XML errors
        raise SegkitError(f"'{file}' could not be read as a workbook ({error}). Open it in a spreadsheet program "
                          "and save it again as .xlsx, or export the transactions as CSV.") from None


def _sheet_names(file: str, workbook: python_calamine.CalamineWorkbook, wanted: list[str] | None) -> list[str]:
    """The visible worksheets, or the ones named in `wanted` (each must exist)."""
    import python_calamine  # already imported by _open

    names = [sheet.name for sheet in workbook.sheets_metadata if sheet.typ == python_calamine.SheetTypeEnum.WorkSheet
             and sheet.visible == python_calamine.SheetVisibleEnum.Visible]
    if wanted is None:
        return names
    missing = [name for name in wanted if name not in workbook.sheet_names]
    if missing:
        raise SegkitError(f"the workbook '{file}' has no sheet '{missing[0]}'; its sheets are "
                          f"{', '.join(repr(name) for name in workbook.sheet_names)}. Fix the var excel_sheets "
                          "(null reads every visible sheet).")
    return list(wanted)


def _read_sheet(workbook: python_calamine.CalamineWorkbook, sheet: str) -> tuple[list[str], list[list]]:
    """The header and the columns of one sheet's non-blank data rows, None for an empty cell."""
    rows = [row for row in workbook.get_sheet_by_name(sheet).to_python() if any(value != "" for value in row)]
    if not rows:
        return [], []
    width = max(map(len, rows))
    columns = [[None if value == "" else value for value in column]
               for column in zip(*(row + [""] * (width - len(row)) for row in rows))]
    # An unnamed column is kept (named as DuckDB names one in a CSV) only when it holds a value.
    used = [index for index, column in enumerate(columns) if any(value is not None for value in column)]
    header = _unique([f"column{index}" if columns[index][0] is None else _text(columns[index][0]) for index in used])
    return header, [columns[index][1:] for index in used]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        unique.append(name if count == 0 else f"{name}_{count}")
    return unique


def _kinds(column: list) -> set[str]:
    """'number', 'datetime' and 'text': the kinds of value in a column (a boolean is text)."""
    return {"number" if kind in (int, float) else "datetime" if kind in (datetime.datetime, datetime.date)
            else "text" for kind in set(map(type, column)) - {type(None)}}


def _column_types(tables: list[tuple[str, str, list[str], list[list]]]) -> dict[str, str]:
    """DOUBLE or TIMESTAMP for a column whose cells are all of that kind in every sheet, else VARCHAR."""
    kinds: dict[str, set[str]] = {}
    for _, _, header, columns in tables:
        for name, column in zip(header, columns):
            kinds.setdefault(name, set()).update(_kinds(column))
    sql_types = {frozenset({"number"}): "DOUBLE", frozenset({"datetime"}): "TIMESTAMP"}
    return {name: sql_types.get(frozenset(found), "VARCHAR") for name, found in kinds.items()}


def _text(value) -> str:
    """A cell as text: whole numbers without '.0', dates and times in ISO form."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _write_part(con: duckdb.DuckDBPyConnection, part: Path, header: list[str], columns: list[list],
                types: dict[str, str]) -> None:
    import pandas as pd  # here, not at the top: dbt loads this module at every start, as a plugin of the profile

    frame = {}
    for name, column in zip(header, columns):
        if types[name] == "DOUBLE":
            frame[name] = pd.array(column, dtype="Float64")
        elif types[name] == "TIMESTAMP":  # microseconds: pandas' default nanoseconds end in 2262
            frame[name] = pd.Series(column, dtype="datetime64[us]")
        elif all(value is None or type(value) is str for value in column):
            frame[name] = pd.Series(column, dtype=object)
        else:
            frame[name] = pd.Series([None if value is None else _text(value) for value in column], dtype=object)
    con.register("sheet", pd.DataFrame(frame))
    select = ", ".join(f"cast({quote_identifier(name)} as {types[name]}) as {quote_identifier(name)}"
                       for name in header)
    con.execute(f"copy (select {select} from sheet) to {sql_text(str(part))} (format parquet)")
    con.unregister("sheet")
