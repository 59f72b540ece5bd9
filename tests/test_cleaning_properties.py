"""Property-based: generated batches of malformed lines through the compiled SQL of the real cleaning models.

`dbt compile` runs once; each example then executes the compiled models, in dependency order, against a fresh
in-memory database, so hypothesis can try many batches in seconds. Every line must end in exactly one of
int_transactions_cleaned and int_transactions_rejected, and data_quality_summary must balance.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segkit.dbt_runner import run_dbt
from tests.conftest import ROOT

HEADER = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]
CATALOG = "props"
MODELS = ["stg_transactions", "int_transaction_lines_checked", "int_analysis_date",
          "int_transaction_lines_classified", "int_transactions_cleaned", "int_transactions_rejected",
          "data_quality_summary"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The input path the SQL reads, and the compiled SQL of each cleaning model."""
    folder = tmp_path_factory.mktemp("props")
    input_path = folder / "lines.csv"
    run_dbt(ROOT, folder / f"{CATALOG}.duckdb", args=("compile", "--select", " ".join(MODELS)),
            dbt_vars={"transactions_path": str(input_path), "extraction_date": "2011-12-31"})
    compiled_dir = ROOT / "target" / "compiled" / "segkit" / "dbt_project" / "models"
    paths = {path.stem: path for path in compiled_dir.rglob("*.sql") if not path.parent.name.endswith(".yml")}
    return input_path, {model: paths[model].read_text() for model in MODELS}


def run_models(input_path: Path, sql: dict[str, str], rows: list[list[str]]) -> duckdb.DuckDBPyConnection:
    with open(input_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL)
        writer.writerow(HEADER)
        writer.writerows(rows)
    con = duckdb.connect()
    con.execute(f"attach ':memory:' as {CATALOG}")
    con.execute(f"use {CATALOG}")
    con.execute(f"create table rejection_reasons as select * from read_csv('{ROOT}/dbt_project/seeds/rejection_reasons.csv')")
    for model in MODELS:
        kind = "view" if model.startswith("stg_") else "table"
        con.execute(f"create {kind} {model} as {sql[model]}")
    return con


numbers = st.one_of(
    st.sampled_from(["1", "-1", "0", "2.5", "NaN", "inf", "-Infinity", "1e400", "£3.00", "1,234.50", "2,500", "abc",
                     "", " ", "99999999999999", "10000", "-0", "1_000", "0x10", "3 €"]),
    st.decimals(min_value=-1e6, max_value=1e6, places=2, allow_nan=False).map(str),
    st.text(max_size=6),
)
dates = st.one_of(
    st.sampled_from(["2010-12-01 08:26:00", "2011-06-30 23:59:59", "01/12/2010 08:26", "2010-12-01", "",
                     "9999-12-31 00:00:00", "1899-12-31 10:00:00", "0001-01-01 00:00:00", "2010-13-01 00:00:00",
                     "2012-02-30 10:00:00", "not a date"]),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")),
)
ids = st.one_of(st.sampled_from(["123", "123.0", " 123 ", "\u00a0123", "Jos\u00e9", "Jose\u0301", "", "\u200b",
                                 "C123", "null"]),
                st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8))
codes = st.one_of(st.sampled_from(["A", "POST", "post", "M", " D ", "", "B';X"]),
                  st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=5))
invoices = st.one_of(st.sampled_from(["1", "C1", "c1", "", "C"]), st.text(max_size=5))
free_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)
lines = st.lists(st.tuples(invoices, codes, free_text, numbers, dates, numbers, ids, free_text).map(list),
                 min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(lines, min_size=1, max_size=2).map(lambda parts: [row for part in parts for row in part]))
def test_every_generated_line_is_kept_or_rejected_exactly_once(compiled, batch):
    input_path, sql = compiled
    con = run_models(input_path, sql, batch)
    try:
        read = con.execute("select count(*) from stg_transactions").fetchone()[0]
        placed = con.execute("""select count(*), count(distinct transaction_line_id), min(transaction_line_id),
                max(transaction_line_id) from (
            select transaction_line_id from int_transactions_cleaned
            union all select transaction_line_id from int_transactions_rejected)""").fetchone()
        summary = dict(con.execute("select reason, row_count from data_quality_summary").fetchall())
        unknown = con.execute("""select count(*) from int_transactions_rejected
            where rejection_reason not in (select reason from rejection_reasons)""").fetchone()[0]
    finally:
        con.close()
    assert read == len(batch)
    assert placed == (read, read, 1, read)
    assert summary["rows_read"] == read == sum(n for reason, n in summary.items() if reason != "rows_read")
    assert unknown == 0
