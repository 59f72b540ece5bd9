"""segkit as a dbt package inside a host project (README "Use segkit in your dbt project").

tests/host_project is a small host: its own models `orders` (typed order lines read from a copy of the demo file),
`stg_transactions` (the name segkit's staging model had), `stg_raw__lines` (the name it has) and `customer_orders`. The module copies it to a
temporary folder, installs segkit with `dbt deps` (a `local:` package, no network) and builds it once; the tests
share that build and check that every other command leaves it as it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.conftest import BUILD_SCHEMA, DEMO_DATA, ROOT

HOST = ROOT / "tests" / "host_project"
BIN = Path(sys.executable).parent
PUBLISHED = ["customer_rfm", "customer_rfm_scores", "customer_segments_scored", "data_quality_summary", "rfm_score_bins"]


@dataclass(frozen=True)
class Host:
    folder: Path

    @property
    def db(self) -> Path:
        return self.folder / "shop.duckdb"

    def run(self, *args: str, dbt_vars: dict | None = None) -> subprocess.CompletedProcess:
        """A real command (dbt or segkit) run from the host's folder, as its README tells a user to."""
        command = [str(BIN / args[0]), *args[1:]]
        if dbt_vars:
            command += ["--vars", json.dumps(dbt_vars)]
        # The suite's own dbt and segkit settings point at this repository: the host has its own.
        env = {name: value for name, value in os.environ.items()
               if name not in ("DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_PROFILES_DIR", "SEGKIT_DB")}
        env.update(SEGKIT_PROJECT_DIR=str(self.folder), DBT_USE_COLORS="false")
        return subprocess.run(command, cwd=self.folder, env=env, capture_output=True, text=True, timeout=600)

    def tables(self) -> dict[str, list]:
        """Every table and view of every schema, its rows sorted: the whole database, to compare before and after."""
        with duckdb.connect(str(self.db), read_only=True) as con:
            names = con.execute("select table_schema, table_name from information_schema.tables "
                                "order by all").fetchall()
            return {f"{schema}.{name}": sorted(map(repr, con.execute(f'select * from "{schema}"."{name}"').fetchall()))
                    for schema, name in names}


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> Host:
    """The host project, with segkit installed by `dbt deps` and built by one plain `dbt build`."""
    folder = tmp_path_factory.mktemp("host") / "shop"
    shutil.copytree(HOST, folder)
    (folder / "data").mkdir()
    shutil.copy(DEMO_DATA, folder / "data" / "orders.csv.gz")
    (folder / "packages.yml").write_text(f"packages:\n  - local: {ROOT}\n")
    host = Host(folder)
    deps = host.run("dbt", "deps")
    assert deps.returncode == 0, deps.stdout
    assert (folder / "dbt_packages" / "segkit" / "dbt_project.yml").exists()
    build = host.run("dbt", "build")
    assert build.returncode == 0, build.stdout[-5000:]
    return host


def segkit_message(output: str) -> list[str]:
    """The distinct segkit messages in dbt's output."""
    return sorted({line.split("segkit: ", 1)[1].strip() for line in output.splitlines() if "segkit: " in line})


@pytest.mark.slow
def test_host_build_builds_segkit_beside_the_hosts_own_models_namespaced_by_schema(host):
    with duckdb.connect(str(host.db), read_only=True) as con:
        tables = set(con.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall())
        # The host's stg_raw__lines is its own, and segkit's models read segkit's, in segkit's build schema.
        assert ("main.stg_raw__lines",) in tables and (f"{BUILD_SCHEMA}.stg_raw__lines",) in tables
        assert [name for (name,) in con.execute("select column_name from information_schema.columns where "
                                                "table_schema = 'main' and table_name = 'stg_raw__lines' "
                                                "order by ordinal_position").fetchall()] == ["order_number", "sku", "units"]
        assert ("main.stg_transactions",) in tables
        assert {(f"main.{name}",) for name in PUBLISHED} <= tables
        assert not {name for (name,) in tables if name.startswith("main.int_")}
        # Every row of the host's relation is read, and kept or counted under a reason.
        counts = dict(con.execute("select reason, row_count from main.data_quality_summary").fetchall())
        rows = con.execute("select count(*) from main.orders").fetchone()[0]
    assert counts["rows_read"] == rows == 119_617
    assert counts["rows_kept"] + sum(count for reason, count in counts.items()
                                     if reason not in ("rows_read", "rows_kept")) == rows


@pytest.mark.slow
def test_a_typed_relation_gives_the_same_features_as_the_file_it_was_read_from(host, demo_db):
    """The host's `orders` is the demo file with typed columns (integers, doubles, timestamps) and other names:
    the same rules give the same counts per reason and the same customer_rfm as reading the file."""
    query = {"data_quality_summary": "select reason, row_count from main.data_quality_summary order by reason",
             "customer_rfm": "select * from main.customer_rfm order by customer_id"}
    with duckdb.connect(str(host.db), read_only=True) as hosted, duckdb.connect(str(demo_db), read_only=True) as demo:
        for name, sql in query.items():
            assert hosted.execute(sql).fetchall() == demo.execute(sql).fetchall(), name


