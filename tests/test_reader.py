"""The reader: kinds of file, CSV dialects, encodings, workbooks and number formats (segkit/reader.py,
segkit/excel.py, the macros transactions_input and number_format).

Every case is a real file in a temporary folder. Most go through segkit's reader and real DuckDB directly, or
through the compiled SQL of the real cleaning models; a few go through the real `dbt build` and `segkit build`,
where what matters is the check at the start of a build. Each ends one of two ways: every line read and placed
(data_quality_summary balances), or one message naming the file, the line or column, and the var to set, with
exit code 1 and the tables already in the database unchanged.
"""

from __future__ import annotations

import datetime
import gzip
import json
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pytest

from segkit.config import load_settings
from segkit.dbt_runner import _raise_for_failure, run_dbt
from segkit.errors import SegkitError
from segkit.reader import ReaderSettings, plan_input
from tests.conftest import DBT_TARGET, ROOT, CompiledCleaning, dbt_build, segkit, snapshot
from tests.test_hostile_inputs import (EXTRACTION_DATE, HEADER, UP_TO_SUMMARY, Rejected, assert_placed, csv,
                                       good_lines, line, write_files)

COLUMNS = {"customer_id": "Customer ID", "order_id": "Invoice", "order_date": "InvoiceDate", "quantity": "Quantity",
           "unit_price": "Price", "product_id": "StockCode"}
# The reproduction: one stray quote on the second line, quoted fields holding commas around it.
STRAY_QUOTE = (f"{HEADER}\n1,A,\"BOX, LARGE\",1,2011-03-01 10:00:00,2.50,100,UK\n"
               "2,A,\"12 RULER,1,2011-03-02 10:00:00,2.50,101,UK\n"
               "3,A,\"MUG, RED\",1,2011-03-03 10:00:00,2.50,102,UK\n")


def plan(path: Path, check: bool = True, **settings):
    return plan_input(ReaderSettings(path=str(path), columns=COLUMNS, database=str(path.parent / "r.duckdb"),
                                     **settings), check=check)


def rows(path: Path, **settings) -> list[dict]:
    """Every line as segkit's reader reads it, by column name."""
    with duckdb.connect() as con:
        result = con.execute(f"select * from {plan(path, **settings).reader}")
        names = [column[0] for column in result.description]
        return [dict(zip(names, row)) for row in result.fetchall()]


def stop_message(path: Path, **settings) -> str:
    with pytest.raises(SegkitError) as stopped:
        plan(path, **settings)
    message = str(stopped.value)
    assert "\n" not in message
    return message


# --- Quotes, delimiters and lines that do not fit the header ----------------------------------------------------

def test_a_stray_quote_stops_with_its_file_and_line_instead_of_losing_lines(tmp_path):
    (tmp_path / "q.csv").write_text(STRAY_QUOTE)
    message = stop_message(tmp_path / "q.csv")
    assert "q.csv' line 3" in message and "quote" in message and "csv_quote" in message


def test_a_stray_quote_deep_in_a_large_file_is_named_by_its_line(tmp_path):
    lines = [line(invoice=str(n), customer=str(100 + n)).replace("free text", '"BOX, LARGE"') for n in range(30000)]
    lines.insert(25000, '9,A,"12 RULER,1,2011-03-02 10:00:00,2.50,101,UK')  # file line 25002, after the header
    (tmp_path / "big.csv").write_text(csv(*lines))
    message = stop_message(tmp_path / "big.csv")
    assert "big.csv' line 25002" in message and "never closes" in message and "csv_quote" in message


def test_quoted_commas_inch_marks_and_doubled_quotes_are_read_as_written(tmp_path):
    text = csv(line(invoice="1").replace("free text", '"BOX, LARGE"'),
               line(invoice="2").replace("free text", '12" RULER'),
               line(invoice="3").replace("free text", '"MUG ""RED"", LARGE"'))
    (tmp_path / "t.csv").write_text(text)
    assert [row["Description"] for row in rows(tmp_path / "t.csv")] == ["BOX, LARGE", '12" RULER', 'MUG "RED", LARGE']


def test_a_line_with_more_fields_than_the_header_is_named(tmp_path):
    (tmp_path / "t.csv").write_text(csv(*good_lines(3), line(invoice="9").replace("free text", "BOX, LARGE")))
    message = stop_message(tmp_path / "t.csv")
    assert "t.csv' line 5 has 9 fields where the header has 8" in message and "csv_delimiter" in message


