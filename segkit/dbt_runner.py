"""Run the dbt project in a child process, so its DuckDB connection is closed when it returns."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError

# segkit's own checks (the input check before any model, the quality gate and publishing after them) end a build with
# a message that already says what to do. Each of its lines starts with 'segkit: '; the first may follow the engine's
# error prefix ('Invalid Input Error: segkit: ...' on DuckDB, '[USER_RAISED_EXCEPTION] segkit: ...' on Spark).
_SEGKIT_MESSAGE = re.compile(r"^(?:\s*|.*?(?:Error: |\] ))segkit: (.*(?:\n\s*segkit: .*)*)", re.MULTILINE)


@dataclass(frozen=True)
class DbtResult:
    """What a dbt invocation did: its command, exit code and output."""

    command: list[str]
    returncode: int
    output: str

    @property
    def summary(self) -> str:
        """dbt's closing 'Done. PASS=… WARN=…' line, after the lines of any node that warned."""
        lines = self.output.splitlines()
        warned = [line.strip() for line in lines if re.search(r"\d+ of \d+ WARN\b", line)]
        done = [line.strip() for line in lines if "Done. PASS=" in line]
        return "\n".join(warned + (done[-1:] or ["dbt finished."]))


def dbt_executable() -> str:
    """The dbt installed beside this Python, else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise SegkitError("dbt is not installed. Install segkit with its dependencies: `pip install -e .`.")
    return found


def run_dbt(
    project_dir: Path,
    db_path: Path,
    args: tuple[str, ...] = ("build",),
    dbt_vars: dict[str, Any] | None = None,
    target: str | None = None,
) -> DbtResult:
    """Run `dbt <args>` from the project root against db_path (or the dbt target); raise SegkitError when it fails."""
    command = [dbt_executable(), *args, *(["--target", target] if target else [])]
    if dbt_vars:
        command += ["--vars", json.dumps(dbt_vars, default=str)]  # YAML reads 2011-06-01 as a date
    env = {**os.environ, "SEGKIT_DB": str(db_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}
    process = subprocess.run(command, cwd=project_dir, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    returncode, output = process.returncode, process.stdout
    if returncode != 0:
        _raise_for_failure(output, db_path, command)
    return DbtResult(command=command, returncode=returncode, output=output)


def _raise_for_failure(output: str, db_path: Path, command: list[str]) -> None:
    if "Could not set lock" in output or "Conflicting lock" in output:
        raise SegkitError(
            f"dbt could not open {db_path}: another process holds it (DuckDB allows one process per file). "
            "Close other sessions on it (a `duckdb` shell, a notebook, a running `segkit` command) and run again.",
            exit_code=EXIT_DATABASE_LOCKED,
        )
    if "Out of Memory Error" in output:
        raise SegkitError(
            f"DuckDB ran out of memory building {db_path}: the data needs more than the memory_limit in the "
            "`settings` of profiles.yml allows. Raise memory_limit, or set temp_directory there to a folder with "
            "free disk space so DuckDB can spill to it, and run again. Nothing was published: the tables you and "
            "segkit read are as they were."
        )
    stop = _SEGKIT_MESSAGE.search(output)
    if stop:
        message = re.sub(r"\n\s*segkit: ", "\n", stop.group(1))
        raise SegkitError(re.sub(r"\s*SQLSTATE: \w+\s*$", "", message).strip())
    tail = "\n".join(line for line in output.splitlines()[-25:] if line.strip())
    raise SegkitError(
        f"`{' '.join(command[1:])}` failed. The end of dbt's output:\n{tail}\n"
        "Fix what it names (often the input path or the column mapping in the dbt vars) and run again."
    )