@pytest.mark.slow
def test_segkit_declares_access_and_its_dbt_version(host):
    manifest = json.loads((host.folder / "target" / "manifest.json").read_text())
    access = {node["name"]: node["access"] for node in manifest["nodes"].values()
              if node["resource_type"] == "model" and node["package_name"] == "segkit"}
    assert {name for name, level in access.items() if level == "public"} == set(PUBLISHED)
    assert {level for name, level in access.items() if name not in PUBLISHED} == {"protected"}
    project = (ROOT / "dbt_project.yml").read_text()
    assert re.search(r'^require-dbt-version: \[">=1\.11\.0", "<2\.0\.0"\]$', project, re.MULTILINE)
    assert re.search(r"^restrict-access: true$", project, re.MULTILINE)


@pytest.mark.slow
def test_selecting_only_host_models_runs_no_segkit_check_and_leaves_its_tables(host):
    before = host.tables()
    # A var segkit's input check refuses: the build passes only because no check of segkit's runs.
    result = host.run("dbt", "build", "--select", "customer_orders", dbt_vars={"extreme_quantity": "lots"})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "segkit: " not in result.stdout and "Publishing" not in result.stdout
    after = host.tables()
    assert {name: rows for name, rows in after.items() if name != "main.customer_orders"} \
        == {name: rows for name, rows in before.items() if name != "main.customer_orders"}


@pytest.mark.slow
@pytest.mark.parametrize("dbt_vars, expected", [
    ({"transactions_relation": "main.no_such_orders"},
     'the var transactions_relation names "shop"."main"."no_such_orders", which is not in the database.'),
    ({"columns": {"customer_id": "customer_number", "order_id": "order_number", "order_date": "ordered_at",
                  "quantity": "units", "unit_price": "price_each", "product_id": "sku"}},
     "has no column 'price_each' (mapped to unit_price). Columns found: order_number, sku, units, ordered_at, "
     "unit_price, customer_number. Fix the mapping in the var 'columns'."),
    ({"transactions_relation": 'orders"; drop table main.orders; --'},
     "the var transactions_relation must name a table or view"),
], ids=["missing_relation", "missing_mapped_column", "not_a_relation_name"])
def test_a_bad_relation_input_stops_with_one_message_and_changes_nothing(host, dbt_vars, expected):
    before = host.tables()
    result = host.run("dbt", "build", dbt_vars=dbt_vars)
    assert result.returncode == 1, result.stdout[-3000:]
    messages = segkit_message(result.stdout)
    assert len(messages) == 1 and expected in messages[0], messages
    assert "Traceback" not in result.stdout + result.stderr and "Compilation Error" not in result.stdout
    assert "Publishing" not in result.stdout
    assert host.tables() == before


@pytest.mark.slow
def test_a_host_model_where_segkit_publishes_stops_the_build_before_anything_runs(host):
    before = host.tables()
    clash = host.folder / "models" / "customer_rfm.sql"
    clash.write_text("select 1 as customer_id\n")
    try:
        result = host.run("dbt", "build")
    finally:
        clash.unlink()
    assert result.returncode == 1, result.stdout[-3000:]
    assert segkit_message(result.stdout) == [
        "your model customer_rfm builds main.customer_rfm, a table segkit writes (its published tables and segkit "
        "cluster's are named in README, Use segkit in your dbt project). Give yours another name with the config "
        "alias, or another schema."]
    assert host.tables() == before


@pytest.mark.slow
def test_segkit_cluster_and_report_run_on_the_hosts_target(host):
    cluster = host.run("segkit", "cluster", "--k", "4")
    assert cluster.returncode == 0, cluster.stderr
    report = host.run("segkit", "report")
    assert report.returncode == 0, report.stderr
    with duckdb.connect(str(host.db), read_only=True) as con:
        segmented, customers = con.execute(
            "select count(*), (select count(*) from main.customer_rfm) from main.customer_segments").fetchone()
    assert segmented == customers > 0
    assert len(list((host.folder / "reports").glob("segments_*.html"))) == 1


def test_segkit_ref_knows_every_model_and_seed_of_segkit():
    """segkit's ref looks its own names up in its own package (dbt_project/macros/package.sql): the list must name
    every model and seed, or a host model of that name would be read in its place."""
    listed = re.search(r"segkit_node_names\(\).*?return\(\[(.*?)\]\)", (ROOT / "dbt_project" / "macros" / "package.sql")
                       .read_text(), re.DOTALL).group(1)
    files = {path.stem for folder in ("models", "seeds") for path in (ROOT / "dbt_project" / folder).rglob("*")
             if path.suffix in (".sql", ".csv")}
    assert set(re.findall(r"'([a-z_]+)'", listed)) == files