def test_lines_read_differently_from_the_header_are_reported(tmp_path):
    # With quotes switched off, every quoted comma splits a line: the header no longer names every field.
    (tmp_path / "t.csv").write_text(csv(*(line(invoice=str(n)).replace("free text", '"BOX, LARGE"')
                                          for n in range(5))))
    message = stop_message(tmp_path / "t.csv", quote="")
    assert "t.csv' line 2 has 9 fields where the header has 8" in message


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_the_delimiter_comes_from_the_header_line(tmp_path, delimiter):
    text = csv(*good_lines(3)).replace(",", delimiter)
    (tmp_path / "t.csv").write_text(text)
    assert [row["Customer ID"] for row in rows(tmp_path / "t.csv")] == ["100", "101", "102"]


def test_an_explicit_dialect_reads_a_file_no_guess_would(tmp_path):
    # Semicolons, with commas inside the fields and quotes written with a backslash.
    text = "\n".join([HEADER.replace(",", ";"),
                      "1;A;'BOX; \\'LARGE\\'';1;2011-03-01 10:00:00;2.50;100;UK",
                      "2;A;MUG, RED;1;2011-03-02 10:00:00;2.50;101;UK"]) + "\n"
    (tmp_path / "t.csv").write_text(text)
    read = rows(tmp_path / "t.csv", delimiter=";", quote="'", escape="\\")
    assert [row["Description"] for row in read] == ["BOX; 'LARGE'", "MUG, RED"]


def test_no_line_is_skipped_as_a_comment_or_a_preamble(compiled_cleaning):
    # DuckDB's own detection drops a line starting with '#' as a comment, silently.
    case = Rejected({"t.csv": csv(line(invoice="#1"), line(invoice="2", customer="101"),
                                  line(invoice="3", quantity="", customer="102"))},
                    {"rows_kept": 2, "unparseable": 1})
    with compiled_cleaning.run(case.files) as con:
        assert_placed(con, case)


def test_a_10_mb_field_in_a_column_segkit_does_not_use_is_read(compiled_cleaning, tmp_path):
    long = csv(*good_lines(2), line(invoice="9", customer="900").replace("free text", "x" * 10_000_000))
    with compiled_cleaning.run({"t.csv": long}) as con:
        assert_placed(con, Rejected({"t.csv": long}, {"rows_kept": 3}))
    with gzip.open(tmp_path / "t.csv.gz", "wt") as handle:  # compressed files read through a bounded buffer
        handle.write(long)
    assert len(rows(tmp_path / "t.csv.gz")) == 3


# --- Encodings ---------------------------------------------------------------------------------------------------

LATIN = csv(line(invoice="1", customer="Jos\u00e9").replace("free text", "caf\u00e9 cr\u00e8me"),
            line(invoice="2", customer="101"))


def test_latin_1_reads_with_the_encoding_var_and_stops_clearly_without(tmp_path):
    (tmp_path / "t.csv").write_bytes(LATIN.encode("latin-1"))
    assert [row["Customer ID"] for row in rows(tmp_path / "t.csv", encoding="latin-1")] == ["Jos\u00e9", "101"]
    message = stop_message(tmp_path / "t.csv")
    assert "t.csv' line 2 is not valid UTF-8" in message and "encoding" in message and "latin-1" in message


@pytest.mark.parametrize("encode", [lambda text: text.encode("utf-16"),            # with its byte-order mark
                                    lambda text: text.encode("utf-16-le"),         # without
                                    lambda text: b"\xef\xbb\xbf" + text.encode()],  # UTF-8 with a mark
                         ids=["utf-16", "utf-16-le-no-mark", "utf-8-mark"])
def test_utf_16_and_byte_order_marks_are_recognised_by_content(tmp_path, encode):
    (tmp_path / "t.csv").write_bytes(encode(LATIN))
    assert [row["Customer ID"] for row in rows(tmp_path / "t.csv")] == ["Jos\u00e9", "101"]


def test_utf_16_big_endian_stops_with_a_message(tmp_path):
    (tmp_path / "t.csv").write_bytes(b"\xfe\xff" + LATIN.encode("utf-16-be"))
    assert "big-endian" in stop_message(tmp_path / "t.csv")


