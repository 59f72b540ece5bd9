"""How the transaction files are read: what kind each file is, the CSV dialect, and the checks that stop a build
before any model runs with one message naming the file, the line and the var to set.

The kind of a file comes from its first bytes (Parquet 'PAR1', a zip workbook 'PK', gzip, zstd, text), else from
its name in any case. A CSV is read with an explicit dialect, never a guessed one: the delimiter is the var
csv_delimiter, else the most frequent of comma, semicolon, tab and bar in the header line; the quote and escape
are the vars (RFC 4180 by default); the encoding is the var, else UTF-8, or UTF-16 when the file says so with its
byte-order mark. Lines start at the first line (no preamble is skipped) and none is taken for a comment.

This module is also a dbt-duckdb plugin (profiles.yml `plugins:`): it registers `segkit_read_input(request)`,
which the macro transactions_input calls with the reader vars as JSON. It answers, as JSON, the kind of input and
the SQL that reads it, or the message that says why the input cannot be read.
"""

from __future__ import annotations

import csv
import difflib
import gzip
import io
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin

from segkit.errors import SegkitError
from segkit.excel import cache_workbooks
from segkit.file_kinds import HEAD_BYTES, file_kind, kind_by_name, utf16_order
from segkit.warehouse import sql_text

DELIMITERS = (",", ";", "\t", "|")
# The longest line read, so a 10 MB description in a column segkit does not use is read, not refused. DuckDB needs
# a buffer larger than this; 32 MiB is its default buffer, which a compressed or re-encoded file allocates
# (16 times the line size unless set), against the memory limit.
MAX_LINE_SIZE = 16 * 1024 * 1024
BUFFER_SIZE = 32 * 1024 * 1024
# DuckDB's CSV reader decodes these three itself; other names people write for them.
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "utf16": "utf-16", "utf-16le": "utf-16",
             "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1", "iso8859-1": "latin-1"}


@dataclass(frozen=True)
class ReaderSettings:
    """The vars that say how to read the input, as the macro transactions_input passes them."""

    path: str
    columns: dict[str, str]            # segkit's name -> the header of each mapped column
    database: str = ""                 # the DuckDB file: workbooks are cached beside it
    delimiter: str | None = None
    quote: str = '"'
    escape: str = '"'
    encoding: str | None = None
    excel_sheets: list[str] | None = None


@dataclass(frozen=True)
class InputPlan:
    """How to read the input: its kind ('csv', 'parquet' or 'workbook') and the SQL table function that does."""

    kind: str
    reader: str


@dataclass(frozen=True)
class CsvDialect:
    """The options every file of a CSV input is read with."""

    delimiter: str | None = None       # None only when no file could be looked at: DuckDB then detects it
    quote: str = '"'
    escape: str = '"'
    encoding: str = "utf-8"
    compression: str = "auto"

    def reader(self, target: str) -> str:
        """read_csv() of a file or glob: every column as text, a short line padded with nulls (cleaning rejects
        it), the serial reader (the parallel one refuses padding where quoted fields hold line breaks)."""
        options = ["header = true", "all_varchar = true", "union_by_name = true", "null_padding = true",
                   "parallel = false", "skip = 0", "comment = ''", f"max_line_size = {MAX_LINE_SIZE}",
                   f"buffer_size = {BUFFER_SIZE}",
                   f"quote = {sql_text(self.quote)}", f"escape = {sql_text(self.escape)}",
                   f"encoding = {sql_text(self.encoding)}", f"compression = {sql_text(self.compression)}"]
        if self.delimiter:
            options.insert(0, f"delim = {sql_text(self.delimiter)}")
        return f"read_csv({sql_text(target)}, {', '.join(options)})"


