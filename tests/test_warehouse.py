"""Where the database is, and what happens when another process holds it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from segkit.dbt_runner import run_dbt
from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError
from segkit.config import load_settings
from segkit.engine import column_types
from segkit.engine import connect as engine_connect
from segkit.profile import Profile, read_profile
from segkit.warehouse import connect, lock_path, require_table, table_exists
from tests.conftest import ROOT


@pytest.fixture
def locked_db(tmp_path):
    """A DuckDB file held open for writing by another process, as a `duckdb` shell would."""
    path = tmp_path / "locked.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    yield path
    holder.kill()
    holder.wait()


def test_database_path_comes_from_profiles_yml(monkeypatch):
    monkeypatch.delenv("SEGKIT_DB", raising=False)
    assert load_settings(project_dir=ROOT).db_path == ROOT / "segkit.duckdb"


def test_segkit_db_overrides_the_database_path(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGKIT_DB", str(tmp_path / "other.duckdb"))
    assert load_settings(project_dir=ROOT).db_path == tmp_path / "other.duckdb"


def test_duckdb_spills_where_and_as_much_as_the_profile_says_for_dbt_and_segkit_alike(monkeypatch, tmp_path):
    """temp_directory: SEGKIT_TEMP_DIR, else DuckDB's own (the database plus .tmp); max_temp_directory_size:
    SEGKIT_TEMP_DIR_MAX_SIZE, else DuckDB's own."""
    database = tmp_path / "shop.duckdb"
    monkeypatch.setenv("SEGKIT_DB", str(database))
    monkeypatch.delenv("SEGKIT_TEMP_DIR", raising=False)
    monkeypatch.delenv("SEGKIT_TEMP_DIR_MAX_SIZE", raising=False)
    with duckdb.connect(str(database)) as con:
        duckdbs_own = con.execute("select current_setting('temp_directory'), current_setting('max_temp_directory_size')"
                                  ).fetchone()
    settings = load_settings(project_dir=ROOT)
    with engine_connect(settings) as con:
        assert con.execute("select current_setting('temp_directory'), current_setting('max_temp_directory_size')"
                           ).fetchone() == duckdbs_own == (f"{database}.tmp", "90% of available disk space")

    monkeypatch.setenv("SEGKIT_TEMP_DIR", str(tmp_path / "spill"))
    monkeypatch.setenv("SEGKIT_TEMP_DIR_MAX_SIZE", "20GB")
    settings = load_settings(project_dir=ROOT)
    with engine_connect(settings) as con:
        assert con.execute("select current_setting('temp_directory'), current_setting('max_temp_directory_size')"
                           ).fetchone() == (str(tmp_path / "spill"), "18.6 GiB")
    shown = run_dbt(settings, ("show", "--inline", "select current_setting('temp_directory') as spill, "
                               "current_setting('max_temp_directory_size') as spill_cap", "--output", "json",
                               "--log-format", "text"))
    assert f'"spill": "{tmp_path / "spill"}"' in shown.output and '"spill_cap": "18.6 GiB"' in shown.output


def test_dbt_opens_new_connections_after_duckdb_has_spilled(monkeypatch, tmp_path):
    """dbt-duckdb SETs the profile's `settings` on every connection it opens; DuckDB refuses temp_directory once it
    has spilled there, which stopped a 1B-line build after its first large model. The shipped profile gives it
    when the file opens, as dbt-duckdb does with config_options."""
    from dbt.adapters.duckdb.credentials import DuckDBCredentials
    from dbt.adapters.duckdb.environments import Environment

    monkeypatch.setenv("SEGKIT_DB", str(tmp_path / "shop.duckdb"))
    monkeypatch.delenv("SEGKIT_TEMP_DIR", raising=False)
    output = load_settings(project_dir=ROOT).profile.output
    credentials = DuckDBCredentials(database="shop", schema="main", path=output["path"],
                                    config_options=dict(output.get("config_options") or {}),
                                    settings=dict(output.get("settings") or {}))
    with duckdb.connect(credentials.path, config=credentials.config_options) as con:
        Environment.initialize_cursor(credentials, con.cursor())
        con.execute("set memory_limit = '30MB'; set threads = 1; set enable_progress_bar = false")
        con.execute("create table spilled as select i % 1000000 as k, count(*) as n, max(i)::varchar as v "
                    "from range(2000000) as r(i) group by k")
        assert any((tmp_path / "shop.duckdb.tmp").iterdir()) or con.execute(
            "select count(*) from duckdb_temporary_files()").fetchone()[0]
        Environment.initialize_cursor(credentials, con.cursor())  # the next model's connection