def test_bad_bytes_in_a_column_segkit_does_not_use_name_the_line_and_the_var(tmp_path):
    (tmp_path / "t.csv").write_bytes(csv(*good_lines(3), line(invoice="9")).encode().replace(
        b"9,A,free text", b"9,A,free \xff text"))
    message = stop_message(tmp_path / "t.csv")
    assert "t.csv' line 5 is not valid UTF-8" in message and "encoding" in message


# --- Kinds of file -----------------------------------------------------------------------------------------------

def parquet_of(text: str, path: Path) -> None:
    source = path.with_suffix(".source.csv")
    source.write_text(text)
    with duckdb.connect() as con:
        con.execute(f"copy (select * from read_csv('{source}', all_varchar = true)) to '{path}' (format parquet)")
    source.unlink()


@pytest.mark.parametrize("name, write, kind", [
    ("orders.CSV", lambda path: path.write_text(csv(*good_lines(3))), "csv"),
    ("orders.csv.GZ", lambda path: path.write_bytes(gzip.compress(csv(*good_lines(3)).encode())), "csv"),
    ("orders.csv", lambda path: path.write_bytes(gzip.compress(csv(*good_lines(3)).encode())), "csv"),
    ("orders.Parquet", lambda path: parquet_of(csv(*good_lines(3)), path), "parquet"),
    ("orders.csv", lambda path: parquet_of(csv(*good_lines(3)), path), "parquet"),  # Parquet named .csv
    ("orders.dat", lambda path: workbook(path, {"Sheet1": [COLUMN_NAMES, *EXCEL_ROWS[:3]]}), "workbook"),
], ids=["upper-case-csv", "upper-case-gz", "gzip-named-csv", "mixed-case-parquet", "parquet-named-csv",
        "workbook-named-dat"])
def test_the_kind_of_a_file_comes_from_its_content(tmp_path, name, write, kind):
    write(tmp_path / name)
    assert plan(tmp_path / name).kind == kind
    assert [str(row["Customer ID"]) for row in rows(tmp_path / name)][:1] in (["100"], ["13085.0"])


@pytest.mark.parametrize("name, content, words", [
    ("orders.csv", bytes(range(256)) * 4, ["cannot tell what kind of file", "orders.csv"]),
    ("orders.zip", None, ["zip archive, not a workbook", "Unzip"]),
    ("orders.xlsx", b"PK\x03\x04 cut short", ["orders.xlsx' is a damaged zip archive or workbook"]),
])
def test_a_file_of_unknown_kind_stops_with_a_message(tmp_path, name, content, words):
    if content is None:
        shutil.make_archive(str(tmp_path / "orders"), "zip", root_dir=ROOT / "data" / "demo", base_dir="README.md")
    else:
        (tmp_path / name).write_bytes(content)
    message = stop_message(tmp_path / name)
    for word in words:
        assert word in message


def test_a_glob_of_different_kinds_stops(tmp_path):
    (tmp_path / "a.csv").write_text(csv(*good_lines(2)))
    parquet_of(csv(*good_lines(2)), tmp_path / "b.parquet")
    message = stop_message(tmp_path / "*")
    assert "different kinds" in message and "a.csv' is CSV" in message and "b.parquet' is Parquet" in message


# --- Headers across the files of a glob --------------------------------------------------------------------------

def test_a_file_of_a_glob_with_another_header_name_is_named(tmp_path):
    for month in (1, 2, 3):
        text = csv(*good_lines(2, first_customer=100 * month))
        (tmp_path / f"orders_{month:02d}.csv").write_text(text.replace("Customer ID", "CustomerID") if month == 2
                                                          else text)
    message = stop_message(tmp_path / "orders_*.csv")
    assert "orders_02.csv' has no column 'Customer ID' (mapped to customer_id)" in message
    assert "it has 'CustomerID' instead" in message


def test_a_column_segkit_does_not_use_may_be_missing_from_one_file(tmp_path):
    (tmp_path / "orders_1.csv").write_text(csv(*good_lines(2)))
    (tmp_path / "orders_2.csv").write_text("Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID\n"
                                           "7,A,1,2010-12-01 10:00:00,2.50,200\n")
    read = rows(tmp_path / "orders_*.csv")
    assert [(row["Customer ID"], row["Country"]) for row in read] == [("100", "UK"), ("101", "UK"), ("200", None)]