def plan_input(settings: ReaderSettings, check: bool = False) -> InputPlan:
    """How to read settings.path; with `check`, also read every file through once, so that any file or line that
    cannot be read stops the build here with a SegkitError, before a model runs."""
    files = _glob(settings.path)
    if not files:  # dbt compile before the files exist; the start of a build says there are none
        kind = kind_by_name(settings.path)
        readers = {"csv": CsvDialect(quote=settings.quote, escape=settings.escape,
                                     encoding=_encoding(settings.encoding) or "utf-8").reader(settings.path),
                   "parquet": _parquet_reader(settings.path),
                   "workbook": _parquet_reader(str(workbook_cache(settings.database) / "*.parquet"))}
        return InputPlan(kind, readers[kind])
    kinds = {file: file_kind(file) for file in files}
    if len(set(kinds.values())) > 1:
        first = {kind: file for file, kind in reversed(kinds.items())}
        raise SegkitError(f"transactions_path '{settings.path}' matches files of different kinds: "
                          + ", ".join(f"'{file}' is {_KIND_NAMES[kind]}" for kind, file in sorted(first.items()))
                          + ". Point it at files of one kind.")
    kind = kinds[files[0]]
    if kind == "parquet":
        if check:
            _check_parquet(files, settings)
        return InputPlan("parquet", _parquet_reader(settings.path))
    if kind == "workbook":
        folder = workbook_cache(settings.database)
        parts = cache_workbooks(files, settings.excel_sheets, folder)
        if not parts:
            raise SegkitError(f"the sheets read from '{settings.path}' are blank. Point transactions_path at "
                              "your transactions, or name the sheets that hold them in the var excel_sheets.")
        if check:
            _check_columns([(f"sheet '{part.sheet}' of '{part.file}'", part.columns) for part in parts], settings,
                           "sheets", "rename the column in that sheet, or leave the sheet out with the var "
                                     "excel_sheets")
        return InputPlan("workbook", _parquet_reader(str(folder / "*.parquet")))
    files_read = {file: _csv_head(file, settings) for file in files}
    dialect = _csv_dialect(files_read, settings)
    if check:
        _check_csv(files_read, dialect, settings)
    return InputPlan("csv", dialect.reader(settings.path))


_KIND_NAMES = {"csv": "CSV", "parquet": "Parquet", "workbook": "a workbook"}


def _parquet_reader(target: str) -> str:
    return f"read_parquet({sql_text(target)}, union_by_name = true)"


def workbook_cache(database: str) -> Path:
    """Where the sheets of a workbook input are cached: a folder beside the DuckDB file."""
    if database in ("", ":memory:"):
        return Path(tempfile.gettempdir()) / "segkit-memory.excel"
    return Path(f"{database}.excel")


def _glob(path: str) -> list[str]:
    """The files DuckDB reads for `path` (its own glob rules), in its order."""
    with duckdb.connect() as con:
        return [file for (file,) in con.execute("select file from glob(?) order by file", [path]).fetchall()]


def _encoding(name: str | None) -> str | None:
    if name is None:
        return None
    if name.lower() not in ENCODINGS:
        raise SegkitError(f"the var encoding must be utf-8, utf-16 or latin-1 (also for Windows-1252 "
                          f"exports); got '{name}'.")
    return ENCODINGS[name.lower()]


@dataclass(frozen=True)
class _CsvHead:
    compression: str            # what the file's bytes say: 'gzip', 'zstd' or 'none'
    encoding: str
    header: str | None          # the header line, when it could be read here (not for zstd)


def _csv_head(file: str, settings: ReaderSettings) -> _CsvHead:
    with open(file, "rb") as handle:
        raw = handle.read(HEAD_BYTES)
    compression = "gzip" if raw.startswith(b"\x1f\x8b") else "zstd" if raw.startswith(b"\x28\xb5\x2f\xfd") else "none"
    if compression == "gzip":
        try:
            with gzip.open(file) as handle:
                raw = handle.read(HEAD_BYTES)
        except (OSError, EOFError) as error:
            raise SegkitError(f"'{file}' is not a readable gzip file ({error}). Compress it again, or export it "
                              "uncompressed.") from None
    elif compression == "zstd":
        return _CsvHead(compression, _encoding(settings.encoding) or "utf-8", None)
    encoding = _encoding(settings.encoding)
    if encoding is None:
        order = utf16_order(raw)
        if order == "be":
            raise SegkitError(f"'{file}' is UTF-16 big-endian text, which DuckDB does not read. Save it as UTF-8 "
                              "(or UTF-16 little-endian) and run again.")
        encoding = "utf-16" if order == "le" else "utf-8"
    codec = {"utf-8": "utf-8-sig", "latin-1": "latin-1",
             "utf-16": "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-16-le"}[encoding]
    text = raw.decode(codec, errors="replace")
    header = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0] if text else None
    return _CsvHead(compression, encoding, header)


def _header_delimiter(header: str, quote: str) -> str:
    """The most frequent of the candidate delimiters outside quotes in the header line (comma on a tie or none)."""
    outside = re.sub(re.escape(quote) + ".*?" + re.escape(quote), "", header) if quote else header
    counts = [(outside.count(candidate), -position) for position, candidate in enumerate(DELIMITERS)]
    return DELIMITERS[-max(counts)[1]]


