"""Point-in-time features: transactions dated on or after the analysis date never change a snapshot."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from segkit.warehouse import connect
from tests.conftest import DEMO_DATA, dbt_build

pytestmark = pytest.mark.slow

SNAPSHOT_DATE = "2011-01-01"


def later_lines(customer_ids: list[str]) -> list[str]:
    """Lines dated on or after the snapshot: new orders, returns of earlier invoices, a new customer, an outlier."""
    old, other = customer_ids[0], customer_ids[1]
    return [
        f"900001,85123A,LATER ORDER,6,{SNAPSHOT_DATE} 00:00:00,2.55,{old},United Kingdom",   # on the date itself
        f"900002,22423,LATER ORDER,3,2011-03-15 10:00:00,12.75,{old},United Kingdom",
        f"C900003,85123A,LATER RETURN,-40,2011-04-02 11:00:00,2.55,{other},United Kingdom",
        f"900004,84879,LATER ORDER,24,2011-05-20 09:30:00,1.69,{other},France",
        "900005,84879,NEW CUSTOMER,12,2011-06-01 12:00:00,1.69,99999.0,Germany",
        f"900006,23166,OUTLIER,80995,2011-07-01 09:00:00,1.04,{old},United Kingdom",
        "900007,85123A,LATER ORDER,6,2011-12-30 00:00:00,2.55,99999.0,Germany",
    ]


def read_snapshot(db: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with connect(db, read_only=True) as con:
        rfm = con.execute("select * from customer_rfm order by customer_id").df()
        scores = con.execute("select * from customer_rfm_scores order by customer_id").df()
    return rfm, scores


@pytest.fixture(scope="module")
def snapshots(demo_db_as_of_2011, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """The demo as of SNAPSHOT_DATE (the session's), and the demo with later lines as of the same date."""
    folder = tmp_path_factory.mktemp("point_in_time")
    before = demo_db_as_of_2011
    rfm, _ = read_snapshot(before)
    with gzip.open(DEMO_DATA, "rt") as source:
        text = source.read().rstrip("\n")
    extended = folder / "transactions_extended.csv.gz"
    with gzip.open(extended, "wt") as target:
        target.write(text + "\n" + "\n".join(later_lines([f"{c}.0" for c in rfm["customer_id"]])) + "\n")
    after = dbt_build(folder / "after.duckdb", transactions_path=str(extended), analysis_date=SNAPSHOT_DATE)
    return before, after, list(rfm["customer_id"][:2])


def test_later_transactions_do_not_change_an_earlier_snapshot(snapshots):
    before, after, _ = snapshots
    rfm_before, scores_before = read_snapshot(before)
    rfm_after, scores_after = read_snapshot(after)
    assert len(rfm_before) > 1_000
    pd.testing.assert_frame_equal(rfm_before, rfm_after)
    pd.testing.assert_frame_equal(scores_before, scores_after)
    assert (rfm_before["last_order_date"] < pd.Timestamp(SNAPSHOT_DATE)).all()
    assert (rfm_before["analysis_date"] == pd.Timestamp(SNAPSHOT_DATE)).all()


def test_the_later_lines_were_read_and_set_aside(snapshots):
    before, after, _ = snapshots
    with connect(before, read_only=True) as con_before, connect(after, read_only=True) as con_after:
        query = "select row_count from data_quality_summary where reason = ?"
        for reason, extra in (("rows_read", 7), ("after_analysis_date", 6), ("extreme_quantity", 1)):
            assert con_after.execute(query, [reason]).fetchall()[0][0] == \
                con_before.execute(query, [reason]).fetchall()[0][0] + extra, reason


def test_whole_customer_counts_agree_with_the_lines_at_a_set_date(snapshots):
    """int_lines_aggregated_to_customers applies the analysis date to whole customers; the line views apply it line
    by line."""
    for db in snapshots[:2]:
        with connect(db, read_only=True) as con:
            summary = dict(con.execute("select reason, row_count from data_quality_summary "
                                       "where row_count > 0 and reason <> 'rows_read'").fetchall())
            classified = dict(con.execute("select coalesce(rejection_reason, 'rows_kept'), count(*) "
                                          "from main_build.int_lines_classified group by 1").fetchall())
            differing = con.execute("""
                select count(*) from customer_rfm full join (
                    select customer_id,
                           count(distinct case when not is_return then order_key end) as frequency,
                           sum(case when not is_return then line_amount end) as monetary_total,
                           coalesce(sum(case when is_return then -line_amount end), 0) as returns_total,
                           count(distinct case when not is_return then product_id end) as distinct_products,
                           max(case when not is_return then order_date end) as last_order_date
                    from main_build.int_lines_kept group by customer_id) as lines using (customer_id)
                where customer_rfm.frequency is distinct from lines.frequency
                   or customer_rfm.monetary_total is distinct from lines.monetary_total
                   or customer_rfm.returns_total is distinct from lines.returns_total
                   or customer_rfm.distinct_products is distinct from lines.distinct_products
                   or customer_rfm.last_order_date is distinct from lines.last_order_date""").fetchone()[0]
        assert summary == classified, db
        assert summary["after_analysis_date"] > 0
        assert differing == 0, db
