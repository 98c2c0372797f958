"""`generate --no-send` for N clients (one template of 8 slots) vs raw executemany.

Baseline, in process: the same checklist rows (tokens made beforehand) and 8 item rows
per checklist, inserted with two sqlite3 executemany calls and one commit into a fresh
file with the same schema and pragmas. monthlydocs: checklists.generate() on a workspace
where N active clients are assigned the template (it also reads the targets, makes the
tokens and writes one event per checklist).

Process line: the `monthlydocs generate` command against a stdlib script that reads the
same workspace and writes the same rows (process start included on both sides).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from . import (
    SLOTS,
    TEMPLATE,
    Line,
    Report,
    Workspace,
    empty_database,
    median_time,
    monthlydocs_command,
    run_process,
)

CHECKLIST_SQL = (
    "INSERT INTO checklists (id, client_id, template_id, template_name, period, due_on,"
    " token, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ITEM_SQL = (
    "INSERT INTO checklist_items (checklist_id, name, description, optional, multiple,"
    " position) VALUES (?, ?, ?, ?, ?, ?)"
)

# The baseline program: stdlib only, same reads and writes as the command.
RAW_SCRIPT = f"""
import hashlib, secrets, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA synchronous = NORMAL")
tid, name = conn.execute("SELECT id, name FROM templates WHERE slug = ?",
                         [{TEMPLATE!r}]).fetchone()
slots = conn.execute("SELECT name, description, optional, multiple, position"
                     " FROM template_slots WHERE template_id = ? ORDER BY position",
                     [tid]).fetchall()
clients = [r[0] for r in conn.execute(
    "SELECT client_id FROM assignments WHERE template_id = ?", [tid])]
stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
rows = []
for n, cid in enumerate(clients, 1):
    token = secrets.token_urlsafe(24)
    digest = hashlib.sha256(token.encode()).hexdigest()
    rows.append((n, cid, tid, name, "2026-12", "2026-12-10", token, digest, stamp))
with conn:
    conn.executemany({CHECKLIST_SQL!r}, rows)
    conn.executemany({ITEM_SQL!r}, ((r[0], *s) for r in rows for s in slots))
"""

# Peak memory of generate() in a process of its own: with "trace", the tracemalloc
# peak (Python objects only); without, the process's max RSS (SQLite's cache included):
# VmHWM on Linux, since ru_maxrss keeps the parent's peak from before exec.
MEMORY_SCRIPT = f"""
import re, resource, sys, tracemalloc
from pathlib import Path
from monthlydocs.checklists import Request, generate
from monthlydocs.config import load_settings
from monthlydocs.db import open_db
from monthlydocs.templates import get_template
from monthlydocs.timeutil import local_date, utcnow
settings = load_settings(Path(sys.argv[1]))
db = open_db(settings.database_path)
template = get_template(db, {TEMPLATE!r})
now = utcnow()
if sys.argv[2] == "trace":
    tracemalloc.start()
generate(db, [Request(template)], now, local_date(now, settings.firm.timezone),
         send=False)
if sys.argv[2] == "trace":
    print(tracemalloc.get_traced_memory()[1])
else:
    try:
        with open("/proc/self/status") as status:
            print(int(re.search(r"VmHWM:\\s*(\\d+)", status.read())[1]) * 1024)
    except OSError:
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def run(report: Report, clients: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="monthlydocs-bench-") as tmp:
        folder = Path(tmp)
        workspace = Workspace(folder / "ws", clients)
        label = f"generate --no-send, {clients:,} clients"
        raw = _raw_baseline(empty_database(folder / "raw"), workspace, clients, repeat)
        report.add(Line.ratio_goal(label, raw, _core(workspace, clients, repeat), 2))

        command = [
            *monthlydocs_command(),
            "--config",
            str(workspace.config),
            "generate",
            "--template",
            TEMPLATE,
            "--no-send",
        ]
        raw_process = median_time(
            lambda path: run_process([sys.executable, "-c", RAW_SCRIPT, str(path)]),
            repeat,
            setup=workspace.restore,
        )
        process = median_time(
            lambda _: run_process(command), repeat, setup=workspace.restore
        )
        report.add(Line.ratio_goal(label + " (process)", raw_process, process, 2))

        small = max(clients // 10, 1)
        peaks = [_memory(folder / f"mem{n}", n) for n in (small, clients)]
        for index, name in enumerate(("tracemalloc peak", "max RSS")):
            report.add(
                Line(
                    f"generate memory, {name}: {small:,} vs {clients:,}",
                    peaks[0][index],
                    peaks[1][index],
                    unit="MB",
                )
            )


def _core(workspace: Workspace, clients: int, repeat: int) -> float:
    from monthlydocs.checklists import Request, generate
    from monthlydocs.templates import get_template
    from monthlydocs.timeutil import local_date, utcnow

    now = utcnow()
    today = local_date(now, workspace.settings.firm.timezone)

    def setup():
        db = workspace.open()
        return db, get_template(db, TEMPLATE)

    def timed(state):
        db, template = state
        result = generate(db, [Request(template)], now, today, send=False)
        assert result.created == clients, result

    return median_time(timed, repeat, setup, teardown=lambda state: state[0].close())


def _raw_baseline(fresh, workspace: Workspace, clients: int, repeat: int) -> float:
    from monthlydocs.links import new_token

    template_id = workspace.template_id
    checklists = [
        (
            n,
            n,
            template_id,
            "Benchmark month",
            "2026-12",
            "2026-12-10",
            *new_token(),
            "2026-12-01T09:00:00Z",
        )
        for n in range(1, clients + 1)
    ]
    slots = [
        (f"Document {p}", f"What document {p} is for.", int(p > 6), int(p % 2 == 0), p)
        for p in range(1, SLOTS + 1)
    ]
    items = [(row[0], *slot) for row in checklists for slot in slots]

    def setup() -> sqlite3.Connection:
        conn = sqlite3.connect(fresh())
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def timed(conn: sqlite3.Connection) -> None:
        with conn:
            conn.executemany(CHECKLIST_SQL, checklists)
            conn.executemany(ITEM_SQL, items)

    return median_time(timed, repeat, setup, teardown=lambda conn: conn.close())


def _memory(folder: Path, clients: int) -> tuple[float, float]:
    """(tracemalloc peak, max RSS) in MB of one generate() for ``clients`` clients."""
    workspace = Workspace(folder, clients)
    peaks = []
    for mode in ("trace", "rss"):
        workspace.restore()
        out = run_process(
            [sys.executable, "-c", MEMORY_SCRIPT, str(workspace.config), mode]
        )
        peaks.append(int(out) / 2**20)
    return peaks[0], peaks[1]