def test_a_locked_database_gives_advice_not_a_traceback(locked_db):
    with pytest.raises(SegkitError, match="in use by another process") as raised:
        with connect(locked_db):
            pass
    assert raised.value.exit_code == EXIT_DATABASE_LOCKED


@pytest.mark.slow
def test_dbt_on_a_locked_database_says_what_to_do(locked_db):
    started = time.monotonic()
    with pytest.raises(SegkitError, match="another process holds it") as raised:
        run_dbt(load_settings(project_dir=ROOT, db_path=locked_db))
    assert raised.value.exit_code == EXIT_DATABASE_LOCKED
    assert time.monotonic() - started < 120


def test_missing_table_names_the_next_step(tmp_path):
    with connect(tmp_path / "empty.duckdb") as con:
        with pytest.raises(SegkitError, match="Run `dbt build` first"):
            require_table(con, "customer_rfm")


def test_read_only_connect_to_a_missing_file_says_build_first(tmp_path):
    with pytest.raises(SegkitError, match="does not exist yet"):
        with connect(tmp_path / "missing.duckdb", read_only=True):
            pass


# ------------------------------------------------------------------ the target's schema, settings, attach, secrets

def target(tmp_path, extra: str = "", path: str = "shop.duckdb") -> Profile:
    """The profile of a project in tmp_path whose DuckDB target has the `extra` YAML lines."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (project / "profiles.yml").write_text(
        f"shop:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: \"{path}\"\n{extra}")
    return read_profile(project)


def test_segkit_reads_and_writes_in_the_targets_schema(tmp_path):
    profile = target(tmp_path, "      schema: analytics\n")
    with duckdb.connect(profile.path) as con:
        con.execute("create schema analytics")
        con.execute("create table analytics.customer_rfm (customer_id varchar, frequency integer)")
        con.execute("create table main.cluster_runs (run_id varchar)")  # not the target's: segkit ignores it
    with connect(Path(profile.path), profile=profile) as con:
        assert table_exists(con, "customer_rfm") and not table_exists(con, "cluster_runs")
        assert column_types(con, "customer_rfm") == {"customer_id": "VARCHAR", "frequency": "INTEGER"}
        con.execute("create table segment_profiles as select 1 as segment_id")
    with duckdb.connect(profile.path) as con:
        assert con.execute("select table_schema from information_schema.tables where table_name = "
                           "'segment_profiles'").fetchall() == [("analytics",)]


def test_a_missing_schema_names_the_fix(tmp_path):
    profile = target(tmp_path, "      schema: analytics\n")
    duckdb.connect(profile.path).close()
    for read_only in (True, False):
        with pytest.raises(SegkitError, match=r"The schema 'analytics' \(the schema of the target 'dev' in "
                                              r"profiles.yml\) is not in the database shop .*Run `dbt build` first"):
            with connect(Path(profile.path), read_only=read_only, profile=profile):
                pass
    with duckdb.connect(profile.path) as con:
        assert con.execute("select count(*) from information_schema.schemata where schema_name = 'analytics'"
                           ).fetchall() == [(0,)]


def test_the_targets_settings_extensions_attachments_and_secrets_reach_segkits_connection(tmp_path):
    raw = tmp_path / "project" / "raw.duckdb"
    raw.parent.mkdir()
    with duckdb.connect(str(raw)) as con:
        con.execute("create table transactions as select 'C1' as customer_id, 12.5 as line_amount")
    profile = target(tmp_path, (
        "      settings:\n        threads: 1\n"
        "      extensions:\n        - json\n        - name: parquet\n"
        "      attach:\n        - path: raw.duckdb\n          alias: raw\n          read_only: true\n"
        "      secrets:\n        - type: http\n          name: shop_api\n          bearer_token: \"t0ken\"\n"
        "          scope: https://api.example.com\n"))
    with connect(Path(profile.path), profile=profile) as con:
        assert con.execute("select current_setting('threads')").fetchall() == [(1,)]
        assert sorted(con.execute("select extension_name from duckdb_extensions() where loaded and extension_name "
                                  "in ('json', 'parquet')").fetchall()) == [("json",), ("parquet",)]
        assert con.execute("select * from raw.transactions").fetchall() == [("C1", Decimal("12.5"))]
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("insert into raw.transactions values ('C2', 1)")
        assert con.execute("select name, type, scope from duckdb_secrets()").fetchall() == [
            ("shop_api", "http", ["https://api.example.com"])]
        assert con.execute("select current_database(), current_schema()").fetchall() == [("shop", "main")]


def test_motherduck_paths_and_s3_secrets_reach_duckdb_unchanged(tmp_path):
    """No network here: DuckDB's own error for the missing extension shows what segkit handed it. (Extension
    downloads are switched off, so the test does not wait for a network that is not there.)"""
    offline = "      settings:\n        autoinstall_known_extensions: false\n"
    profile = target(tmp_path, offline, path="md:my_db")
    assert profile.path == "md:my_db"
    with pytest.raises(SegkitError, match=r"DuckDB could not open md:my_db \(.*motherduck.*MotherDuck \(md:\) "
                                          r"needs a network connection"):
        with connect(Path(profile.path), profile=profile):
            pass
    assert not list((tmp_path / "project").glob("md*")) and not list(Path.cwd().glob("md:*"))

    profile = target(tmp_path, offline + "      secrets:\n        - type: s3\n          key_id: shop\n"
                                         "          secret: s3cr3t\n          region: eu-west-1\n")
    with pytest.raises(SegkitError, match=r"could not set up the secret 1 \(type s3\).*httpfs"):
        with connect(Path(profile.path), profile=profile):
            pass


def test_an_extension_that_cannot_be_installed_names_the_fix(tmp_path):
    profile = target(tmp_path, "      settings:\n        autoinstall_known_extensions: false\n"
                               "      extensions:\n        - no_such_extension\n")
    with pytest.raises(SegkitError, match="could not load the extension 'no_such_extension'.*Run `dbt build` once"):
        with connect(Path(profile.path), profile=profile):
            pass


def test_the_command_lock_of_a_uri_is_in_the_temporary_folder(tmp_path):
    assert lock_path(Path("md:my_db"), "cluster").parent == Path(tempfile.gettempdir())
    assert lock_path(tmp_path / "shop.duckdb", "cluster") == tmp_path / "shop.duckdb.cluster.lock"


def test_readers_share_an_attached_database_and_a_writer_writes_it_as_the_profile_says(tmp_path):
    raw = tmp_path / "project" / "raw.duckdb"
    raw.parent.mkdir()
    duckdb.connect(str(raw)).execute("create table orders as select 1 as n").close()
    profile = target(tmp_path, "      attach:\n        - path: raw.duckdb\n          alias: raw\n")
    duckdb.connect(profile.path).close()
    # Another process reads through segkit's connection (a report, say) and keeps it open.
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from pathlib import Path
from segkit.profile import read_profile
from segkit.warehouse import connect
profile = read_profile(Path({str(raw.parent)!r}))
with connect(Path(profile.path), read_only=True, profile=profile) as con:
    print(con.execute('select n from raw.orders').fetchall(), flush=True)
    time.sleep(60)
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "[(1,)]"
        with connect(Path(profile.path), read_only=True, profile=profile) as con:
            assert con.execute("select n from raw.orders").fetchall() == [(1,)]
    finally:
        holder.kill()
        holder.wait()
    with connect(Path(profile.path), profile=profile) as writer:
        writer.execute("insert into raw.orders values (2)")  # as the profile says: read-write


def test_every_module_loads_where_there_is_no_fcntl():
    """Windows has no fcntl: segkit's modules must load without it (filelock locks there with the OS's own call)."""
    modules = sorted(".".join(("segkit", *path.relative_to(ROOT / "segkit").with_suffix("").parts)).removesuffix(
        ".__init__") for path in (ROOT / "segkit").rglob("*.py") if "_project" not in path.parts)
    script = ("import importlib, sys\nsys.modules['fcntl'] = None\n"
              f"for name in {modules!r}:\n    importlib.import_module(name)\nprint(len({modules!r}))\n")
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == str(len(modules)), result.stderr[-2000:]