def _csv_dialect(heads: dict[str, _CsvHead], settings: ReaderSettings) -> CsvDialect:
    """One dialect for every file of the input; files that disagree on their delimiter or encoding stop here."""
    delimiters = {file: settings.delimiter or _header_delimiter(head.header, settings.quote)
                  for file, head in heads.items() if head.header}
    encodings = {file: head.encoding for file, head in heads.items()}
    for what, found, var in (("delimiter", delimiters, "csv_delimiter"), ("encoding", encodings, "encoding")):
        if len(set(found.values())) > 1:
            first = {value: file for file, value in reversed(found.items())}
            raise SegkitError(f"the files of '{settings.path}' use different {what}s: "
                              + ", ".join(f"'{file}' {value!r}" for value, file in sorted(first.items()))
                              + f". Export them alike (one {what} for every file); the var {var} sets it.")
    compressions = {head.compression for head in heads.values()}
    if len(compressions) > 1:  # DuckDB tells each file's compression from its name then: the names must be right
        for file, head in heads.items():
            named = "gzip" if file.lower().endswith(".gz") else "zstd" if file.lower().endswith(".zst") else "none"
            if named != head.compression:
                state = "not compressed" if head.compression == "none" else f"{head.compression}-compressed"
                raise SegkitError(f"'{file}' is {state} but its name says otherwise, and other files of the input "
                                  "are compressed differently. Rename it (.csv.gz for gzip, .csv.zst for zstd, .csv "
                                  "for plain).")
    return CsvDialect(delimiter=next(iter(delimiters.values()), None), quote=settings.quote, escape=settings.escape,
                      encoding=next(iter(encodings.values())),
                      compression=compressions.pop() if len(compressions) == 1 else "auto")


def _check_csv(heads: dict[str, _CsvHead], dialect: CsvDialect, settings: ReaderSettings) -> None:
    """Each file's header (mapped columns present), then every line of it, read with the input's dialect in
    strict mode: a line with more fields than the header, an unclosed quote or bytes that are not in the
    encoding stop the build with that line."""
    files = [file for file in heads if Path(file).stat().st_size > 0]  # an empty file holds no line
    with duckdb.connect() as con:
        found = {}
        for file in files:
            try:
                described = con.execute(f"describe select * from {dialect.reader(file)}").fetchall()
            except duckdb.Error as error:
                raise SegkitError(_csv_problem(file, dialect, error)) from None
            found[file] = [name for (name, *_) in described]
        _check_columns([(f"'{file}'", names) for file, names in found.items()], settings, "files",
                       "rename the column in that file", csv_dialect=dialect)
        for file in files:
            try:
                con.execute(f"select count(*) from {dialect.reader(file)}").fetchall()
            except duckdb.Error as error:
                raise SegkitError(_csv_problem(file, dialect, error)) from None


def _python_dialect(dialect: CsvDialect) -> dict:
    """Python's csv module options for the same dialect, to find the line at fault when DuckDB gives none."""
    options = {"delimiter": dialect.delimiter or ",", "strict": True}
    if not dialect.quote:
        return {**options, "quoting": csv.QUOTE_NONE}
    return {**options, "quotechar": dialect.quote, "doublequote": dialect.escape in ("", dialect.quote),
            "escapechar": dialect.escape if dialect.escape not in ("", dialect.quote) else None}


_QUOTE_FIX = ("(a stray quote, or the file is cut short). Fix the quotes on that line (a quote inside a quoted "
              "field is written twice), or set the var csv_quote to the character your file quotes fields with "
              "('' if it never does).")


def _csv_problem(file: str, dialect: CsvDialect, error: duckdb.Error) -> str:
    """One line from DuckDB's CSV error: the file, the line, what is wrong, the var that fixes it."""
    text = str(error)
    if "CSV Error on Line" not in text and "Error when sniffing file" in text:
        return _scan_for_problem(file, dialect) or (
            f"'{file}' could not be read as CSV with delimiter {dialect.delimiter!r}, quote {dialect.quote!r} "
            f"and escape {dialect.escape!r}. Set the vars csv_delimiter, csv_quote and csv_escape to the file's.")
    return describe_csv_error(file, text, dialect)


def describe_csv_error(file: str, text: str, dialect: CsvDialect | None = None) -> str:
    """DuckDB's CSV error `text` (its many lines of advice) as one line: the file, the line, what is wrong, and
    which var fixes it."""
    at_line = re.search(r"CSV Error on Line: (\d+)", text)
    line = at_line.group(1) if at_line else "?"
    columns = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    delimiter = repr(dialect.delimiter) if dialect and dialect.delimiter else "delimiter"
    if "unterminated quote" in text:
        return f"'{file}' line {line}: a quoted field opened on this line never closes {_QUOTE_FIX}"
    if columns:
        return (f"'{file}' line {line} has {columns.group(2)} fields where the header has {columns.group(1)}: a "
                f"field holding the {delimiter} without quotes? Quote that field or fix the line; if the file uses "
                "another delimiter, set the var csv_delimiter.")
    if "Invalid unicode" in text:
        return _not_encoded(file, line, dialect.encoding if dialect else "utf-8")
    if "Maximum line size" in text:
        return (f"'{file}' has a line longer than {MAX_LINE_SIZE // 2 ** 20} MiB, the longest segkit reads (a quoted "
                "field that runs on, or a huge text column). Shorten or remove that text in the file.")
    first = next((part.strip() for part in text.splitlines() if part.strip()), text)
    return (f"'{file}' could not be read as CSV: {first[:300]}. Check the vars csv_delimiter, csv_quote, "
            "csv_escape and encoding against the file.")


