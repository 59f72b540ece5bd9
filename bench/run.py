"""segkit against pandas and against the yardstick query, at several sizes, on the same Parquet files; and
`segkit demo` on the shipped demo file. See bench/README.md.

    .venv/bin/python bench/run.py --sizes 1M,10M,100M
    .venv/bin/python bench/run.py --sizes 1B --data-dir /big/disk --timeout 3600   # opt-in: a billion lines

Data: the demo generator writes about 1M lines for 33,250 customers; the benchmark stores that as Parquet part
files, each a copy with its own customer and invoice ids, so N million lines are the first N parts (generated
once, cached in --data-dir). Every step runs as its own child process, with a time bound; its wall time lasts
until every process it started has ended, its peak RSS covers them all (see `run_measured`), and its CPU time is
the user and system time of the child and what it reaped. Baselines also run under a memory cap (RLIMIT_AS).
At the --spark-sizes, the segkit steps run again on local Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from segkit.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIB = 1024**3
PAGE = os.sysconf("SC_PAGE_SIZE")
PART_CUSTOMERS = 33_250  # about 1,000,000 lines per part
OUT_OF_MEMORY = re.compile(r"MemoryError|Unable to allocate|bad_alloc|Out of Memory|malloc of size|Cannot allocate memory")


@dataclass
class Measured:
    seconds: float
    peak_gib: float
    status: str  # 'ok', 'timed out after N s', 'out of memory at N GiB cap' or 'failed (exit N)'
    output: str
    own_peak_gib: float | None = None  # os.wait4's figure alone: the child and the descendants it reaped
    cpu_seconds: float | None = None   # user + sys of the child and the descendants it reaped (os.wait4)
    spill_peak_gib: float | None = None  # the largest size the watched temporary folder reached


def session_rss(session: int) -> list[int]:
    """Resident bytes of each live process of a session: the child and everything it started, reaped or not."""
    sizes = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        state, _, _, process_session, *rest = stat[stat.rfind(")") + 2:].split()
        if int(process_session) == session and state != "Z":
            sizes.append(int(rest[17]) * PAGE)  # field 24, rss in pages
    return sizes


def folder_bytes(folder: Path) -> int:
    """The bytes of the files in a folder and below, 0 when it does not exist; files may go while it looks."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.stat(os.path.join(parent, name)).st_blocks * 512  # on disk, as DuckDB's files are sparse
            except OSError:
                pass
    return total


def run_measured(command: list[str], timeout: float, env: dict | None = None, memory_cap_gib: float | None = None,
                 watch: Path | None = None) -> Measured:
    """Run one command as a fresh child (a new session); its wall time and peak RSS, killed (whole group) past
    `timeout`.

    os.wait4 gives the child's peak RSS, or a reaped descendant's if larger: never their sum, and nothing of a
    descendant left unreaped. dbt on Spark is both: its JVM runs beside it, and dbt exits without reaping it
    (the JVM ends a moment later, when its stdin closes). So the RSS of every process of the session is also
    summed every 0.2 s, the peak is the larger of the two figures, and the clock stops only when the last
    process of the session has ended. `watch` is a folder (DuckDB's temp_directory) whose size is sampled too.
    """
    def limit_memory():
        if memory_cap_gib:
            cap = int(memory_cap_gib * GIB)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                 stderr=subprocess.STDOUT, text=True, preexec_fn=limit_memory, start_new_session=True)
        timed_out, reaped, tree_peak, sampled, spill_peak = False, False, 0, 0.0, 0
        while True:
            if not reaped:
                pid, wait_status, usage = os.wait4(child.pid, os.WNOHANG)
                reaped = bool(pid)
            if reaped or time.perf_counter() - sampled >= 0.2:
                sampled = time.perf_counter()
                tree = session_rss(child.pid)
                tree_peak = max(tree_peak, sum(tree))
                if watch is not None:
                    spill_peak = max(spill_peak, folder_bytes(watch))
                if reaped and not tree:
                    break
            if time.perf_counter() - started > timeout and not timed_out:
                try:
                    os.killpg(child.pid, signal.SIGKILL)
                except ProcessLookupError:  # the group ended meanwhile
                    pass
                timed_out = True
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(wait_status)
        log.seek(0)
        output = log.read()
    if timed_out:
        status = f"timed out after {timeout:.0f} s"
    elif child.returncode == 0:
        status = "ok"
    elif memory_cap_gib and OUT_OF_MEMORY.search(output):
        status = f"out of memory at {memory_cap_gib:g} GiB cap"
    else:
        status = f"failed (exit {child.returncode})"
    own = usage.ru_maxrss * 1024 / GIB
    return Measured(seconds, max(own, tree_peak / GIB), status, output, own, usage.ru_utime + usage.ru_stime,
                    spill_peak / GIB if watch is not None else None)


