"""Write, audit, publish: a build replaces the tables users and segkit read only when every check passed.

dbt builds every model into schema main_build; the on-run-end hook copies the marts to main in one transaction when
every node passed and the input passed the quality gate. Each bad input below goes through the real `segkit build`
on a copy of a clustered demo database, and must end with exit code 1, one message naming the check, and every
table of main exactly as it was.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml

from segkit.config import load_settings
from segkit.dbt_runner import run_dbt
from segkit.errors import SegkitError
from tests.conftest import BUILD_SCHEMA, ROOT, segkit, segkit_environment, snapshot

HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
PUBLISHED = ("customer_rfm", "customer_rfm_scores", "rfm_score_bins", "data_quality_summary",
             "customer_segments_scored")


def day_first_lines(count: int = 100) -> list[str]:
    """dd/mm/YYYY dates: read as mm/dd/YYYY, days above 12 do not parse and the others swap day and month."""
    return [f"{n},A,text,1,{1 + n % 28:02d}/{1 + n % 6:02d}/2011 10:{n % 60:02d},{2 + n % 7}.50,{100 + n % 40},UK"
            for n in range(count)]


def decimal_comma_lines(count: int = 40, every: int = 1) -> list[str]:
    """A semicolon export where one price in `every` has a decimal comma ('3,61'), which does not read; the
    others are whole numbers. (The reader stops a file where no amount reads before any model runs.)"""
    return [f"{n};A;text;1;2011-0{1 + n % 6}-1{n % 10} 10:00:00;{2 + n % 7}{',61' if n % every == 0 else ''};{100 + n % 15};UK"
            for n in range(count)]


def lost_customer_lines() -> list[str]:
    """85 customers with three purchases each, and 15 whose one line has a zero price (5.6% of the lines)."""
    kept = [f"{c}{k},A,text,1,2011-0{1 + k}-1{c % 10} 10:00:00,{2 + c % 5}.50,{c},UK"
            for c in range(100, 185) for k in range(3)]
    return kept + [f"9{c},A,text,1,2011-02-10 10:00:00,0,{c},UK" for c in range(300, 315)]


def sub_cent_lines() -> list[str]:
    """Valid lines, and one customer whose only purchase is worth a tenth of a cent: customer_rfm builds, then its
    test monetary_total >= 0.01 fails, after customer_rfm was rebuilt and before the marts that read it."""
    return [f"{n},A,text,1,2011-0{1 + n % 9}-1{n % 10} 10:00:00,{n + 2}.50,{100 + n % 12},UK" for n in range(30)] + \
        ["99,A,text,1,2011-05-05 10:00:00,0.001,999,UK"]


def write_input(folder: Path, lines: list[str], delimiter: str = ",") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t.csv"
    path.write_text("\n".join([HEADER.replace(",", delimiter), *lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def previous(clustered_db, tmp_path) -> tuple[Path, dict[str, list]]:
    """A copy of the clustered demo database, and what its published tables hold."""
    path = tmp_path / "previous.duckdb"
    shutil.copy(clustered_db, path)
    return path, snapshot(path)


DAY_FIRST_UNPARSEABLE = sum(1 + n % 28 > 12 for n in range(100))

GATE_CASES = {
    # name: (lines, delimiter, vars besides transactions_path, words the message must contain)
    "day_first_dates_read_month_first": (
        day_first_lines(), ",", {"order_date_format": "%m/%d/%Y %H:%M"},
        [f"{DAY_FIRST_UNPARSEABLE:.1f}% of the 100 lines read ({DAY_FIRST_UNPARSEABLE}) were rejected as unparseable",
         "max_rejected_share.unparseable allows (0.02)", "order_date_format '%m/%d/%Y %H:%M'",
         "--vars '{order_date_format: \"%d/%m/%Y %H:%M\"}'", "InvoiceDate='13/01/2011 10:12'",
         "--vars '{max_rejected_share: {unparseable: 0.55}}'"]),
    "decimal_commas_in_part_of_a_semicolon_file": (
        decimal_comma_lines(40, every=2), ";", {},
        ["50.0% of the 40 lines read (20) were rejected as unparseable", "decimal comma", "Price='2,61'",
         "decimal_separator", "max_rejected_share: {unparseable: 0.55}"]),
    "a_small_file_with_no_usable_line": (
        [f"{n},A,text,1,2011-03-0{1 + n} 10:00:00,2.50,,UK" for n in range(5)], ",", {},
        ["None of the 5 lines read was kept; most (5, 100.0%) were rejected as missing_customer_id"]),
    "customers_who_keep_no_line": (
        lost_customer_lines(), ",", {},
        ["15.0% of the 100 customers in the input (15) keep no line", "max_customers_lost_share allows (0.1)",
         "zero_or_negative_price", "line 256: ", "--vars '{max_customers_lost_share: 0.2}'"]),
    "another_date_format_reads_far_more_dates": (
        day_first_lines(), ",", {"order_date_format": "%m/%d/%Y %H:%M", "max_rejected_share": {"unparseable": 1},
                                 "max_customers_lost_share": 1},
        ["order_date_format '%m/%d/%Y %H:%M' reads 48.0% of the first 100 order dates", "'%d/%m/%Y %H:%M' reads 100.0%",
         "check_order_date_format: false"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("lines, delimiter, extra_vars, words", GATE_CASES.values(), ids=GATE_CASES.keys())
def test_a_build_that_fails_a_check_publishes_nothing(previous, tmp_path, lines, delimiter, extra_vars, words):
    db_path, before = previous
    path = write_input(tmp_path / "in", lines, delimiter)
    result = segkit("build", "--vars", json.dumps({"transactions_path": str(path), "extraction_date": "2011-12-31",
                                                   **extra_vars}), db_path=db_path)
    assert result.returncode == 1, result.stdout
    message = result.stderr.strip()
    assert "Traceback" not in message and message.startswith("Error: "), message
    for word in words:
        assert word in message, (word, message)
    examples = [line for line in message.splitlines() if line.startswith("  line ")]
    assert len(examples) == (0 if "nothing was published" in message else 3), message
    assert snapshot(db_path) == before
    with duckdb.connect(str(db_path), read_only=True) as con:  # the failed build stays in main_build to inspect
        read = con.execute(f"select row_count from {BUILD_SCHEMA}.data_quality_summary where reason = 'rows_read'")
        assert read.fetchone()[0] == len(lines)


@pytest.mark.slow
def test_a_plain_dbt_build_fails_with_the_message_too(previous, tmp_path):
    db_path, before = previous
    path = write_input(tmp_path / "in", day_first_lines())
    result = subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--vars",
                             json.dumps({"transactions_path": str(path), "order_date_format": "%m/%d/%Y %H:%M"})],
                            cwd=ROOT, env=segkit_environment(db_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "segkit: the quality gate stopped the build before publishing" in result.stdout
    assert re.search(r"segkit:   line \d+: .*InvoiceDate=.13/01/2011", result.stdout), result.stdout[-2000:]
    assert snapshot(db_path) == before


@pytest.mark.slow
def test_a_failing_test_of_the_users_own_on_the_rebuilt_marts_publishes_nothing(previous, tmp_path):
    """The marts are rebuilt in main_build, then a later error-severity test fails: main keeps every old mart."""
    db_path, before = previous
    project = tmp_path / "project"
    (project / "own_tests").mkdir(parents=True)
    for name in ("dbt_project", "segkit"):
        (project / name).symlink_to(ROOT / name)
    config = yaml.safe_load((ROOT / "dbt_project.yml").read_text())
    config["test-paths"] = [*config["test-paths"], "own_tests"]
    (project / "dbt_project.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(ROOT / "profiles.yml", project / "profiles.yml")
    (project / "own_tests" / "every_customer_is_a_champion.sql").write_text(
        "select customer_id from {{ ref('customer_rfm_scores') }} where rfm_segment <> 'Champions'\n")
    good = write_input(tmp_path / "in", lost_customer_lines()[:255])
    result = subprocess.run([str(Path(sys.executable).parent / "dbt"), "build", "--vars",
                             json.dumps({"transactions_path": str(good), "extraction_date": "2011-12-31"})],
                            cwd=project, env=segkit_environment(db_path), capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "every_customer_is_a_champion" in result.stdout and "nothing was published" in result.stdout
    assert snapshot(db_path) == before
    with duckdb.connect(str(db_path), read_only=True) as con:  # the rebuilt marts exist, but only in main_build
        assert con.execute(f"select count(*) from {BUILD_SCHEMA}.customer_rfm").fetchone()[0] == 85


def test_the_demo_passes_the_gate_and_every_mart_is_published(demo_db):
    with duckdb.connect(str(demo_db), read_only=True) as con:
        published = {name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
        assert published == set(PUBLISHED)
        for table in PUBLISHED:
            differing = con.execute(f"""select count(*) from (
                (select * from main.{table} except all select * from {BUILD_SCHEMA}.{table})
                union all (select * from {BUILD_SCHEMA}.{table} except all select * from main.{table}))""")
            assert differing.fetchone()[0] == 0, table


@pytest.mark.slow
def test_a_partial_build_reads_published_tables_and_never_a_failed_build(previous, tmp_path):
    db_path, before = previous
    bad = write_input(tmp_path / "in", day_first_lines())
    with pytest.raises(SegkitError, match="stopped the build before publishing"):
        run_dbt(load_settings(project_dir=ROOT, db_path=db_path),
                dbt_vars={"transactions_path": str(bad), "extraction_date": "2011-12-31",
                          "order_date_format": "%m/%d/%Y %H:%M"})
    # Scoring alone reads the published customer_rfm (the demo's), not the failed build's in main_build.
    run_dbt(load_settings(project_dir=ROOT, db_path=db_path), ("build", "--select", "customer_segments_scored"))
    with duckdb.connect(str(db_path), read_only=True) as con:
        scored = {c for (c,) in con.execute("select customer_id from main.customer_segments_scored").fetchall()}
        published = {c for (c,) in con.execute("select customer_id from main.customer_rfm").fetchall()}
        failed = {c for (c,) in con.execute(f"select customer_id from {BUILD_SCHEMA}.customer_rfm").fetchall()}
    assert scored == published != failed
    after = snapshot(db_path)
    assert {table: rows for table, rows in after.items() if table != "customer_segments_scored"} == \
        {table: rows for table, rows in before.items() if table != "customer_segments_scored"}
    # A mart whose inputs this build did not rebuild would mix in the failed build's tables: refused.
    stale = "customer_rfm was built from .*int_lines_aggregated_to_customers.*--select [+]customer_rfm"
    with pytest.raises(SegkitError, match=stale):
        run_dbt(load_settings(project_dir=ROOT, db_path=db_path), ("build", "--select", "customer_rfm"))
    # Replacing customer_rfm without the marts that read it would leave them disagreeing: refused.
    good = write_input(tmp_path / "good", sub_cent_lines()[:-1])
    with pytest.raises(SegkitError, match="reads customer_rfm, which this build replaces"):
        run_dbt(load_settings(project_dir=ROOT, db_path=db_path), ("build", "--select", "+customer_rfm"),
                dbt_vars={"transactions_path": str(good)})
    assert snapshot(db_path) == after


@pytest.mark.slow
def test_a_passing_build_publishes_every_mart_and_drops_stale_line_level_tables(previous, tmp_path):
    """Earlier versions built the line-level models in main, under their present and their former names; a build
    that publishes drops them, keeps segkit's tables, and replaces the marts together. The vars are YAML, with an
    unquoted date, as a user types them."""
    db_path, before = previous
    with duckdb.connect(str(db_path)) as con:
        con.execute("create table main.stg_raw__lines as select 1 as line_id")
        con.execute("create view main.int_lines_rejected as select * from main.stg_raw__lines")
        # formerly:begin
        con.execute("create table main.stg_transactions as select 1 as transaction_line_id")
        con.execute("create view main.int_transactions_rejected as select * from main.stg_transactions")
        # formerly:end
    path = write_input(tmp_path / "in", sub_cent_lines()[:-1])
    result = segkit("build", "--vars", f"{{transactions_path: '{path}', extraction_date: 2011-12-31}}",
                    db_path=db_path)
    assert result.returncode == 0, result.stderr
    with duckdb.connect(str(db_path), read_only=True) as con:
        in_main = {name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
        customers = [con.execute(f"select count(distinct customer_id) from main.{table}").fetchone()[0]
                     for table in ("customer_rfm", "customer_rfm_scores", "customer_segments_scored")]
        extraction_date = con.execute(
            f"select extraction_date from {BUILD_SCHEMA}.int_analysis_date_resolved").fetchone()[0]
    assert in_main == set(before) | set(PUBLISHED)
    assert customers == [12, 12, 12]
    assert str(extraction_date) == "2011-12-31"