def test_a_parquet_file_of_a_glob_with_another_header_name_is_named(tmp_path):
    parquet_of(csv(*good_lines(2)), tmp_path / "a.parquet")
    parquet_of(csv(*good_lines(2)).replace("Customer ID", "Client"), tmp_path / "b.parquet")
    message = stop_message(tmp_path / "*.parquet")
    assert "b.parquet' has no column 'Customer ID'" in message and "other files" in message


# --- Workbooks ---------------------------------------------------------------------------------------------------

COLUMN_NAMES = HEADER.split(",")
# Cells as the UCI Online Retail II workbook types them: numbers, Excel date-times, text where a code has letters.
EXCEL_ROWS = [
    [489434, "85048", "15CM CHRISTMAS GLASS BALL", 12, datetime.datetime(2009, 12, 1, 7, 45), 6.95, 13085.0, "UK"],
    [489434, 79323, "PINK CHERRY LIGHTS", 12, datetime.datetime(2009, 12, 1, 7, 45), 6.75, 13085.0, "UK"],
    [489435, 22350, "CAT BOWL", 12, datetime.datetime(2009, 12, 1, 7, 46), 2.1, None, "UK"],
    ["536365", "85123A", "WHITE HANGING HEART", 6, datetime.datetime(2010, 12, 1, 8, 26), 2.55, 17850, "UK"],
    [536366, 22633, "HAND WARMER", 6, "2010-12-02 10:00:00", 1.85, 17850.0, "UK"],  # a date typed as text
]


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, cells in sheets.items():
        sheet = book.create_sheet(name)
        for row in cells:
            sheet.append(row)
    book.save(path)
    return path


def retail_workbook(path: Path) -> Path:
    """Two sheets, as the real distribution has: the same header, a blank row, a header-only column at the end."""
    return workbook(path, {"Year 2009-2010": [COLUMN_NAMES, *EXCEL_ROWS[:3]],
                           "Year 2010-2011": [COLUMN_NAMES, EXCEL_ROWS[3], [], EXCEL_ROWS[4]]})


def test_every_sheet_of_a_workbook_is_read_with_its_types(tmp_path):
    read = rows(retail_workbook(tmp_path / "online_retail_II.xlsx"))
    assert [(row["Invoice"], row["StockCode"], row["Customer ID"]) for row in read] == [
        ("489434", "85048", 13085.0), ("489434", "79323", 13085.0), ("489435", "22350", None),
        ("536365", "85123A", 17850.0), ("536366", "22633", 17850.0)]
    assert [row["InvoiceDate"] for row in read] == [
        "2009-12-01 07:45:00", "2009-12-01 07:45:00", "2009-12-01 07:46:00", "2010-12-01 08:26:00",
        "2010-12-02 10:00:00"]  # a text cell makes the column text, with every date-time in ISO form
    assert [row["Price"] for row in read] == [6.95, 6.75, 2.1, 2.55, 1.85]


def test_the_sheets_named_in_excel_sheets_are_the_ones_read(tmp_path):
    path = retail_workbook(tmp_path / "r.xlsx")
    assert [row["Invoice"] for row in rows(path, excel_sheets=["Year 2010-2011"])] == ["536365", "536366"]
    message = stop_message(path, excel_sheets=["Year 2011"])
    assert "has no sheet 'Year 2011'" in message and "'Year 2009-2010', 'Year 2010-2011'" in message


def test_a_sheet_without_a_mapped_column_is_named(tmp_path):
    path = workbook(tmp_path / "r.xlsx", {"Orders": [COLUMN_NAMES, EXCEL_ROWS[0]],
                                          "Notes": [["Note", "Customer"], ["checked", "yes"]]})
    message = stop_message(path)
    assert "sheet 'Notes' of" in message and "no column 'Customer ID'" in message and "excel_sheets" in message


def test_a_changed_workbook_is_read_again(tmp_path):
    path = workbook(tmp_path / "r.xlsx", {"Orders": [COLUMN_NAMES, EXCEL_ROWS[0]]})
    assert len(rows(path)) == 1
    workbook(path, {"Orders": [COLUMN_NAMES, *EXCEL_ROWS]})
    assert len(rows(path)) == 5