def ensure_parts(data_dir: Path, parts: int) -> list[Path]:
    """The first `parts` Parquet files, writing the missing ones from one generated demo file (newest first, so
    that two runs sharing --data-dir and generating a small and a large size do not write the same part)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    base = data_dir / "base.csv.gz"
    if not base.exists():
        from segkit.demo_data import generate_demo_data

        partial = data_dir / f"base.{os.getpid()}.csv.gz"
        generate_demo_data(partial, customers=PART_CUSTOMERS, seed=42, truth_path=data_dir / "base_truth.csv")
        os.replace(partial, base)
    files = [data_dir / f"part_{part:03d}.parquet" for part in range(parts)]
    missing = [(part, file) for part, file in enumerate(files) if not file.exists()]
    if missing:
        started = time.perf_counter()
        print(f"writing {len(missing)} Parquet parts to {data_dir}", flush=True)
        with duckdb.connect(config={"memory_limit": "2GB", "threads": 2}) as con:
            con.execute("set enable_progress_bar = false")  # a global option no longer, since DuckDB 2
            con.execute(f"create table lines as select * from read_csv('{base}', header = true)")
            for done, (part, file) in enumerate(reversed(missing), start=1):
                if file.exists():  # written meanwhile by another run
                    continue
                # Shifted ids make every part a distinct set of customers and invoices; typed columns, as a
                # warehouse export would have them.
                con.execute(f"""
                    copy (
                        select * replace (
                            replace(
                                "Customer ID",
                                trim("Customer ID"),
                                cast(cast(try_cast(trim("Customer ID") as double) as bigint) + {part} * 1000000
                                     as varchar) || '.0'
                            ) as "Customer ID",
                            regexp_replace(Invoice, '([0-9]+)', '{part:03d}\\1') as Invoice
                        )
                        from lines
                    ) to '{file}.{os.getpid()}.tmp' (format parquet)""")
                os.replace(f"{file}.{os.getpid()}.tmp", file)
                if done % 100 == 0:
                    print(f"  {done} of {len(missing)} parts in {time.perf_counter() - started:.0f} s", flush=True)
        print(f"  {len(missing)} parts in {time.perf_counter() - started:.0f} s", flush=True)
    return files


def count_lines(files: list[Path]) -> int:
    with duckdb.connect() as con:
        return con.execute("select count(*) from read_parquet(?)", [[str(f) for f in files]]).fetchone()[0]


def glob_for(data_dir: Path, parts: int) -> str:
    """A glob matching exactly the first `parts` part files (parts is 1, 10, 100 or 1000)."""
    if parts == 1:
        return str(data_dir / "part_000.parquet")
    digits = len(str(parts - 1))
    if parts == 10**digits and digits <= 3:
        return str(data_dir / f"part_{'0' * (3 - digits)}{'?' * digits}.parquet")
    raise SystemExit(f"sizes must be 1M, 10M, 100M or 1B (a power of ten million lines), not {parts}M")


def label_of(millions: int) -> str:
    return f"{millions // 1000}B" if millions % 1000 == 0 else f"{millions}M"


def profile_settings() -> tuple[int, str]:
    profile = load_settings(project_dir=ROOT).profile
    return profile.output.get("threads", 1), profile.settings.get("memory_limit", "4GB")


# The models that do the yardstick's work (bench/rfm_query.py: customer_rfm's features and data_quality_summary's
# reason counts; the two line views are the rejected and kept lines the models also offer), and one small model
# whose `dbt run` pays what every run pays (start-up, parsing, on-run-start's input check, connections) and little
# more: its CPU is subtracted from the models' run. As in bench/README.md's sixth round.
FEATURE_MODELS = ["+customer_rfm", "+data_quality_summary", "int_lines_rejected", "int_lines_kept"]
ONE_MODEL = ["rfm_score_bins"]


def rfm_model_seconds(target: Path, run_results: Path) -> tuple[float, list[str]]:
    """dbt's own execution time of the feature models (FEATURE_MODELS), from a build's run_results.json."""
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads(run_results.read_text())["results"]
    upstream, pending = set(), ["model.segkit.customer_rfm", "model.segkit.data_quality_summary"]
    while pending:
        node = pending.pop()
        if node in upstream or not node.startswith("model."):
            continue
        upstream.add(node)
        pending += manifest["nodes"][node]["depends_on"]["nodes"]
    seconds = sum(r["execution_time"] for r in results if r["unique_id"] in upstream)
    return seconds, sorted(node.split(".")[-1] for node in upstream)


def median(values: list[float]) -> float:
    return statistics.median(values)


def seconds_list(values: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in values) + " s"


def printed(output: str, name: str) -> float | None:
    """A figure the yardstick prints as `<name> <seconds>`."""
    found = re.search(rf"^{name} ([0-9.]+)$", output, re.MULTILINE)
    return float(found.group(1)) if found else None


def compare_with_yardstick(parts_glob: str, work: Path, env: dict, args) -> dict | None:
    """The feature models against the yardstick, side by side: per repeat, `dbt run` of the feature models, `dbt
    run` of ONE_MODEL and bench/rfm_query.py, one after the other, each a fresh process. The models' CPU is the
    first run's less the second's; the yardstick's is what it prints (its statements alone, DuckDB's threads
    included). None if a run failed (its output is printed)."""
    threads, memory_limit = profile_settings()
    dbt_args = ["--vars", json.dumps({"transactions_path": parts_glob}), "--no-partial-parse"]
    figures = {key: [] for key in ("models_cpu", "one_model_cpu", "models_seconds", "models_peak", "yard_cpu",
                                   "yard_seconds", "yard_peak")}
    for _ in range(args.repeats):
        models = run_measured([str(BIN / "dbt"), "run", "--select", *FEATURE_MODELS, *dbt_args,
                               "--target-path", str(work / "target_models")], args.timeout, env)
        one_model = run_measured([str(BIN / "dbt"), "run", "--select", *ONE_MODEL, *dbt_args,
                                  "--target-path", str(work / "target_one_model")], args.timeout, env)
        for leftover in work.glob("hand.duckdb*"):
            leftover.unlink()
        yardstick = run_measured([sys.executable, str(ROOT / "bench/rfm_query.py"), parts_glob,
                                  str(work / "hand.duckdb"), str(threads), memory_limit], args.timeout)
        for name, measured in (("dbt run of the feature models", models), ("dbt run of one model", one_model),
                               ("yardstick", yardstick)):
            if measured.status != "ok":
                print(f"  {name}: {measured.status}\n{measured.output[-3000:]}", file=sys.stderr)
                return None
        figures["models_cpu"].append(models.cpu_seconds - one_model.cpu_seconds)
        figures["one_model_cpu"].append(one_model.cpu_seconds)
        figures["models_seconds"].append(
            sum(r["execution_time"] for r in json.loads((work / "target_models/run_results.json").read_text())["results"]))
        figures["models_peak"].append(models.peak_gib)
        figures["yard_cpu"].append(printed(yardstick.output, "query cpu seconds") or yardstick.cpu_seconds)
        figures["yard_seconds"].append(printed(yardstick.output, "query seconds") or yardstick.seconds)
        figures["yard_peak"].append(yardstick.peak_gib)
    return figures


def quality_balance(db: Path, lines: int) -> tuple[bool, str]:
    """Whether data_quality_summary balances (rows read = kept + every reason's lines = the lines in the files)."""
    with duckdb.connect(str(db), read_only=True) as con:
        counts = dict(con.execute("select reason, row_count from data_quality_summary").fetchall())
    read, kept = counts.pop("rows_read"), counts.pop("rows_kept")
    rejected = sum(counts.values())
    balanced = read == kept + rejected == lines
    return balanced, (f"data_quality_summary {'balances' if balanced else 'does NOT balance'}: {read:,} read = "
                      f"{kept:,} kept + {rejected:,} rejected (the files hold {lines:,})")


def bench_demo(args, rows: list) -> dict:
    """`segkit demo` (dbt build, cluster and report on the shipped demo file), each run on a new database at the
    same path, sharing dbt's target folder, as a user's runs do: dbt parses the whole project in the first run
    only (it parses everything again when the database path or the vars differ from its saved manifest's)."""
    work = args.work_dir / "demo"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print("\n== demo: segkit demo on the shipped demo file", flush=True)
    runs = []
    env = {"SEGKIT_DB": str(work / "demo.duckdb"), "DBT_TARGET_PATH": str(work / "target"),
           "DBT_LOG_PATH": str(work / "dbt_logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "DBT_USE_COLORS": "false"}
    for attempt in range(args.repeats):
        for previous in work.glob("demo.duckdb*"):
            if previous.is_dir():  # DuckDB's spill folder
                shutil.rmtree(previous)
            else:
                previous.unlink()
        runs.append(run_measured([str(BIN / "segkit"), "demo", "--report-path", str(work / f"demo_{attempt}.html")],
                                 args.timeout, env))
        (work / f"segkit_demo_{attempt}.log").write_text(runs[-1].output)
        if runs[-1].status != "ok":
            print(runs[-1].output[-3000:], file=sys.stderr)
            break
    ok = all(run.status == "ok" for run in runs)
    middle = Measured(median([run.seconds for run in runs]), max(run.peak_gib for run in runs),
                      "ok" if ok else runs[-1].status, "", None, median([run.cpu_seconds for run in runs]))
    note = (f"median of {len(runs)}: {seconds_list([run.seconds for run in runs])} (the first parses the whole "
            f"project, the others only what changed); CPU {seconds_list([run.cpu_seconds for run in runs])}")
    rows.append(("demo", "segkit demo (dbt build, cluster, report)", middle, note))
    print(f"  segkit demo {middle.seconds:8.1f} s {middle.peak_gib:6.2f} GiB  {middle.status} {note}", flush=True)
    return {"seconds": middle.seconds, "ok": ok}


def bench_size(millions: int, args, rows: list) -> dict:
    parts_glob = glob_for(args.data_dir, millions)
    files = ensure_parts(args.data_dir, millions)
    lines = count_lines(files)
    label = label_of(millions)
    print(f"\n== {label}: {lines:,} lines in {len(files)} Parquet files; load {load_average()}", flush=True)
    work = args.work_dir / label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "segkit.duckdb"
    spill = Path(os.environ.get("SEGKIT_TEMP_DIR") or f"{db}.tmp")  # profiles.yml's temp_directory
    env = {"SEGKIT_DB": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false",
           "DBT_LOG_PATH": str(work / "dbt_logs")}  # dbt.log with per-node timings, out of the repository
    figures = {"lines": lines}

    def record(step: str, measured: Measured, note: str = "") -> Measured:
        notes = [note] if note else []
        if measured.own_peak_gib is not None and measured.peak_gib > measured.own_peak_gib + 0.05:
            notes.append(f"peak RSS summed over all its processes, Spark's JVM included (os.wait4 alone: "
                         f"{measured.own_peak_gib:.2f} GiB; CPU: os.wait4's, without a JVM it did not reap)")
        if measured.spill_peak_gib:
            notes.append(f"DuckDB spilled up to {measured.spill_peak_gib:.1f} GiB to {spill}")
        rows.append((label, step, measured, "; ".join(notes)))
        (work / f"{re.sub(r'[^a-z0-9]+', '_', step.lower()).strip('_')}.log").write_text(measured.output)
        cpu = f"{measured.cpu_seconds:8.1f} s CPU" if measured.cpu_seconds is not None else ""
        print(f"  {step:<42} {measured.seconds:8.1f} s {cpu} {measured.peak_gib:6.2f} GiB  {measured.status} "
              f"{'; '.join(notes)}", flush=True)
        if measured.status.startswith("failed"):
            print(measured.output[-3000:], file=sys.stderr)
        return measured

    def segkit_steps(engine: str, build_note=lambda: "") -> dict:
        """dbt build, dbt's start-up alone, and segkit cluster (which writes the report) on one engine."""
        prefix, target = ("", []) if engine == "duckdb" else (f"{engine}: ", ["--target", engine])
        dbt_args = [*target, "--vars", json.dumps({"transactions_path": parts_glob})]
        build = run_measured([str(BIN / "dbt"), "build", *dbt_args, "--target-path", str(work / f"target_{engine}")],
                             args.timeout, env_of[engine], watch=spill if engine == "duckdb" else None)
        record(f"{prefix}dbt build", build, build_note() if build.status == "ok" else "")
        if build.status != "ok":
            return {}
        shutil.copy(work / f"target_{engine}/run_results.json", work / f"{engine}_build_run_results.json")
        # dbt's fixed cost: start-up and project parsing, with no node selected (so it runs no hook either:
        # not the input checks, and on Spark no session). Each run has a new target path, so that it parses the
        # whole project as the build did, not partially from a saved manifest. The median of three, as a
        # single run of a few seconds varies by more than a second here.
        startups = sorted((run_measured(
            [str(BIN / "dbt"), "build", "--select", "nothing_is_named_this", *dbt_args,
             "--target-path", str(work / f"target_{engine}_startup_{attempt}")], args.timeout, env_of[engine])
            for attempt in range(3)), key=lambda measured: measured.seconds)
        startup = record(f"{prefix}dbt start-up (nothing selected)", startups[1],
                         "median of 3: " + seconds_list([measured.seconds for measured in startups]))
        cluster = record(f"{prefix}segkit cluster (and its report)", run_measured(
            [str(BIN / "segkit"), "cluster", *target, "--report-path", str(work / f"report_{engine}.html")],
            args.timeout, env_of[engine], watch=spill if engine == "duckdb" else None),
            "one process: clusters, writes the tables and the HTML report")
        steps = dict(dbt_build=build.seconds, dbt_startup=startup.seconds, dbt_peak=build.peak_gib,
                     cluster=cluster.seconds, peak=max(build.peak_gib, cluster.peak_gib),
                     segkit_ok=cluster.status == "ok", with_startup=build.seconds + cluster.seconds,
                     end_to_end=build.seconds - startup.seconds + cluster.seconds)
        status = "ok" if steps["segkit_ok"] else "failed"
        note = "dbt build less its start-up, plus segkit cluster"
        if prefix and figures.get("end_to_end"):
            # With nothing selected dbt opens no Spark session: each step's JVM start stays in the sum.
            note += (f" (the start-up starts no JVM); {steps['end_to_end'] / figures['end_to_end']:.1f}x DuckDB's "
                     f"{figures['end_to_end']:.1f} s")
        rows.append((label, f"{prefix}segkit end to end, excluding dbt start-up",
                     Measured(steps["end_to_end"], steps["peak"], status, "", None,
                              build.cpu_seconds - startup.cpu_seconds + cluster.cpu_seconds), note))
        rows.append((label, f"{prefix}segkit end to end, dbt start-up included",
                     Measured(steps["with_startup"], steps["peak"], status, "",
                              None, build.cpu_seconds + cluster.cpu_seconds), "dbt build plus segkit cluster"))
        return steps

    # Spark gets a metastore and warehouse of its own per size, so every Spark build starts from nothing.
    env_of = {"duckdb": env, "spark": {**env, "SEGKIT_SPARK_DIR": str(work / "spark")}}
    figures.update(segkit_steps("duckdb", lambda: "; ".join([
        quality_balance(db, lines)[1], f"database {db.stat().st_size / GIB:.2f} GiB"])))
    if "end_to_end" not in figures:
        return figures
    figures["balanced"] = quality_balance(db, lines)[0]
    model_seconds, models = rfm_model_seconds(work / "target_duckdb", work / "duckdb_build_run_results.json")
    record("feature models within the build (dbt's node times)",
           Measured(model_seconds, figures["dbt_peak"], "ok", ""),
           f"{lines / model_seconds / 1e6:.2f}M lines/s; {', '.join(models)}")
    if millions in args.spark_sizes:
        figures["spark"] = segkit_steps("spark", lambda: spark_rfm_differences(db, work / "spark"))

    if millions <= args.compare_max_millions and args.repeats:
        compared = compare_with_yardstick(parts_glob, work, env, args)
        if compared is None:
            rows.append((label, "feature models against the yardstick", None, "failed: see the output"))
        else:
            models_cpu, yard_cpu = median(compared["models_cpu"]), median(compared["yard_cpu"])
            figures["cpu_ratio"] = (models_cpu / yard_cpu, models_cpu, yard_cpu, args.repeats)
            record(f"feature models: dbt run less a {ONE_MODEL[0]} run",
                   Measured(median(compared["models_seconds"]), max(compared["models_peak"]), "ok", "", None,
                            models_cpu),
                   f"median of {args.repeats}, interleaved with the yardstick; CPU "
                   f"{seconds_list(compared['models_cpu'])} (the one-model run's "
                   f"{seconds_list(compared['one_model_cpu'])} subtracted); wall: dbt's node times "
                   f"{seconds_list(compared['models_seconds'])}; {', '.join(FEATURE_MODELS)}")
            record("yardstick query (bench/rfm_query.py)",
                   Measured(median(compared["yard_seconds"]), max(compared["yard_peak"]), "ok", "", None, yard_cpu),
                   f"median of {args.repeats}; CPU {seconds_list(compared['yard_cpu'])}, wall "
                   f"{seconds_list(compared['yard_seconds'])} (its statements alone); the models take "
                   f"{models_cpu / yard_cpu:.2f}x its CPU; rows differing from customer_rfm: "
                   f"{rows_differing(db, work / 'hand.duckdb')}; {reasons_differing(db, work / 'hand.duckdb')}")

    for name, variant in (("baseline A (tutorial pandas)", "a"), ("baseline B (good pandas)", "b")):
        if variant not in args.baselines:
            continue
        if millions > args.baseline_max_millions:
            rows.append((label, name, None, f"not run: above --baseline-max-millions {args.baseline_max_millions}"))
            continue
        measured = run_measured([sys.executable, str(ROOT / "bench/baselines.py"), variant, *map(str, files)],
                                args.baseline_timeout, memory_cap_gib=args.memory_cap_gib)
        progress = [line for line in measured.output.splitlines() if " done at " in line]
        record(name, measured, f"last step: {progress[-1]}" if progress else "no step finished")
        figures[f"baseline_{variant}"] = measured
    return figures


def rows_differing(db: Path, hand_db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute(f"attach '{hand_db}' as hand (read_only)")
        return con.execute("""
            select count(*) from (
                (select * exclude (top_category_share) from customer_rfm
                 except all select * exclude (top_category_share) from hand.rfm_hand)
                union all
                (select * exclude (top_category_share) from hand.rfm_hand
                 except all select * exclude (top_category_share) from customer_rfm))""").fetchone()[0]


def reasons_differing(db: Path, hand_db: Path) -> str:
    """data_quality_summary's line counts (rows read, kept, and each reason) against the yardstick's reasons_hand."""
    with duckdb.connect(str(db), read_only=True) as con:
        con.execute(f"attach '{hand_db}' as hand (read_only)")
        if not con.execute("select count(*) from duckdb_tables() where database_name = 'hand' "
                           "and table_name = 'reasons_hand'").fetchone()[0]:
            return "the yardstick counts no reasons"
        differing = con.execute("""
            select count(*) from data_quality_summary as summary
            full join hand.reasons_hand as hand on summary.reason = hand.reason
            where summary.row_count is distinct from hand.row_count""").fetchone()[0]
    return f"line counts (read, kept, per reason) differing from data_quality_summary: {differing}"


def load_average() -> str:
    return ", ".join(f"{load:.2f}" for load in os.getloadavg())


# Where Spark's customer_rfm may differ from DuckDB's, as tests/test_spark.py allows: DuckDB rounds
# avg_order_value's decimal division through a double (one cent), and return_rate is a ratio of doubles.
SPARK_TOLERANCE = {"avg_order_value": 0.01 + 1e-9, "return_rate": 1e-9}


def spark_rfm_differences(db: Path, spark_dir: Path) -> str:
    """Spark's customer_rfm (its Parquet files in the warehouse) against DuckDB's, customer by customer."""
    schema = load_settings(project_dir=ROOT, target="spark").profile.schema
    files = spark_dir / "warehouse" / f"{schema}.db" / "customer_rfm" / "*.parquet"
    with duckdb.connect(str(db), read_only=True) as con:
        columns = con.execute("select column_name, data_type from information_schema.columns "
                              "where table_name = 'customer_rfm' and column_name <> 'customer_id'").fetchall()
        differs = {
            name: f"(d.{name} is null) <> (s.{name} is null) or abs(d.{name} - s.{name}) > {SPARK_TOLERANCE.get(name, 0)}"
            if kind.startswith(("INTEGER", "BIGINT", "DECIMAL", "DOUBLE")) else f"d.{name} is distinct from s.{name}"
            for name, kind in columns}
        counts = con.execute(f"""
            select count(d.customer_id), count(s.customer_id),
                   count(*) filter (where d.customer_id is null or s.customer_id is null
                                    or {' or '.join(f'({condition})' for condition in differs.values())}),
                   {', '.join(f'count(*) filter (where d.customer_id = s.customer_id and ({condition}))'
                              for condition in differs.values())}
            from customer_rfm d full join read_parquet('{files}') s on d.customer_id = s.customer_id""").fetchone()
    in_duckdb, in_spark, differing, *per_column = counts
    columns = [f"{name} {count:,}" for name, count in zip(differs, per_column) if count]
    return (f"customer_rfm: {in_spark:,} customers on Spark, {in_duckdb:,} on DuckDB; rows differing: {differing:,}"
            + (f" ({', '.join(columns)})" if columns else "")
            + " (avg_order_value within a cent, return_rate within 1e-9, the rest exact)")


def size_millions(text: str) -> int:
    match = re.fullmatch(r"(\d+)([MB])", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"size '{text}' is not like 10M or 1B")
    return int(match.group(1)) * (1000 if match.group(2) == "B" else 1)


def markdown(rows: list, summary: list[str], loads: list[str]) -> str:
    lines = ["Load average (1, 5 and 15 minutes) on the machine's 2 cores, as the run went:", "",
             *[f"- {load}" for load in loads], "",
             "| size | step | wall time | CPU (user+sys) | peak RSS | status | notes |",
             "|---|---|---:|---:|---:|---|---|"]
    for label, step, measured, note in rows:
        if measured is None:
            lines.append(f"| {label} | {step} | | | | not run | {note} |")
        else:
            cpu = f"{measured.cpu_seconds:.1f} s" if measured.cpu_seconds is not None else ""
            lines.append(f"| {label} | {step} | {measured.seconds:.1f} s | {cpu} | {measured.peak_gib:.2f} GiB | "
                         f"{measured.status} | {note} |")
    return "\n".join(lines + [""] + summary) + "\n"


def targets(figures: dict, demo: dict | None) -> list[str]:
    """The targets of issue 21, each with the measured figure and whether it is met."""
    out = ["| target | measured | met |", "|---|---|---|"]
    for size, f in sorted(figures.items()):
        if "cpu_ratio" in f:
            ratio, models, yardstick, repeats = f["cpu_ratio"]
            out.append(f"| {label_of(size)}: feature models <= 1.1x the yardstick's CPU | {ratio:.2f}x ({models:.1f} s "
                       f"against {yardstick:.1f} s, medians of {repeats}) | {ratio <= 1.1} |")
    ten, hundred, billion = figures.get(10), figures.get(100), figures.get(1000)
    if ten and "with_startup" in ten and ten.get("baseline_b") is not None:
        baseline = ten["baseline_b"]
        factor = baseline.seconds / ten["with_startup"]
        bound = "" if baseline.status == "ok" else ">= "
        out.append(f"| 10M end to end, dbt start-up included, >= 3x faster than baseline B | {bound}{factor:.1f}x "
                   f"({ten['with_startup']:.1f} s against {baseline.seconds:.1f} s, {baseline.status}) | "
                   f"{factor >= 3} |")
    if hundred and "with_startup" in hundred:
        out.append(f"| 100M end to end, start-up included, <= 90 s | {hundred['with_startup']:.1f} s | "
                   f"{hundred['with_startup'] <= 90 and hundred['segkit_ok']} |")
        out.append(f"| 100M peak memory <= 4 GiB | {hundred['peak']:.2f} GiB | {hundred['peak'] <= 4} |")
    if demo:
        out.append(f"| `segkit demo` pipeline <= 10 s | {demo['seconds']:.1f} s (median) | "
                   f"{demo['seconds'] <= 10 and demo['ok']} |")
    if billion and "with_startup" in billion:
        done = billion["segkit_ok"] and billion.get("balanced", False)
        out.append(f"| 1B completes with a balanced data-quality summary | "
                   f"{'completed' if billion['segkit_ok'] else 'failed'}, "
                   f"{'balanced' if billion.get('balanced') else 'not balanced'} | {done} |")
        out.append(f"| 1B peak memory <= 8 GiB | {billion['peak']:.2f} GiB | {billion['peak'] <= 8} |")
        out.append(f"| 1B time (aim <= 20 min) | {billion['with_startup'] / 60:.1f} min, start-up included | "
                   f"{billion['with_startup'] <= 1200} |")
    elif billion is not None:
        out.append("| 1B completes with a balanced data-quality summary | dbt build failed | False |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M,100M",
                        help="comma-separated: 1M, 10M, 100M (millions of lines) or 1B (a billion, opt-in)")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "segkit-bench-data",
                        help="where the generated Parquet parts are cached between runs")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "segkit-bench-work",
                        help="DuckDB files, dbt target folders and reports of the run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results.md", help="the markdown table")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to each segkit step")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of `segkit demo` and of the feature models against the yardstick (medians)")
    parser.add_argument("--compare-max-millions", type=int, default=100,
                        help="compare the feature models with the yardstick only up to this size")
    parser.add_argument("--no-demo", action="store_true", help="skip the `segkit demo` timing")
    parser.add_argument("--baselines", default="a,b", help="which pandas baselines to run (a, b, both or none)")
    parser.add_argument("--baseline-timeout", type=float, default=600, help="seconds allowed to each baseline")
    parser.add_argument("--memory-cap-gib", type=float, default=10, help="address-space cap of each baseline")
    parser.add_argument("--baseline-max-millions", type=int, default=100,
                        help="run the pandas baselines only up to this size")
    parser.add_argument("--spark-sizes", default="10M",
                        help="of --sizes, those whose segkit steps also run on local Spark (the spark extra and "
                             "Java 17); empty for none")
    args = parser.parse_args()
    sizes = [size_millions(size) for size in args.sizes.split(",")]
    args.spark_sizes = [size_millions(size) for size in args.spark_sizes.split(",") if size.strip()]
    args.baselines = {name.strip() for name in args.baselines.split(",")}
    loads = [f"{time.strftime('%H:%M', time.gmtime())} UTC, at the start: {load_average()}"]
    print(f"load: {loads[0]}")
    rows, figures = [], {}
    demo = None if args.no_demo else bench_demo(args, rows)
    for millions in sizes:
        loads.append(f"{time.strftime('%H:%M', time.gmtime())} UTC, before {label_of(millions)}: {load_average()}")
        figures[millions] = bench_size(millions, args, rows)
        ended = f"{time.strftime('%H:%M', time.gmtime())} UTC, after {label_of(millions)}: {load_average()}"
        text = markdown(rows, targets(figures, demo), [*loads, ended])
        args.out.write_text(text)  # after each size, so a run stopped early keeps what it measured
    print("\n" + text + f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
