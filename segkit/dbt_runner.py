"""Run the dbt project in a child process, so its DuckDB connection is closed when it returns."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from segkit.config import Settings
from segkit.errors import EXIT_DATABASE_LOCKED, SegkitError
from segkit.warehouse import disk_full_message

log = logging.getLogger("segkit")

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

    @property
    def counts(self) -> dict[str, int]:
        """The counts of dbt's closing line: PASS, WARN, ERROR, SKIP, NO-OP and TOTAL."""
        done = [line for line in self.output.splitlines() if "Done. PASS=" in line]
        return {name: int(n) for name, n in re.findall(r"([A-Z-]+)=(\d+)", done[-1])} if done else {}


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
    settings: Settings,
    args: tuple[str, ...] = ("build",),
    dbt_vars: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> DbtResult:
    """Run `dbt <args>` from the project folder on the settings' profile, target and DuckDB file, the ones segkit
    itself works on; raise SegkitError when it fails. progress gets each line of dbt's output as dbt writes it."""
    profile = settings.profile
    if profile.profiles_dir is None:
        raise SegkitError(f"dbt needs a profiles.yml, and none was found for {settings.project_dir}: put one in the "
                          "project folder or ~/.dbt, or name its folder with --profiles-dir or DBT_PROFILES_DIR.")
    if profile.engine == "duckdb" and profile.path != str(settings.db_path):
        raise SegkitError(f"dbt would build {profile.path or ':memory:'}, the path of the target {profile.target!r} "
                          f"in {profile.profiles_dir / 'profiles.yml'}, while segkit works on {settings.db_path}. "
                          "Name the file in one place: path: \"{{ env_var('SEGKIT_DB', '...') }}\" in profiles.yml "
                          "follows SEGKIT_DB.")
    command = [dbt_executable(), *args, "--profiles-dir", str(profile.profiles_dir), "--profile", profile.name,
               "--target", profile.target]
    if dbt_vars:
        command += ["--vars", json.dumps(dbt_vars, default=str)]  # YAML reads 2011-06-01 as a date
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_USE_COLORS": "false"}
    if profile.engine == "duckdb":
        env["SEGKIT_DB"] = str(settings.db_path)
    lines = []
    with subprocess.Popen(command, cwd=settings.project_dir, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
        for line in process.stdout:
            lines.append(line)
            log.debug("dbt: %s", line.rstrip())
            if progress is not None:
                progress(line.rstrip())
    returncode, output = process.returncode, "".join(lines)
    if returncode != 0:
        _raise_for_failure(output, settings.db_path, command)
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
    # A full disk fails a model, and then publishing refuses: the cause is the disk, so say that.
    disk_full = disk_full_message(output, db_path)
    if disk_full:
        raise SegkitError(f"{disk_full} Nothing was published: the tables you and segkit "
                          "read are as they were.")
    stop = _SEGKIT_MESSAGE.search(output)
    if stop:
        message = re.sub(r"\n\s*segkit: ", "\n", stop.group(1))
        raise SegkitError(re.sub(r"\s*SQLSTATE: \w+\s*$", "", message).strip())
    if "CSV Error on Line" in output:  # a line the input check did not read: the file changed since
        from segkit.reader import describe_csv_error

        file = re.search(r"^\s*file = (.+)$", output, re.MULTILINE)
        raise SegkitError(describe_csv_error(file.group(1).strip() if file else "the input",
                                             output[output.index("CSV Error on Line"):]))
    tail = "\n".join(line for line in output.splitlines()[-25:] if line.strip())
    raise SegkitError(
        f"`{' '.join(command[1:])}` failed. The end of dbt's output:\n{tail}\n"
        "Fix what it names (often the input path or the column mapping in the dbt vars) and run again."
    )
