"""`remind` over N due checklists to a local SMTP sink vs a raw smtplib loop.

The sink is aiosmtpd's discarding handler in a process of its own, shared by both sides.
Baseline: one smtplib connection sending N ready-made messages of the same size as the
reminders (one real reminder, rendered once, sent N times). monthlydocs: reminders.run()
at a moment when every checklist has its first step due: it plans, records the steps and
messages, then composes each email from the database and sends it over one connection.

Memory: the same run in a process of its own for N/10 and N checklists, peak RSS (VmHWM).
"""

from __future__ import annotations

import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import Line, Report, Workspace, clean_env, median_time

LINK_SENT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
AS_OF = LINK_SENT + timedelta(days=3, hours=2)  # day 3, 11:00 in Paris: step 1 due

MEMORY_SCRIPT = """
import re, sys
from datetime import datetime
from pathlib import Path
from monthlydocs import reminders
from monthlydocs.config import load_settings
from monthlydocs.db import open_db
settings = load_settings(Path(sys.argv[1]), environ={})
db = open_db(settings.database_path)
report = reminders.run(db, settings, datetime.fromisoformat(sys.argv[2]))
assert report.delivery.failed == 0, report.delivery.errors[:3]
status = Path("/proc/self/status").read_text()
print(int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) * 1024)
"""


def run(report: Report, clients: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-remind-") as folder:
        port = _free_port()
        sink = _start_sink(port)
        try:
            big = _prepared(Path(folder) / "big", clients, port)
            small = _prepared(Path(folder) / "small", max(clients // 10, 1), port)
            sample = _one_message(big)
            baseline = median_time(
                lambda _: _raw_loop(port, sample, clients), max(repeat // 2, 1)
            )
            value = median_time(
                lambda db: _remind(big, db),
                max(repeat // 2, 1),
                setup=big.open,
                teardown=lambda db: db.close(),
            )
            report.add(
                Line(
                    f"remind, {clients:,} due checklists (messages/s)",
                    clients / baseline,
                    clients / value,
                    goal=">= 0.5x",
                    passed=baseline / value >= 0.5,
                    unit="msg/s",
                )
            )
            peaks = [_peak_rss(workspace) for workspace in (small, big)]
            report.add(
                Line(
                    f"remind memory, max RSS: {max(clients // 10, 1):,} vs {clients:,}",
                    peaks[0] / 2**20,
                    peaks[1] / 2**20,
                    unit="MB",
                )
            )
        finally:
            sink.terminate()
            sink.wait(timeout=10)


def _prepared(folder: Path, count: int, port: int) -> Workspace:
    """A workspace of ``count`` clients, each with a checklist whose link went out."""
    from monthlydocs import checklists, templates
    from monthlydocs.db import open_db
    from monthlydocs.workspace import set_value

    workspace = Workspace(folder, clients=count)
    text = workspace.config.read_text(encoding="utf-8")
    for key, value in (
        ("backend", "smtp"),
        ("host", "127.0.0.1"),
        ("port", port),
        ("from_address", "office@firm.example"),
    ):
        text = set_value(text, "email", key, value)
    workspace.config.write_text(text, encoding="utf-8")
    from monthlydocs.config import load_settings

    workspace.settings = load_settings(workspace.config, environ={})
    db = open_db(workspace.database)
    try:
        template = templates.get_template(db, "bench")
        checklists.generate(
            db, [checklists.Request(template)], LINK_SENT, LINK_SENT.date(), send=False
        )
        db.execute("UPDATE checklists SET link_sent_at = '2026-12-01T08:00:00Z'")
        db.conn.commit()
    finally:
        db.close()
    import shutil

    shutil.copyfile(workspace.database, workspace.snapshot)
    return workspace


def _remind(workspace: Workspace, db) -> None:
    from monthlydocs import reminders

    result = reminders.run(db, workspace.settings, AS_OF)
    if result.delivery.failed or not result.delivery.sent:
        raise RuntimeError(f"remind failed: {result.delivery.errors[:3]}")


def _one_message(workspace: Workspace) -> bytes:
    """A real reminder, rendered by monthlydocs, as the baseline's payload."""
    from monthlydocs import reminders
    from monthlydocs.compose import build_for_channel
    from monthlydocs.outbox import claim, due_ids

    db = workspace.open()
    try:
        reminders.queue(db, workspace.settings, AS_OF)
        message = claim(db, due_ids(db, AS_OF, "email")[0], AS_OF)
        return build_for_channel(db, workspace.settings, message).data
    finally:
        db.close()


def _raw_loop(port: int, payload: bytes, count: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        for number in range(count):
            smtp.sendmail("office@firm.example", [f"c{number}@client.example"], payload)


def _peak_rss(workspace: Workspace) -> int:
    workspace.restore()
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(workspace.config), AS_OF.isoformat()],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=900,
    )
    if done.returncode:
        raise RuntimeError(done.stderr)
    return int(done.stdout.strip())


def _start_sink(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("the SMTP sink did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
