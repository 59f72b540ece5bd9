"""How `dbt build` scales with the number of transaction lines, on one machine.

Generates demo transactions for `--customers` customers, replicates them `--copies` times with
shifted customer and invoice ids (so every copy is a distinct set of customers) into Parquet,
then times a full `dbt build` for 1 copy and for all copies, side by side, and reports peak memory.

    .venv/bin/python benchmarks/bench_dbt.py --customers 100000 --copies 10
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segkit.demo_data import generate_demo_data  # noqa: E402
from segkit.dbt_runner import dbt_executable  # noqa: E402


def replicate(source_csv: Path, copies: int, folder: Path) -> int:
    """Write `copies` Parquet files of the demo lines with disjoint customer ids; return total lines."""
    con = duckdb.connect()
    con.execute(f"create table lines as select * from read_csv('{source_csv}', all_varchar = true, header = true)")
    for copy in range(copies):
        con.execute(f"""
            copy (
                select * replace (
                    case when trim("Customer ID") = '' or "Customer ID" is null then "Customer ID"
                         else cast(try_cast(trim("Customer ID") as double) + {copy} * 1000000 as varchar)
                    end as "Customer ID",
                    regexp_replace(Invoice, '([0-9]+)', '{copy}\\1') as Invoice
                )
                from lines
            ) to '{folder}/part_{copy:03d}.parquet' (format parquet)""")
    total = con.execute(f"select count(*) from read_parquet('{folder}/*.parquet')").fetchone()[0]
    con.close()
    return total


def timed_build(transactions_path: str, db_path: Path) -> tuple[float, float]:
    """Run dbt build in a child process; return (seconds, peak RSS of the largest child so far in GiB)."""
    started = time.perf_counter()
    process = subprocess.run(
        [dbt_executable(), "build", "--vars", f"{{transactions_path: '{transactions_path}'}}"],
        cwd=ROOT, env={"SEGKIT_DB": str(db_path), "PATH": "/usr/bin:/bin", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True, text=True,
    )
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(process.stdout[-3000:] + process.stderr[-3000:])
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        summary = generate_demo_data(folder / "base.csv.gz", customers=args.customers, seed=42)
        print(f"generated {summary.lines:,} lines for {summary.customers:,} customers in {time.perf_counter() - started:.0f} s")
        (folder / "one").mkdir()
        (folder / "all").mkdir()
        one = replicate(folder / "base.csv.gz", 1, folder / "one")
        total = replicate(folder / "base.csv.gz", args.copies, folder / "all")
        print(f"{'lines':>12} {'customers':>10} {'dbt build s':>12} {'lines/s':>12} {'peak GiB':>9}")
        for lines, customers, path in ((one, args.customers, folder / "one"), (total, args.customers * args.copies, folder / "all")):
            seconds, peak = timed_build(f"{path}/*.parquet", folder / f"{path.name}.duckdb")
            with duckdb.connect(str(folder / f"{path.name}.duckdb"), read_only=True) as con:
                in_mart = con.execute("select count(*) from customer_rfm").fetchone()[0]
                balanced = con.execute("""select sum(case when reason = 'rows_read' then row_count end)
                    = sum(case when reason <> 'rows_read' then row_count end) from data_quality_summary""").fetchone()[0]
            size = (folder / f"{path.name}.duckdb").stat().st_size / 1024**3
            print(f"{lines:>12,} {in_mart:>10,} {seconds:>12.1f} {lines / seconds:>12,.0f} {peak:>9.2f}"
                  f"   db {size:.2f} GiB, summary balances: {balanced}")
    print(f"python peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f} GiB")


if __name__ == "__main__":
    main()
