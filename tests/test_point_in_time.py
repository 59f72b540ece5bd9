"""Point-in-time features: transactions dated on or after the analysis date never change a snapshot."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from segkit.warehouse import connect
from tests.conftest import DEMO_DATA, dbt_build

SNAPSHOT_DATE = "2011-01-01"


def later_lines(customer_ids: list[str]) -> list[str]:
    """Lines dated on or after the snapshot: new orders, returns of earlier invoices, a new customer, an outlier."""
    old, other = customer_ids[0], customer_ids[1]
    return [
        f"900001,85123A,LATER ORDER,6,{SNAPSHOT_DATE} 00:00:00,2.55,{old},United Kingdom",   # on the date itself
        f"900002,22423,LATER ORDER,3,2011-03-15 10:00:00,12.75,{old},United Kingdom",
        f"C900003,85123A,LATER RETURN,-40,2011-04-02 11:00:00,2.55,{other},United Kingdom",
        f"900004,84879,LATER ORDER,24,2011-05-20 09:30:00,1.69,{other},France",
        f"900005,84879,NEW CUSTOMER,12,2011-06-01 12:00:00,1.69,99999.0,Germany",
        f"900006,23166,OUTLIER,80995,2011-07-01 09:00:00,1.04,{old},United Kingdom",
        f"900007,85123A,LATER ORDER,6,2011-12-30 00:00:00,2.55,99999.0,Germany",
    ]


def read_snapshot(db: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with connect(db, read_only=True) as con:
        rfm = con.execute("select * from customer_rfm order by customer_id").df()
        scores = con.execute("select * from customer_rfm_scores order by customer_id").df()
    return rfm, scores


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> tuple[Path, Path, list[str]]:
    folder = tmp_path_factory.mktemp("point_in_time")
    original = folder / "transactions.csv.gz"
    original.write_bytes(DEMO_DATA.read_bytes())
    before = dbt_build(folder / "before.duckdb", transactions_path=str(original), analysis_date=SNAPSHOT_DATE)
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