def _not_encoded(file: str, line: str, encoding: str) -> str:
    return (f"'{file}' line {line} is not valid {encoding.upper()} text. Set the var encoding to the file's: "
            "latin-1 (also for Windows-1252 exports), utf-16 or utf-8.")


def _scan_for_problem(file: str, dialect: CsvDialect) -> str | None:
    """Python's csv module through the file: the first record that is not well-formed, by the line it starts on."""
    if dialect.compression == "zstd":
        return None
    codec = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "utf-16": "utf-16"}[dialect.encoding]
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_SIZE))
    opener = gzip.open if dialect.compression == "gzip" else open
    with opener(file, "rb") as binary, io.TextIOWrapper(binary, encoding=codec, newline="") as text:
        reader = csv.reader(text, **_python_dialect(dialect))
        start = 1
        try:
            width = len(next(reader, []))
            start = reader.line_num + 1
            for record in reader:
                if len(record) > width:
                    return (f"'{file}' line {start} has {len(record)} fields where the header has {width}: a field "
                            f"holding the delimiter {dialect.delimiter!r} without quotes? Quote that field or fix "
                            "the line; if the file uses another delimiter, set the var csv_delimiter.")
                start = reader.line_num + 1
        except csv.Error:
            return f"'{file}' line {start}: a quoted field on this line does not close properly {_QUOTE_FIX}"
        except UnicodeDecodeError:
            return _not_encoded(file, str(start), dialect.encoding)
    return None


def _check_parquet(files: list[str], settings: ReaderSettings) -> None:
    found = {}
    with duckdb.connect() as con:
        for file in files:
            try:
                found[file] = [name for (name, *_) in con.execute(
                    "describe select * from read_parquet(?)", [file]).fetchall()]
            except duckdb.Error as error:
                raise SegkitError(f"'{file}' is not a readable Parquet file ({str(error).splitlines()[0]}). "
                                  "Export it again.") from None
    _check_columns([(f"'{file}'", names) for file, names in found.items()], settings, "files",
                   "rename the column in that file")


def _check_columns(sources: list[tuple[str, list[str]]], settings: ReaderSettings, unit: str, fix: str,
                   csv_dialect: CsvDialect | None = None) -> None:
    """Every mapped column in every file (or sheet); a glob's odd one out is named, with what it has instead."""
    for name, column in settings.columns.items():
        lacking = [(where, names) for where, names in sources if column not in names]
        if not lacking:
            continue
        where, names = lacking[0]
        if len(lacking) < len(sources):
            close = difflib.get_close_matches(column, names, n=1, cutoff=0.6)
            instead = f"; it has '{close[0]}' instead" if close else f"; its columns are {', '.join(names)}"
            raise SegkitError(f"{where} has no column '{column}' (mapped to {name}), which the other {unit} of "
                              f"'{settings.path}' have{instead}. Every one of them needs the same header names: "
                              f"{fix}.")
        single = (", or the file's delimiter: it was read as a single column; set the var csv_delimiter to the "
                  "character between its columns") if csv_dialect and len(names) == 1 else ""
        raise SegkitError(f"the input {where} has no column '{column}' (mapped to {name}). Columns found: "
                          f"{', '.join(names)}. Fix the mapping in the var 'columns'{single}.")


def read_input(request: str) -> str:
    """The SQL function segkit_read_input: JSON {check, settings} in, JSON {kind, reader} or {error} out."""
    asked = json.loads(request)
    settings = {name: value for name, value in asked["settings"].items() if value is not None}  # null: the default
    settings["columns"] = {name: column for name, column in (settings.get("columns") or {}).items() if column}
    if isinstance(settings.get("excel_sheets"), str):
        settings["excel_sheets"] = [settings["excel_sheets"]]
    try:
        plan = plan_input(ReaderSettings(**settings), check=bool(asked.get("check")))
    except SegkitError as error:
        return json.dumps({"error": str(error)})
    return json.dumps({"kind": plan.kind, "reader": plan.reader})


class Plugin(BasePlugin):
    """dbt-duckdb plugin hook: registers segkit_read_input on dbt's connection."""

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        conn.create_function("segkit_read_input", read_input, ["VARCHAR"], "VARCHAR", side_effects=True)
