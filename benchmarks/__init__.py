"""Benchmarks for `make bench`: each measurement beside a raw baseline from the same run.

Timings are medians of a few repetitions; setup (building workspaces, copying database
files) happens outside the timed section. A scenario module has ``run(report, clients,
repeat)`` and adds Line objects and notes to the report.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SLOTS = 8
TEMPLATE = "bench"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Line:
    """One row of the results table: a measurement beside its baseline."""

    scenario: str
    baseline: float
    value: float
    goal: str = "-"
    passed: bool | None = None  # None: informational, no goal
    unit: str = "s"

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    @classmethod
    def ratio_goal(cls, scenario: str, baseline: float, value: float, most: float):
        return cls(scenario, baseline, value, f"<= {most:g}x", value <= most * baseline)

    @classmethod
    def time_goal(cls, scenario: str, baseline: float, value: float, seconds: float):
        return cls(
            scenario, baseline, value, f"< {seconds * 1000:g} ms", value < seconds
        )

    def cells(self) -> list[str]:
        verdict = {True: "PASS", False: "MISS", None: "info"}[self.passed]
        return [
            self.scenario,
            _amount(self.baseline, self.unit),
            _amount(self.value, self.unit),
            f"{self.ratio:.2f}x",
            self.goal,
            verdict,
        ]


def _amount(value: float, unit: str) -> str:
    return f"{value * 1000:.1f} ms" if unit == "s" else f"{value:.1f} {unit}"


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, line: Line) -> None:
        self.lines.append(line)
        print("  " + " | ".join(line.cells()), file=sys.stderr, flush=True)


def median_time(
    timed: Callable[[Any], object],
    repeat: int,
    setup: Callable[[], Any] = lambda: None,
    teardown: Callable[[Any], object] = lambda state: None,
) -> float:
    """Median seconds of ``timed(setup())``; setup and teardown are not timed."""
    times = []
    for _ in range(repeat):
        state = setup()
        start = time.perf_counter()
        timed(state)
        times.append(time.perf_counter() - start)
        teardown(state)
    return statistics.median(times)


def clean_env() -> dict[str, str]:
    """The environment for child processes, without MONTHLYDOCS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONTHLYDOCS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    return env


def monthlydocs_command() -> list[str]:
    """The installed script beside this Python, as cron would start it."""
    script = Path(sys.executable).with_name("monthlydocs")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monthlydocs"]


def run_process(argv: list[str]) -> str:
    """Run a child process to completion; its stdout. Fails loudly on an error."""
    done = subprocess.run(argv, capture_output=True, text=True, env=clean_env())
    if done.returncode:
        raise RuntimeError(f"{argv[:4]} failed ({done.returncode}): {done.stderr}")
    return done.stdout


class Workspace:
    """A monthlydocs workspace in ``folder``, with a snapshot of its database.

    ``restore()`` puts the snapshot back, so each repetition starts from the same state.
    """

    def __init__(self, folder: Path, clients: int = 0, assigned: bool = True):
        from monthlydocs.db import open_db
        from monthlydocs.workspace import create_workspace

        self.settings = create_workspace(folder, {"firm": {"country": "FR"}})
        self.config = self.settings.path
        self.database = self.settings.database_path
        db = open_db(self.database)
        try:
            self.template_id = _add_template(db)
            _add_clients(db, clients, self.template_id if assigned else None)
        finally:
            db.close()  # the last connection to close checkpoints the WAL
        self.snapshot = folder / "snapshot.db"
        shutil.copyfile(self.database, self.snapshot)

    def restore(self) -> Path:
        for suffix in ("-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.snapshot, self.database)
        return self.database

    def open(self):
        from monthlydocs.db import open_db

        return open_db(self.restore())


def _add_template(db) -> int:
    from monthlydocs.templates import save_slot, save_template
    from monthlydocs.timeutil import utcnow

    template_id, _ = save_template(db, TEMPLATE, utcnow(), name="Benchmark month")
    for position in range(1, SLOTS + 1):
        save_slot(
            db,
            TEMPLATE,
            f"Document {position}",
            description=f"What document {position} is for.",
            optional=position > 6,
            multiple=position % 2 == 0,
        )
    return template_id


def _add_clients(db, count: int, template_id: int | None) -> None:
    """Bulk rows straight into the tables: setup, not what is measured."""
    from monthlydocs.timeutil import iso, utcnow

    stamp = iso(utcnow())
    with db.conn:
        db.conn.executemany(
            "INSERT INTO clients (id, name, email, language, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                (i, f"Client {i}", f"contact{i}@client{i}.example", "fr", stamp, stamp)
                for i in range(1, count + 1)
            ),
        )
        if template_id is not None:
            db.conn.executemany(
                "INSERT INTO assignments (client_id, template_id, assigned_at)"
                " VALUES (?, ?, ?)",
                ((i, template_id, stamp) for i in range(1, count + 1)),
            )


def empty_database(folder: Path) -> Callable[[], Path]:
    """A fresh database file with the schema; returns a function giving a new copy."""
    from monthlydocs.db import open_db

    folder.mkdir(parents=True, exist_ok=True)
    snapshot, target = folder / "schema.db", folder / "raw.db"
    open_db(snapshot).close()

    def copy() -> Path:
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(snapshot, target)
        return target

    return copy
