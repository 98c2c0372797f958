"""Process wall time of `monthlydocs --help` and `monthlydocs status` vs `python -c pass`.

cron starts the command often, so its imports must stay lazy. Baseline: the same Python
doing nothing, which is the floor every command pays. `status` runs on a workspace of N
clients with this period's checklists generated, its table written to a pipe. The
slowest imports of `import monthlydocs.cli` (python -X importtime) follow the table.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from . import (
    TEMPLATE,
    Line,
    Report,
    Workspace,
    clean_env,
    median_time,
    monthlydocs_command,
    run_process,
)

HELP_GOAL_S = 0.25
TOP_IMPORTS = 10


def run(report: Report, clients: int, repeat: int) -> None:
    runs = max(repeat * 3, 10)  # short processes: more runs for a steady median
    python = median_time(lambda _: run_process([sys.executable, "-c", "pass"]), runs)
    command = monthlydocs_command()
    help_time = median_time(lambda _: run_process([*command, "--help"]), runs)
    report.add(Line.time_goal("monthlydocs --help", python, help_time, HELP_GOAL_S))

    with tempfile.TemporaryDirectory(prefix="monthlydocs-bench-") as tmp:
        workspace = Workspace(Path(tmp) / "ws", clients)
        config = str(workspace.config)
        run_process(
            [
                *command,
                "--config",
                config,
                "generate",
                "--template",
                TEMPLATE,
                "--no-send",
            ]
        )
        status = median_time(
            lambda _: run_process([*command, "--config", config, "status"]), repeat
        )
    report.add(Line(f"monthlydocs status, {clients:,} checklists", python, status))
    report.notes.extend(["", *slowest_imports()])


def slowest_imports() -> list[str]:
    """The TOP_IMPORTS largest cumulative import times of ``import monthlydocs.cli``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import monthlydocs.cli"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    )
    costs = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            costs.append((int(parts[1]), parts[2].rstrip()))
    costs.sort(reverse=True)
    lines = [
        f"Slowest imports of `import monthlydocs.cli` (cumulative, "
        f"python -X importtime), top {TOP_IMPORTS}:"
    ]
    lines += [
        f"  {us / 1000:7.1f} ms  {name.strip()}" for us, name in costs[:TOP_IMPORTS]
    ]
    return lines