@pytest.mark.slow
def test_a_workbook_builds_with_dbt_and_its_line_ids_name_sheet_and_row(tmp_path):
    path = retail_workbook(tmp_path / "online_retail_II.xlsx")
    db_path = dbt_build(tmp_path / "x.duckdb", select=UP_TO_SUMMARY, transactions_path=str(path),
                        extraction_date=EXTRACTION_DATE)
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert_placed(con, Rejected({}, {"rows_kept": 4, "missing_customer_id": 1}, rows=5))
        kept = con.execute("""select s.line_id, s.customer_id, s.order_id, s.product_id, s.order_date,
                                     s.line_amount
                              from main_build.stg_raw__lines as s join main_build.int_lines_kept using (line_id)
                              order by s.line_id""").fetchall()
    day = datetime.date
    assert [(line_id // 10**12, line_id % 10**12) for line_id, *_ in kept] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert [tuple(row[1:4]) for row in kept] == [("13085", "489434", "85048"), ("13085", "489434", "79323"),
                                                 ("17850", "536365", "85123A"), ("17850", "536366", "22633")]
    assert [row[4] for row in kept] == [day(2009, 12, 1), day(2009, 12, 1), day(2010, 12, 1), day(2010, 12, 2)]
    assert [float(row[5]) for row in kept] == [83.4, 81.0, 15.3, 11.1]


# --- Number formats (vars decimal_separator and thousands_separator) ----------------------------------------------

@pytest.fixture(scope="module")
def compiled_with(compiled_cleaning, tmp_path_factory):
    """The compiled cleaning models with staging compiled for a number format (once per format), reading the
    folder of compiled_cleaning: only staging depends on the format."""
    compiled: dict[tuple, CompiledCleaning] = {}

    def compile(decimal: str, thousands: str | None) -> CompiledCleaning:
        if (decimal, thousands) not in compiled:
            empty = tmp_path_factory.mktemp("numbers")  # compiled before any file is there, as compiled_cleaning
            run_dbt(load_settings(project_dir=ROOT, db_path=empty / "numbers.duckdb"), args=("compile", "--select", "stg_raw__lines"),
                    dbt_vars={"transactions_path": str(empty / "*.csv"), "extraction_date": EXTRACTION_DATE,
                              "decimal_separator": decimal, "thousands_separator": thousands})
            stg = DBT_TARGET / "compiled" / "segkit" / "dbt_project" / "models" / "staging" / "stg_raw__lines.sql"
            sql = stg.read_text().replace(str(empty), str(compiled_cleaning.folder))
            compiled[(decimal, thousands)] = CompiledCleaning(compiled_cleaning.folder,
                                                              {**compiled_cleaning.sql, "stg_raw__lines": sql})
        return compiled[(decimal, thousands)]
    return compile


def priced(*prices: str) -> str:
    """A semicolon file, as exports with decimal commas are, with one purchase at each price."""
    lines = [f"{n};A;free text;1;2010-12-01 08:26:00;{price};{100 + n};UK" for n, price in enumerate(prices)]
    return "\n".join([HEADER.replace(",", ";"), *lines]) + "\n"


# Expected from the README's rule: the configured decimal mark; thousands grouped only by the configured separator
# (in groups of three); anything else, including the other mark, is unparseable.
NUMBER_FORMATS = {
    "decimal_comma_and_point_groups": ((",", "."), {"147,61": 147.61, "1.234,50": 1234.5, "2.500": 2500.0,
                                                    "£3,00": 3.0, "2,5 €": 2.5, "-7,25": None, "1,234.50": "x",
                                                    "2.50": "x", "12,34,5": "x", "12.34": "x"}),
    "decimal_point_and_comma_groups": ((".", ","), {"2,500": 2500.0, "1,234.50": 1234.5, "3.00 €": 3.0,
                                                    "$ 12": 12.0, "2,50": "x", "1.234,50": "x", "12,3456": "x"}),
    "decimal_comma_and_space_groups": ((",", " "), {"1 234,50": 1234.5, "1\u00a0234,50": 1234.5,
                                                    "1\u202f234,50": 1234.5, "12,5": 12.5, "1.234,50": "x",
                                                    "1 23,4": "x"}),
}


@pytest.mark.parametrize("separators, prices", NUMBER_FORMATS.values(), ids=NUMBER_FORMATS.keys())
def test_numbers_read_in_the_configured_format(compiled_with, separators, prices):
    kept = [amount for amount in prices.values() if isinstance(amount, float)]
    case = Rejected({"t.csv": priced(*prices)},
                    {"rows_kept": len(kept), "unparseable": list(prices.values()).count("x"),
                     "zero_or_negative_price": list(prices.values()).count(None)}, amounts=kept)
    with compiled_with(*separators).run(case.files) as con:
        assert_placed(con, case)


# --- Through the real commands -----------------------------------------------------------------------------------

DECIMAL_COMMAS = "\n".join([HEADER.replace(",", ";"),
                            "1;A;free text;2;2010-12-01 08:26:00;147,61;100;UK",
                            "2;A;free text;1;2010-12-02 08:26:00;1.234,50;101;UK",
                            "3;A;free text;1;2010-12-03 08:26:00;2.500;102;UK"]) + "\n"


@pytest.mark.slow
def test_a_decimal_comma_file_builds_with_decimal_separator(tmp_path):
    write_files(tmp_path / "in", {"t.csv": DECIMAL_COMMAS})
    db_path = dbt_build(tmp_path / "d.duckdb", select=UP_TO_SUMMARY, transactions_path=str(tmp_path / "in" / "t.csv"),
                        extraction_date=EXTRACTION_DATE, decimal_separator=",")
    with duckdb.connect(str(db_path), read_only=True) as con:
        # Without a thousands separator, '2.500' could be 2.5 or 2500: unparseable, as '2,500' is by default.
        assert_placed(con, Rejected({"t.csv": DECIMAL_COMMAS}, {"rows_kept": 2, "unparseable": 1},
                                    amounts=[295.22, 1234.5]))


STOPPED = {
    # name: (files, transactions_path relative to the folder, vars, words the message must contain)
    "stray_quote": ({"q.csv": STRAY_QUOTE}, "q.csv", {}, ["q.csv' line 3", "csv_quote"]),
    "header_differs_in_a_glob": ({"orders_01.csv": csv(*good_lines(2)),
                                  "orders_02.csv": csv(*good_lines(2, 200)).replace("Customer ID", "CustomerID")},
                                 "orders_*.csv", {}, ["orders_02.csv' has no column 'Customer ID'",
                                                      "'CustomerID' instead"]),
    "decimal_commas_without_the_var": ({"t.csv": "\n".join(DECIMAL_COMMAS.splitlines()[:2]) + "\n"}, "t.csv", {},
                                       ["column 'Price'", "'147,61'", "decimal_separator: ','"]),
    "latin_1_without_the_var": ({"t.csv": LATIN}, "t.csv", {}, ["t.csv' line 2 is not valid UTF-8", "latin-1"]),
    "unknown_kind": ({"t.csv": None}, "t.csv", {}, ["cannot tell what kind of file"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("files, pattern, extra_vars, words", STOPPED.values(), ids=STOPPED.keys())
def test_unreadable_input_stops_the_build_and_leaves_results_untouched(previous_results, tmp_path, files, pattern,
                                                                       extra_vars, words):
    db_path, before = previous_results
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in files.items():
        data = bytes(range(256)) * 4 if text is None else text.encode("latin-1" if text is LATIN else "utf-8")
        (folder / name).write_bytes(data)
    result = segkit("build", "--vars", json.dumps({"transactions_path": str(folder / pattern), **extra_vars}),
                    db_path=db_path)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "Traceback" not in message and message.startswith("Error: ") and len(message.splitlines()) == 1, message
    for word in words:
        assert word in message, (word, message)
    assert snapshot(db_path) == before


def test_a_csv_error_dbt_reports_becomes_one_message_with_file_line_and_var(tmp_path):
    """A line DuckDB fails on while staging builds (the file changed after the check): dbt's output, with DuckDB's
    own error text, becomes one message."""
    lines = good_lines(30000)
    lines.insert(25000, '9,A,"12 RULER,1,2011-03-02 10:00:00,2.50,101,UK')
    (tmp_path / "t.csv").write_text(csv(*lines))
    with duckdb.connect() as con, pytest.raises(duckdb.Error) as error:
        con.execute(f"select count(*) from read_csv('{tmp_path / 't.csv'}', delim = ',', quote = '\"')")
    output = f"07:01:02  Runtime Error in model stg_raw__lines (models/staging/stg_raw__lines.sql)\n{error.value}\n"
    with pytest.raises(SegkitError) as stopped:
        _raise_for_failure(output, tmp_path / "x.duckdb", ["dbt", "build"])
    assert str(stopped.value).startswith(f"'{tmp_path / 't.csv'}' line 25002: a quoted field")
    assert "csv_quote" in str(stopped.value) and "\n" not in str(stopped.value)
