"""Hostile and broken inputs through the real `dbt build` and `segkit cluster`.

Lines that must be rejected run through the compiled SQL of the real cleaning models (milliseconds each);
a few of them, and every input that must stop a run, go through the real `dbt build` and `segkit` commands.

Each input ends one of two ways: its rows go to named rejection reasons and data_quality_summary balances, or
the run stops with a one-paragraph message naming the file, the column and what to do, and the results already
in the database stay as they were.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from segkit.errors import SegkitError
from tests.conftest import dbt_build, segkit, snapshot

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
EXTRACTION_DATE = "2011-12-31"
UP_TO_SUMMARY = "+data_quality_summary +int_lines_kept +int_lines_rejected"


def line(invoice="1", code="A", quantity="1", when="2010-12-01 08:26:00", price="2.50", customer="100") -> str:
    return f"{invoice},{code},free text,{quantity},{when},{price},{customer},UK"


def csv(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def good_lines(count: int, first_customer: int = 100) -> list[str]:
    """Distinct valid purchases, one customer each."""
    return [line(invoice=str(n), customer=str(first_customer + n), when=f"2010-12-{1 + n % 28:02d} 10:00:00",
                 price=f"{2 + n}.50") for n in range(count)]


@dataclass(frozen=True)
class Rejected:
    """A file whose lines must land under exactly these reasons (rows_kept included)."""

    files: dict[str, str]
    expected: dict[str, int]
    customers: set[str] | None = None       # the distinct customer ids of the kept lines, when the case is about ids
    amounts: list[float] | None = None      # the kept purchase amounts, when the case is about number formats
    pattern: str | None = None              # transactions_path relative to the case folder (default: the one file)
    rows: int | None = None                 # input lines, when a quoted field spans two text lines


REJECTED_CASES = {
    "mixed_date_formats": Rejected(
        {"t.csv": csv(line(invoice="1"), line(invoice="2", when="01/12/2010 08:26"),
                      line(invoice="3", when="2010-12-02"), line(invoice="4", when="12-02-2010 10:00:00"),
                      line(invoice="5", when="2010-12-03 10:00:00"))},
        {"rows_kept": 3, "unparseable": 2}),
    "non_numeric_quantities": Rejected(
        {"t.csv": csv(line(invoice="1"), line(invoice="2", quantity="abc"), line(invoice="3", quantity="3 units"),
                      line(invoice="4", quantity=""), line(invoice="5", quantity="1/2"))},
        {"rows_kept": 1, "unparseable": 4}),
    "prices_with_symbols_and_separators": Rejected(
        {"t.csv": csv(line(invoice="1", price='"£3.00"'), line(invoice="2", price='"1,234.50"'),
                      line(invoice="3", price='"3.00 €"'), line(invoice="4", price='"$ 12"'),
                      line(invoice="5", price='"2,500"'), line(invoice="6", price='"2,50"'),
                      line(invoice="7", price='"£"'))},
        {"rows_kept": 4, "unparseable": 3}, amounts=[3.0, 1234.5, 3.0, 12.0]),
    "nan_and_infinity": Rejected(
        {"t.csv": csv(line(invoice="1"), line(invoice="2", price="NaN"), line(invoice="3", quantity="inf"),
                      line(invoice="4", price="-Infinity"), line(invoice="5", quantity="nan"),
                      line(invoice="6", price="1e400"))},
        {"rows_kept": 1, "unparseable": 5}),
    "negative_and_absurd_values": Rejected(
        {"t.csv": csv(line(invoice="1"), line(invoice="C1", quantity="-1"), line(invoice="2", price="-5"),
                      line(invoice="3", quantity="50000"), line(invoice="4", price="2000000000"),
                      line(invoice="5", quantity="5000", price="99999999999999"),
                      line(invoice="6", price="1e30"), line(invoice="C7", quantity="-1", customer="999"))},
        {"rows_kept": 2, "zero_or_negative_price": 1, "extreme_quantity": 1, "extreme_amount": 1,
         "unparseable": 2, "return_without_purchase": 1}),
    "customer_id_in_mixed_types": Rejected(
        {"t.csv": csv(line(invoice="1", customer="123"), line(invoice="2", customer="123.0"),
                      line(invoice="3", customer="123.00"), line(invoice="4", customer='" 123 "'))},
        {"rows_kept": 4}, customers={"123"}),
    "unicode_and_whitespace_in_ids": Rejected(
        {"t.csv": csv(line(invoice="1", customer="\u00a0456\u00a0"), line(invoice="2", customer="\u200b456"),
                      line(invoice="3", customer="Jos\u00e9"), line(invoice="4", customer="Jose\u0301"),
                      line(invoice="5", customer='"\t789 "'), line(invoice="6", customer="\u00a0\u2003"),
                      line(invoice="7", customer="\ufeff"))},
        {"rows_kept": 5, "missing_customer_id": 2}, customers={"456", "Jos\u00e9", "789"}),
    "duplicate_files_in_a_glob": Rejected(
        {"orders_1.csv": csv(*good_lines(3)), "orders_1_copy.csv": csv(*good_lines(3))},
        {"rows_kept": 3, "duplicate": 3}, pattern="orders_*.csv"),
    "truncated_last_line": Rejected(
        {"t.csv": csv(*good_lines(3)) + "9,A,free te"},
        {"rows_kept": 3, "unparseable": 1}),
    "dates_far_future_or_before_1900": Rejected(
        {"t.csv": csv(line(invoice="1"), line(invoice="2", when="9999-12-31 00:00:00"),
                      line(invoice="3", when="2031-01-01 00:00:00"), line(invoice="4", when="1899-12-31 10:00:00"),
                      line(invoice="5", when="0001-01-01 00:00:00"), line(invoice="6", when="1900-01-01 00:00:00"))},
        {"rows_kept": 2, "future_date": 2, "date_before_1900": 2}),
    "semicolon_delimiter_with_decimal_commas": Rejected(
        {"t.csv": HEADER.replace(",", ";") + "\n"
                  "1;A;free text;1;2010-12-01 08:26:00;2.50;100;UK\n"
                  "2;A;free text;1;2010-12-01 08:26:00;2,50;101;UK\n"},
        {"rows_kept": 1, "unparseable": 1}),
    "line_break_inside_a_quoted_description": Rejected(
        {"t.csv": csv(line(invoice="1").replace("free text", '"two\nlines"'), line(invoice="2", customer="101"))},
        {"rows_kept": 2}, rows=2),
    "no_valid_line_at_all": Rejected(
        {"t.csv": csv(line(invoice="1", price="0"), line(invoice="2", customer=""), line(invoice="3", code="POST"))},
        {"rows_kept": 0, "zero_or_negative_price": 1, "missing_customer_id": 1, "non_product_code": 1}),
}


def write_files(folder: Path, files: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def assert_placed(con: duckdb.DuckDBPyConnection, case: Rejected) -> None:
    """Exact reason counts, a balanced summary, and every line in exactly one of kept and rejected."""
    summary = dict(con.execute("select reason, row_count from main_build.data_quality_summary").fetchall())
    kept = con.execute("select customer_id, line_amount from main_build.int_lines_kept "
                       "where not is_return order by line_id").fetchall()
    placed = con.execute("""select count(*), count(distinct line_id) from (
        select line_id from main_build.int_lines_kept
        union all select line_id from main_build.int_lines_rejected)""").fetchone()
    lines_in_files = case.rows or sum(len(text.strip("\n").split("\n")) - 1 for text in case.files.values())
    assert summary["rows_read"] == lines_in_files
    assert {reason: count for reason, count in summary.items() if count and reason != "rows_read"} == \
        {reason: count for reason, count in case.expected.items() if count}
    assert sum(count for reason, count in summary.items() if reason != "rows_read") == summary["rows_read"]
    assert placed == (lines_in_files, lines_in_files)
    if case.customers is not None:
        assert {customer for customer, _ in kept} == case.customers
    if case.amounts is not None:
        assert [float(amount) for _, amount in kept] == case.amounts


@pytest.mark.parametrize("case", REJECTED_CASES.values(), ids=REJECTED_CASES.keys())
def test_bad_lines_go_to_named_reasons_and_the_summary_balances(compiled_cleaning, case):
    with compiled_cleaning.run(case.files) as con:
        assert_placed(con, case)


# One real build per behaviour the compiled SQL cannot show: the data tests pass on rejected lines read through the
# plugin from a glob of files, the input check lets a truncated last line through, and the quality gate stops a
# file with no usable line.
REAL_BUILD_CASES = ("duplicate_files_in_a_glob", "truncated_last_line", "no_valid_line_at_all")


@pytest.mark.slow
@pytest.mark.parametrize("name", REAL_BUILD_CASES)
def test_bad_lines_through_the_real_dbt_build_and_its_data_tests(tmp_path, name):
    case = REJECTED_CASES[name]
    write_files(tmp_path / "in", case.files)
    path = tmp_path / "in" / (case.pattern or next(iter(case.files)))
    db_path = tmp_path / "h.duckdb"
    if case.expected.get("rows_kept"):
        dbt_build(db_path, select=UP_TO_SUMMARY, transactions_path=str(path),
                  extraction_date=EXTRACTION_DATE)  # raises if a data test, e.g. the balance test, fails
    else:  # the tests pass, then the quality gate refuses to publish an input with no usable line
        with pytest.raises(SegkitError, match="None of the 3 lines read was kept"):
            dbt_build(db_path, select=UP_TO_SUMMARY, transactions_path=str(path), extraction_date=EXTRACTION_DATE)
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert_placed(con, case)


# --- Inputs that must stop the run, leaving what the database holds untouched ---------------------------------

STOPPED_CASES = {
    # name: (files, vars besides transactions_path, words the message must contain)
    "missing_column": ({"t.csv": csv(*good_lines(2)).replace(",Customer ID,", ",Other,")}, {},
                       ["t.csv", "no column 'Customer ID'", "mapped to customer_id",
                        "Columns found: Invoice, StockCode, Description", "Fix the mapping"]),
    "misnamed_column": ({"t.csv": csv(*good_lines(2)).replace("Customer ID", "CustomerID")}, {},
                        ["t.csv", "no column 'Customer ID'", "CustomerID", "Fix the mapping"]),
    "empty_file": ({"t.csv": ""}, {}, ["t.csv", "no data rows", "Point transactions_path"]),
    "header_only": ({"t.csv": HEADER + "\n"}, {}, ["t.csv", "no data rows", "Point transactions_path"]),
    "wrong_delimiter": ({"t.csv": csv(*good_lines(2)).replace(",", ":")}, {},
                        ["t.csv", "no column 'Customer ID'", "delimiter", "single column"]),
    "no_date_parses": ({"t.csv": csv(*(line(invoice=str(n), when="01/12/2010 08:26") for n in range(3)))}, {},
                       ["t.csv", "order dates in column 'InvoiceDate'", "parse with order_date_format"]),
    "missing_file": ({}, {}, ["nothing.csv", "no input file matches", "transactions_path"]),
    # The quote never closes, so where the line ends is unknown: the build names the line, never guesses.
    "truncated_inside_a_quoted_field": ({"t.csv": csv(*good_lines(2)) + '9,A,"free te'}, {},
                                        ["t.csv' line 4", "cut short", "csv_quote"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("files, extra_vars, words", STOPPED_CASES.values(), ids=STOPPED_CASES.keys())
def test_unusable_input_stops_with_a_message_and_leaves_results_untouched(previous_results, tmp_path, files,
                                                                          extra_vars, words):
    db_path, before = previous_results
    write_files(tmp_path / "in", files)
    path = tmp_path / "in" / (next(iter(files)) if files else "nothing.csv")
    result = segkit("build", "--vars", json.dumps({"transactions_path": str(path), **extra_vars}), db_path=db_path)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert "Traceback" not in message and message.startswith("Error: ")
    assert len(message.splitlines()) == 1, message
    for word in words:
        assert word in message, (word, message)
    assert snapshot(db_path) == before


def build_input(tmp_path: Path, lines: list[str]) -> Path:
    write_files(tmp_path / "in", {"t.csv": csv(*lines)})
    return tmp_path / "in" / "t.csv"


def identical_customers(count: int) -> list[str]:
    return [line(invoice=str(n), customer=str(500 + n)) for n in range(count)]


def zero_variance_frequency(count: int) -> list[str]:
    """Customers with one order each (frequency 1 for all) and different recency and spend."""
    return [line(invoice=str(n), customer=str(500 + n), when=f"2011-{1 + n % 12:02d}-{1 + n % 27:02d} 10:00:00",
                 quantity=str(1 + n), price=f"{1 + (n * 7) % 13}.25") for n in range(count)]


CLUSTER_STOPS = {
    "a_single_customer": ([line(invoice=str(n), when=f"2010-12-{n + 1:02d} 10:00:00") for n in range(4)], [],
                          ["only 1 customers", "lower k"]),
    "fewer_customers_than_k": (good_lines(3), ["--k", "5"], ["only 3 customers", "k=5", "lower k"]),
    "all_customers_identical": (identical_customers(6), [], ["only 1 distinct combinations", "recency_days"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("lines, options, words", CLUSTER_STOPS.values(), ids=CLUSTER_STOPS.keys())
def test_too_little_to_cluster_stops_clearly_and_keeps_the_previous_run(previous_results, tmp_path, lines, options,
                                                                        words):
    db_path, before = previous_results
    dbt_build(db_path, transactions_path=str(build_input(tmp_path, lines)),
              extraction_date=EXTRACTION_DATE)
    result = segkit("cluster", "--no-report", *options, db_path=db_path)
    assert result.returncode == 1, result.stdout
    message = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr and message.startswith("Error: ")
    for word in words:
        assert word in message, (word, message)
    after = snapshot(db_path)
    for table in ("customer_segments", "cluster_runs", "segment_assignment_history", "segment_centroids"):
        assert after[table] == before[table], table


@pytest.mark.slow
def test_a_feature_with_zero_variance_still_clusters_on_the_others(previous_results, tmp_path):
    db_path, before = previous_results
    dbt_build(db_path, transactions_path=str(build_input(tmp_path, zero_variance_frequency(24))),
              extraction_date=EXTRACTION_DATE)
    result = segkit("cluster", "--no-report", "--k", "3", "--json", db_path=db_path)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("select count(distinct frequency) from customer_rfm").fetchone()[0] == 1
        segments = con.execute("select count(*), count(distinct segment_id) from customer_segments").fetchone()
        scale = con.execute("""select scale from feature_transform where feature = 'frequency'
                               and run_id = (select run_id from customer_segments limit 1)""").fetchone()[0]
        runs = con.execute("select count(*) from cluster_runs").fetchone()[0]
    assert segments == (24, 3)
    assert scale > 0  # a constant feature is left unscaled, never divided by zero
    assert runs == len(before["cluster_runs"]) + 1
