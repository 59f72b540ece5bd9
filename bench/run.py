"""segkit against pandas, at several sizes, on the same Parquet files. See bench/README.md.

    .venv/bin/python bench/run.py --sizes 1M,10M,100M

Data: the demo generator writes about 1M lines for 33,250 customers; the benchmark stores that as Parquet part
files, each a copy with its own customer and invoice ids, so N million lines are the first N parts (generated
once, cached in --data-dir). Every step runs as its own child process, with a time bound; its wall time lasts
until every process it started has ended, and its peak RSS covers them all (see `run_measured`). Baselines
also run under a memory cap (RLIMIT_AS). At the --spark-sizes, the segkit steps run again on local Spark.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
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


def run_measured(command: list[str], timeout: float, env: dict | None = None, memory_cap_gib: float | None = None) -> Measured:
    """Run one command as a fresh child (a new session); its wall time and peak RSS, killed (whole group) past
    `timeout`.

    os.wait4 gives the child's peak RSS, or a reaped descendant's if larger: never their sum, and nothing of a
    descendant left unreaped. dbt on Spark is both: its JVM runs beside it, and dbt exits without reaping it
    (the JVM ends a moment later, when its stdin closes). So the RSS of every process of the session is also
    summed every 0.2 s, the peak is the larger of the two figures, and the clock stops only when the last
    process of the session has ended.
    """
    def limit_memory():
        if memory_cap_gib:
            cap = int(memory_cap_gib * GIB)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                 stderr=subprocess.STDOUT, text=True, preexec_fn=limit_memory, start_new_session=True)
        timed_out, reaped, tree_peak, sampled = False, False, 0, 0.0
        while True:
            if not reaped:
                pid, wait_status, usage = os.wait4(child.pid, os.WNOHANG)
                reaped = bool(pid)
            if reaped or time.perf_counter() - sampled >= 0.2:
                sampled = time.perf_counter()
                tree = session_rss(child.pid)
                tree_peak = max(tree_peak, sum(tree))
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
    return Measured(seconds, max(own, tree_peak / GIB), status, output, own)


def ensure_parts(data_dir: Path, parts: int) -> list[Path]:
    """The first `parts` Parquet files, writing the missing ones from one generated demo file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    base = data_dir / "base.csv.gz"
    if not base.exists():
        from segkit.demo_data import generate_demo_data

        generate_demo_data(base, customers=PART_CUSTOMERS, seed=42, truth_path=data_dir / "base_truth.csv")
    files = [data_dir / f"part_{part:03d}.parquet" for part in range(parts)]
    missing = [(part, file) for part, file in enumerate(files) if not file.exists()]
    if missing:
        with duckdb.connect(config={"memory_limit": "2GB", "threads": 2}) as con:
            con.execute("set enable_progress_bar = false")  # a global option no longer, since DuckDB 2
            con.execute(f"create table lines as select * from read_csv('{base}', header = true)")
            for part, file in missing:
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
                    ) to '{file}.tmp' (format parquet)""")
                os.replace(f"{file}.tmp", file)
    return files


def count_lines(files: list[Path]) -> int:
    with duckdb.connect() as con:
        return con.execute("select count(*) from read_parquet(?)", [[str(f) for f in files]]).fetchone()[0]


def glob_for(data_dir: Path, parts: int) -> str:
    """A glob matching exactly the first `parts` part files (parts is 1, 10 or 100... or any count)."""
    if parts == 1:
        return str(data_dir / "part_000.parquet")
    digits = len(str(parts - 1))
    if parts == 10**digits:
        return str(data_dir / f"part_{'0' * (3 - digits)}{'?' * digits}.parquet")
    raise SystemExit(f"sizes must be 1M, 10M or 100M (a power of ten million lines), not {parts}M")


def profile_settings() -> tuple[int, str]:
    profile = load_settings(project_dir=ROOT).profile
    return profile.output.get("threads", 1), profile.settings.get("memory_limit", "4GB")


def rfm_model_seconds(target: Path, run_results: Path) -> tuple[float, list[str]]:
    """dbt's own execution time of customer_rfm and every model upstream of it, from a build's run_results.json."""
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads(run_results.read_text())["results"]
    upstream, pending = set(), ["model.segkit.customer_rfm"]
    while pending:
        node = pending.pop()
        if node in upstream or not node.startswith("model."):
            continue
        upstream.add(node)
        pending += manifest["nodes"][node]["depends_on"]["nodes"]
    seconds = sum(r["execution_time"] for r in results if r["unique_id"] in upstream)
    return seconds, sorted(node.split(".")[-1] for node in upstream)


def bench_size(millions: int, args, rows: list) -> dict:
    parts_glob = glob_for(args.data_dir, millions)
    files = ensure_parts(args.data_dir, millions)
    lines = count_lines(files)
    label = f"{millions}M"
    print(f"\n== {label}: {lines:,} lines in {len(files)} Parquet files", flush=True)
    work = args.work_dir / label
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "segkit.duckdb"
    env = {"SEGKIT_DB": str(db), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}
    figures = {"lines": lines}

    def record(step: str, measured: Measured, note: str = "") -> Measured:
        if measured.own_peak_gib is not None and measured.peak_gib > measured.own_peak_gib + 0.05:
            note = (f"{note}; " if note else "") + (
                f"peak RSS summed over all its processes, Spark's JVM included (os.wait4 alone: "
                f"{measured.own_peak_gib:.2f} GiB)")
        rows.append((label, step, measured, note))
        (work / f"{re.sub(r'[^a-z0-9]+', '_', step.lower()).strip('_')}.log").write_text(measured.output)
        print(f"  {step:<34} {measured.seconds:8.1f} s {measured.peak_gib:6.2f} GiB  {measured.status} {note}",
              flush=True)
        if measured.status.startswith("failed"):
            print(measured.output[-3000:], file=sys.stderr)
        return measured

    def segkit_steps(engine: str, build_note=lambda: "") -> dict:
        """dbt build, dbt's start-up alone, segkit cluster and segkit report on one engine; their figures."""
        prefix, target = ("", []) if engine == "duckdb" else (f"{engine}: ", ["--target", engine])
        dbt_args = [*target, "--vars", json.dumps({"transactions_path": parts_glob})]
        build = run_measured([str(BIN / "dbt"), "build", *dbt_args, "--target-path", str(work / f"target_{engine}")],
                             args.timeout, env_of[engine])
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
                         "median of 3: " + ", ".join(f"{measured.seconds:.1f}" for measured in startups) + " s")
        cluster = record(f"{prefix}segkit cluster", run_measured(
            [str(BIN / "segkit"), "cluster", "--no-report", *target], args.timeout, env_of[engine]))
        report = record(f"{prefix}segkit report", run_measured(
            [str(BIN / "segkit"), "report", *target, "--report-path", str(work / f"report_{engine}.html")],
            args.timeout, env_of[engine]))
        steps = dict(dbt_build=build.seconds, dbt_startup=startup.seconds, dbt_peak=build.peak_gib,
                     cluster=cluster.seconds, report=report.seconds,
                     peak=max(build.peak_gib, cluster.peak_gib, report.peak_gib),
                     segkit_ok=cluster.status == report.status == "ok",
                     end_to_end=build.seconds - startup.seconds + cluster.seconds + report.seconds)
        note = "sum of the three steps minus the start-up"
        if prefix and figures.get("end_to_end"):
            # With nothing selected dbt opens no Spark session: each step's JVM start stays in the sum.
            note += (f" (which starts no JVM); {steps['end_to_end'] / figures['end_to_end']:.1f}x DuckDB's "
                     f"{figures['end_to_end']:.1f} s")
        rows.append((label, f"{prefix}segkit end to end, excluding dbt start-up",
                     Measured(steps["end_to_end"], steps["peak"], "ok" if steps["segkit_ok"] else "failed", ""), note))
        return steps

    # Spark gets a metastore and warehouse of its own per size, so every Spark build starts from nothing.
    env_of = {"duckdb": env, "spark": {**env, "SEGKIT_SPARK_DIR": str(work / "spark")}}
    figures.update(segkit_steps("duckdb"))
    if "end_to_end" not in figures:
        return figures
    model_seconds, models = rfm_model_seconds(work / "target_duckdb", work / "duckdb_build_run_results.json")
    figures["rfm_models_seconds"] = model_seconds
    if millions in args.spark_sizes:
        figures["spark"] = segkit_steps("spark", lambda: spark_rfm_differences(db, work / "spark"))

    threads, memory_limit = profile_settings()
    hand = run_measured([sys.executable, str(ROOT / "bench/rfm_query.py"), parts_glob, str(work / "hand.duckdb"),
                         str(threads), memory_limit], args.timeout)
    hand_seconds = float(re.search(r"query seconds ([0-9.]+)", hand.output).group(1)) if hand.status == "ok" else None
    figures["hand_seconds"] = hand_seconds
    record("RFM models in dbt (run_results)", Measured(model_seconds, figures["dbt_peak"], "ok", ""),
           f"{lines / model_seconds / 1e6:.2f}M lines/s; models: {', '.join(models)}")
    if hand_seconds is None:
        record("RFM hand-written DuckDB query", hand, hand.output.strip().splitlines()[-1][:200] if hand.output else "")
    else:
        record("RFM hand-written DuckDB query", hand,
               f"{lines / hand_seconds / 1e6:.2f}M lines/s (query {hand_seconds:.1f} s); "
               f"rows differing from customer_rfm: {rows_differing(db, work / 'hand.duckdb')}")

    for name, variant in (("baseline A (tutorial pandas)", "a"), ("baseline B (good pandas)", "b")):
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
    match = re.fullmatch(r"(\d+)M", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"size '{text}' is not like 10M")
    return int(match.group(1))


