"""Privacy and security: pseudonymised customer ids, minimised staging, tiny segments, hostile configuration."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from segkit.errors import SegkitError
from segkit.pseudonyms import KEY_ENV_VAR, pseudonym
from tests.conftest import ROOT, dbt_build, segkit, snapshot

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
KEY = "s3cret-Key-only-in-the-environment-7f1c"
RAW_IDS = [f"CUSTOMER-{n:04d}-RAW" for n in range(1, 31)]


def orders_file(folder: Path) -> Path:
    """Thirty customers with distinctive ids, one to three orders each; names in free text that must not travel."""
    lines = [HEADER]
    for n, customer in enumerate(RAW_IDS, start=1):
        for order in range(1 + n % 3):
            lines.append(f"{n}{order},P{n % 7},Gift for Ms {customer} at 1 High Street,{1 + n % 4},"
                         f"2011-{1 + (n + order) % 11:02d}-{1 + n % 27:02d} 10:00:00,{n % 9 + 1.5},{customer},UK")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "orders.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def varchar_values(db_path: Path) -> list[str]:
    """Every text value stored in every table of the database."""
    values = []
    with duckdb.connect(str(db_path), read_only=True) as con:
        columns = con.execute("""select c.table_schema, c.table_name, c.column_name
            from information_schema.columns as c join information_schema.tables as t using (table_schema, table_name)
            where t.table_type = 'BASE TABLE' and c.data_type = 'VARCHAR'""").fetchall()
        for schema, table, column in columns:
            rows = con.execute(f'select distinct "{column}" from "{schema}"."{table}"').fetchall()
            values += [v for (v,) in rows if v]
    return values


def pseudonymised_build(tmp_path: Path, name: str, key: str, monkeypatch) -> Path:
    monkeypatch.setenv(KEY_ENV_VAR, key)
    return dbt_build(tmp_path / f"{name}.duckdb", transactions_path=str(orders_file(tmp_path / "in")),
                     extraction_date="2011-12-31", pseudonymise_customer_ids=True)


@pytest.fixture(scope="module")
def pseudonymised_db(tmp_path_factory) -> Path:
    """The orders built with KEY: clustered by one test, its customer ids compared by another."""
    with pytest.MonkeyPatch.context() as patch:
        return pseudonymised_build(tmp_path_factory.mktemp("pseudonymised"), "first", KEY, patch)


def customer_ids(db_path: Path) -> set[str]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {c for (c,) in con.execute("select customer_id from customer_rfm").fetchall()}


@pytest.mark.slow
def test_pseudonymised_ids_reach_no_table_and_the_key_reaches_no_file(pseudonymised_db, tmp_path):
    db_path = pseudonymised_db
    clustered = segkit("cluster", "--k", "2", "--report-path", str(tmp_path / "report.html"), db_path=db_path,
                       env={KEY_ENV_VAR: KEY})
    assert clustered.returncode == 0, clustered.stderr
    assert customer_ids(db_path) == {pseudonym(customer, KEY.encode()) for customer in RAW_IDS}
    stored = varchar_values(db_path)
    assert len(stored) > 100
    leaks = [value for value in stored for customer in RAW_IDS if customer in value]
    assert leaks == []
    assert not any("High Street" in value for value in stored)  # free text stops at the source
    for text_file in [db_path, tmp_path / "report.html",
                      *(ROOT / "target").rglob("*"), *(ROOT / "logs").rglob("*")]:
        if text_file.is_file():
            assert KEY.encode() not in text_file.read_bytes(), text_file


@pytest.mark.slow
def test_an_export_keeps_pseudonyms_pseudonymous(pseudonymised_db, tmp_path):
    db_path = tmp_path / "copy.duckdb"
    shutil.copy(pseudonymised_db, db_path)
    assert segkit("cluster", "--k", "2", "--no-report", db_path=db_path).returncode == 0
    out = tmp_path / "audience.csv"
    exported = segkit("export", "--out", str(out), db_path=db_path)  # no key in its environment
    assert exported.returncode == 0, exported.stderr
    ids = [line.split(",")[0] for line in out.read_text().splitlines()[1:]]
    assert sorted(ids) == sorted(pseudonym(customer, KEY.encode()) for customer in RAW_IDS)
    assert not any(customer in out.read_text() for customer in RAW_IDS)


@pytest.mark.slow
def test_the_same_key_gives_the_same_pseudonyms_and_another_key_others(pseudonymised_db, tmp_path, monkeypatch):
    # The ids are a function of the raw id and the key alone, so every build with this key gives the same ones.
    first = customer_ids(pseudonymised_db)
    other = customer_ids(pseudonymised_build(tmp_path, "c", KEY + "-rotated", monkeypatch))
    assert first == {pseudonym(customer, KEY.encode()) for customer in RAW_IDS} and len(first) == len(RAW_IDS)
    assert other == {pseudonym(customer, (KEY + "-rotated").encode()) for customer in RAW_IDS}
    assert not first & other and len(other) == len(RAW_IDS)


@pytest.mark.slow
def test_pseudonymising_without_a_key_stops_before_any_model_runs(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    with pytest.raises(SegkitError, match=f"pseudonymise_customer_ids is on but the environment variable "
                                          f"{KEY_ENV_VAR} is not set"):
        dbt_build(tmp_path / "nokey.duckdb", transactions_path=str(orders_file(tmp_path / "in")),
                  pseudonymise_customer_ids=True)
    with duckdb.connect(str(tmp_path / "nokey.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from information_schema.tables").fetchone()[0] == 0


def test_staging_keeps_only_what_segmentation_uses(demo_db):
    with duckdb.connect(str(demo_db), read_only=True) as con:
        staged = {row[0] for row in con.execute("describe main_build.stg_raw__lines").fetchall()}
        downstream = {c for (c,) in con.execute("""select column_name from information_schema.columns
            where table_name like 'int_%' or table_name like 'customer_%'""").fetchall()}
    assert not {"Description", "description", "country", "Country"} & (staged | downstream)
    assert staged == {"line_id", "line_fingerprint", "customer_id", "order_id", "product_id",
                      "product_category", "quantity", "unit_price", "line_amount", "order_date",
                      "has_unparseable_value"}


# --- The report against adversarial tiny segments ---------------------------------------------------------------

WHALES = [f"WHALE-{n}-ID" for n in range(1, 4)]


def tiny_segment_file(folder: Path) -> Path:
    """Forty ordinary customers and three whales who buy 20 times for 5,000.25 each: a segment of three."""
    lines = [HEADER]
    for n in range(40):
        lines.append(f"{n},P1,x,{1 + n % 3},2011-{1 + n % 11:02d}-{1 + n % 27:02d} 10:00:00,{2 + n % 5}.10,"
                     f"ORD-{n:03d}-ID,UK")
    for n, whale in enumerate(WHALES):
        for order in range(20):
            lines.append(f"W{n}{order},P2,x,1,2011-{1 + order % 11:02d}-{1 + order:02d} 09:00:00,5000.25,{whale},UK")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.csv").write_text("\n".join(lines) + "\n")
    return folder / "tiny.csv"


@pytest.mark.slow
def test_a_segment_of_three_customers_can_be_neither_read_nor_derived(tmp_path):
    db_path = dbt_build(tmp_path / "tiny.duckdb", transactions_path=str(tiny_segment_file(tmp_path / "in")),
                        extraction_date="2011-12-31")
    report_path = tmp_path / "tiny.html"
    result = segkit("cluster", "--k", "2", "--report-path", str(report_path), db_path=db_path)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db_path), read_only=True) as con:
        sizes = dict(con.execute("select segment_id, customers from segment_profiles").fetchall())
        whale_segment = con.execute("select distinct segment_id from customer_segments where customer_id like "
                                    "'WHALE%'").fetchall()
    assert sorted(sizes.values()) == [3, 40] and len(whale_segment) == 1
    html = report_path.read_text()
    assert not [customer for customer in [*WHALES, *(f"ORD-{n:03d}-ID" for n in range(40))] if customer in html]
    whale_revenue = 3 * 20 * 5000.25
    for written in (f"{whale_revenue:,.0f}", f"{whale_revenue:.0f}", f"{whale_revenue:,.2f}", "5,000.25", "5000.25"):
        assert written not in html, written
    cards = re.findall(r'<article class="card( suppressed)?" id="segment-(\d+)"', html)
    assert cards and all(hidden for hidden, _ in cards)  # the 40 would give the 3 away from the total: both hidden


# --- Hostile configuration values reach SQL only quoted or validated ---------------------------------------------

INJECTION = "'); drop table canary; --"


def canary_db(tmp_path: Path) -> Path:
    path = tmp_path / "canary.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table canary as select 42 as alive")
    return path


@pytest.mark.slow
def test_quotes_and_semicolons_in_paths_names_and_codes_are_data_not_sql(tmp_path):
    folder = tmp_path / "o'brien; drop"
    folder.mkdir()
    path = folder / "it's.csv"
    path.write_text('Invoice,StockCode,Description,Quantity,InvoiceDate,Price,"Customer ""ID"";",Country\n'
                    "1,A,x,1,2011-01-01 10:00:00,2.5,7,UK\n2,B';X,x,1,2011-01-02 10:00:00,3.5,8,UK\n"
                    f"{INJECTION}1,A,x,-1,2011-01-03 10:00:00,2.5,7,UK\n")
    db_path = canary_db(tmp_path)
    columns = {**yaml_vars()["columns"], "customer_id": 'Customer "ID";'}
    dbt_build(db_path, transactions_path=str(path), columns=columns, cancellation_prefix=INJECTION,
              non_product_codes=["POST", "B';X", INJECTION], order_date_format="%Y-%m-%d %H:%M:%S" + INJECTION,
              extraction_date="2011-12-31")
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("select alive from canary").fetchone() == (42,)
        summary = dict(con.execute("select reason, row_count from data_quality_summary").fetchall())
        customers = sorted(c for (c,) in con.execute("select customer_id from customer_rfm").fetchall())
    # The code B';X is a non-product code; the line whose order id starts with the prefix is a return of 7's.
    assert (summary["rows_read"], summary["rows_kept"], summary["non_product_code"]) == (3, 2, 1)
    assert customers == ["7"]


def yaml_vars() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "dbt_project.yml").read_text())["vars"]


@pytest.mark.slow
@pytest.mark.parametrize("hostile_vars, message", [
    ({"extraction_date": "2011-01-01' as date); drop table canary; --"}, "extraction_date must be a date"),
    ({"analysis_date": "2011-01-01; drop table canary"}, "analysis_date must be a date"),
    ({"extreme_quantity": "1; drop table canary"}, "extreme_quantity must be a positive number"),
    ({"columns": {**yaml_vars()["columns"], "customer_id": 'Customer ID"; drop table canary; --'}},
     "has no column 'Customer ID\"; drop table canary; --'"),
    ({"transactions_path": "x'; drop table canary; --"}, "no input file matches"),
], ids=["extraction_date", "analysis_date", "extreme_quantity", "column_name", "transactions_path"])
def test_hostile_vars_stop_with_a_message_and_run_nothing(tmp_path, hostile_vars, message):
    db_path = canary_db(tmp_path)
    before = snapshot(db_path)
    with pytest.raises(SegkitError, match=re.escape(message)):
        dbt_build(db_path, **hostile_vars)
    assert snapshot(db_path) == before


@pytest.mark.slow
def test_hostile_segkit_settings_are_refused_or_stored_as_text(clustered_db, tmp_path):
    import shutil

    db_path = tmp_path / "db.duckdb"
    shutil.copy(clustered_db, db_path)
    before = snapshot(db_path)
    refused = segkit("cluster", "--features", 'recency_days"; drop table customer_rfm; --', db_path=db_path)
    assert refused.returncode == 1 and "Unknown feature" in refused.stderr and "Traceback" not in refused.stderr
    assert snapshot(db_path) == before
    report = segkit("report", "--run-id", "x' or '1'='1", db_path=db_path)
    assert report.returncode == 1 and "Traceback" not in report.stderr
    named = segkit("cluster", "--k", "4", "--no-report", "--json", db_path=db_path,
                   env={"SEGKIT_SEGMENT_NAMES": "1 = \"VIP'); drop table cluster_runs; --\""})
    assert named.returncode == 0, named.stderr
    with duckdb.connect(str(db_path), read_only=True) as con:
        names = {n for (n,) in con.execute("select segment_name from customer_segments").fetchall()}
        assert con.execute("select count(*) from cluster_runs").fetchone()[0] == 2
    assert "VIP'); drop table cluster_runs; --" in names
    assert json.loads(named.stdout)["chosen_k"] == 4
