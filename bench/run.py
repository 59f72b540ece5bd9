"""segkit against pandas, at several sizes, on the same Parquet files. See bench/README.md.

    .venv/bin/python bench/run.py --sizes 1M,10M,100M

Data: the demo generator writes about 1M lines for 33,250 customers; the benchmark stores that as Parquet part
files, each a copy with its own customer and invoice ids, so N million lines are the first N parts (generated
once, cached in --data-dir). Every step runs as its own child process, with a time bound; wall time and peak
RSS are that process's own (os.wait4). Baselines also run under a memory cap (RLIMIT_AS).
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
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GIB = 1024**3
PART_CUSTOMERS = 33_250  # about 1,000,000 lines per part
OUT_OF_MEMORY = re.compile(r"MemoryError|Unable to allocate|bad_alloc|Out of Memory|malloc of size|Cannot allocate memory")


@dataclass
class Measured:
    seconds: float
    peak_gib: float
    status: str  # 'ok', 'timed out after N s', 'out of memory at N GiB cap' or 'failed (exit N)'
    output: str


def run_measured(command: list[str], timeout: float, env: dict | None = None, memory_cap_gib: float | None = None) -> Measured:
    """Run one command as a fresh child; its wall time and peak RSS, killed (whole group) past `timeout`."""
    def limit_memory():
        if memory_cap_gib:
            cap = int(memory_cap_gib * GIB)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log,
                                 stderr=subprocess.STDOUT, text=True, preexec_fn=limit_memory, start_new_session=True)
        timed_out = False
        while True:
            pid, wait_status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                os.killpg(child.pid, signal.SIGKILL)
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
    return Measured(seconds, usage.ru_maxrss * 1024 / GIB, status, output)


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
    output = yaml.safe_load((ROOT / "profiles.yml").read_text())["segkit"]["outputs"]["dev"]
    return output.get("threads", 1), output.get("settings", {}).get("memory_limit", "4GB")


def rfm_model_seconds(target: Path) -> tuple[float, list[str]]:
    """dbt's own execution time of customer_rfm and every model upstream of it, from run_results.json."""
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
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
    dbt_vars = ["--vars", json.dumps({"transactions_path": parts_glob}), "--target-path", str(work / "target")]
    figures = {"lines": lines}

    def record(step: str, measured: Measured, note: str = "") -> Measured:
        rows.append((label, step, measured, note))
        (work / f"{re.sub(r'[^a-z0-9]+', '_', step.lower()).strip('_')}.log").write_text(measured.output)
        print(f"  {step:<34} {measured.seconds:8.1f} s {measured.peak_gib:6.2f} GiB  {measured.status} {note}",
              flush=True)
        if measured.status.startswith("failed"):
            print(measured.output[-3000:], file=sys.stderr)
        return measured

    build = record("dbt build", run_measured([str(BIN / "dbt"), "build", *dbt_vars], args.timeout, env))
    if build.status != "ok":
        return figures
    model_seconds, models = rfm_model_seconds(work / "target")
    shutil.copy(work / "target/run_results.json", work / "build_run_results.json")
    # dbt's fixed cost: start-up, project parsing and the input checks, with no model selected.
    startup = record("dbt start-up (nothing selected)", run_measured(
        [str(BIN / "dbt"), "build", "--select", "nothing_is_named_this", *dbt_vars], args.timeout, env))
    figures.update(dbt_build=build.seconds, dbt_startup=startup.seconds, dbt_peak=build.peak_gib,
                   rfm_models_seconds=model_seconds)
    cluster = record("segkit cluster", run_measured(
        [str(BIN / "segkit"), "cluster", "--no-report"], args.timeout, env))
    report = record("segkit report", run_measured(
        [str(BIN / "segkit"), "report", "--report-path", str(work / "report.html")], args.timeout, env))
    figures.update(cluster=cluster.seconds, report=report.seconds,
                   peak=max(build.peak_gib, cluster.peak_gib, report.peak_gib),
                   segkit_ok=cluster.status == report.status == "ok")
    figures["end_to_end"] = build.seconds - startup.seconds + cluster.seconds + report.seconds
    rows.append((label, "segkit end to end, excluding dbt start-up",
                 Measured(figures["end_to_end"], figures["peak"], "ok" if figures["segkit_ok"] else "failed", ""),
                 "sum of the three steps minus the start-up"))

    threads, memory_limit = profile_settings()
    hand = run_measured([sys.executable, str(ROOT / "bench/rfm_query.py"), parts_glob, str(work / "hand.duckdb"),
                         str(threads), memory_limit], args.timeout)
    hand_seconds = float(re.search(r"query seconds ([0-9.]+)", hand.output).group(1)) if hand.status == "ok" else None
    figures["hand_seconds"] = hand_seconds
    record("RFM models in dbt (run_results)", Measured(model_seconds, build.peak_gib, "ok", ""),
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
    args = parser.parse_args()
    sizes = [size_millions(size) for size in args.sizes.split(",")]
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
