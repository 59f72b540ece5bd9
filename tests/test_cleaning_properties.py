"""Property-based: generated batches of malformed lines through the compiled SQL of the real cleaning models.

`dbt compile` runs once (the `compiled_cleaning` fixture); each example then executes the compiled models, in
dependency order, in a fresh in-memory database, so hypothesis can try many batches in seconds. Every line must end in exactly one of
int_lines_kept and int_lines_rejected, and data_quality_summary must balance and agree with
the line-by-line classification.
"""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEADER = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]


def as_csv(rows: list[list[str]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return text.getvalue()


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
def test_every_generated_line_is_kept_or_rejected_exactly_once(compiled_cleaning, batch):
    con = compiled_cleaning.run({"lines.csv": as_csv(batch)})
    try:
        read = con.execute("select count(*) from stg_raw__lines").fetchone()[0]
        placed = con.execute("""select count(*), count(distinct line_id), min(line_id),
                max(line_id) from (
            select line_id from int_lines_kept
            union all select line_id from int_lines_rejected)""").fetchone()
        summary = dict(con.execute("select reason, row_count from data_quality_summary").fetchall())
        classified = dict(con.execute("""select coalesce(rejection_reason, 'rows_kept'), count(*)
            from int_lines_classified group by 1""").fetchall())
        unknown = con.execute("""select count(*) from int_lines_rejected
            where rejection_reason not in (select reason from rejection_reasons)""").fetchone()[0]
    finally:
        con.close()
    assert read == len(batch)
    assert placed == (read, read, 1, read)
    assert summary["rows_read"] == read == sum(n for reason, n in summary.items() if reason != "rows_read")
    assert unknown == 0
    # The summary counts whole customers (int_lines_aggregated_to_customers), the views classify line by line: they
    # agree.
    assert {reason: n for reason, n in summary.items() if n and reason != "rows_read"} == classified