def markdown(rows: list, summary: list[str], load: str) -> str:
    lines = [f"Machine load before the run: `{load}`", "",
             "| size | step | wall time | peak RSS | status | notes |", "|---|---|---:|---:|---|---|"]
    for label, step, measured, note in rows:
        if measured is None:
            lines.append(f"| {label} | {step} | | | not run | {note} |")
        else:
            lines.append(f"| {label} | {step} | {measured.seconds:.1f} s | {measured.peak_gib:.2f} GiB | "
                         f"{measured.status} | {note} |")
    return "\n".join(lines + [""] + summary) + "\n"


def targets(figures: dict) -> list[str]:
    """The issue's targets, each with the measured figure and met or missed."""
    out = ["| target | measured | met |", "|---|---|---|"]
    ten, hundred = figures.get(10), figures.get(100)
    for size, f in sorted(figures.items()):
        if f.get("rfm_models_seconds") and f.get("hand_seconds"):
            rate = f["lines"] / f["rfm_models_seconds"]
            ratio = f["rfm_models_seconds"] / f["hand_seconds"]
            out.append(f"| {size}M: RFM feature SQL >= 10M lines/s | {rate / 1e6:.1f}M lines/s | {rate >= 1e7} |")
            out.append(f"| {size}M: RFM SQL within 1.3x of the hand-written query | {ratio:.2f}x | {ratio <= 1.3} |")
    if ten and "end_to_end" in ten:
        e2e = ten["end_to_end"]
        out.append(f"| 10M end to end excl. dbt start-up <= 10 s | {e2e:.1f} s (start-up {ten['dbt_startup']:.1f} s) "
                   f"| {e2e <= 10} |")
        for variant, factor in (("a", 15), ("b", 2)):
            baseline = ten.get(f"baseline_{variant}")
            if baseline is None:
                continue
            bound = "" if baseline.status == "ok" else ">= "
            out.append(f"| 10M vs baseline {variant.upper()} >= {factor}x faster | {bound}{baseline.seconds / e2e:.1f}x "
                       f"({baseline.seconds:.0f} s, {baseline.status}) | {baseline.seconds / e2e >= factor} |")
    if hundred and "end_to_end" in hundred:
        total = hundred["dbt_build"] + hundred["cluster"] + hundred["report"]
        out.append(f"| 100M end to end <= 90 s | {total:.1f} s with dbt start-up, "
                   f"{hundred['end_to_end']:.1f} s without | {total <= 90} |")
        out.append(f"| 100M peak memory <= 4 GiB | {hundred['peak']:.2f} GiB | {hundred['peak'] <= 4} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,10M,100M", help="comma-separated, in millions of lines")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "segkit-bench-data",
                        help="where the generated Parquet parts are cached between runs")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "segkit-bench-work",
                        help="DuckDB files, dbt target folders and reports of the run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results.md", help="the markdown table")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to each segkit step")
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
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load: {load}")
    rows, figures = [], {}
    for millions in sizes:
        figures[millions] = bench_size(millions, args, rows)
        text = markdown(rows, targets(figures), load)
        args.out.write_text(text)  # after each size, so a run stopped early keeps what it measured
    print("\n" + text + f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
