"""The daemon: a real `monthlydocs daemon` process (start line, lock, SIGTERM, SIGINT), the
loop stopped in the middle of a run, the job wrapper, and the schedule it builds."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import NOW, SmtpSink, use_smtp
from monthlydocs import checklists, clients, daemon, outbox, templates
from monthlydocs.config import load_settings, settings_from_dict
from monthlydocs.db import open_db
from monthlydocs.errors import DaemonRunning, DeliveryError
from monthlydocs.workspace import example_templates_path

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
WAIT_S = 30  # upper bound while polling for a line; a passing run takes far less


# -- a real daemon process ---------------------------------------------------------------------


class Lines:
    """The lines a process writes to one pipe, read by a thread, waited for with a
    deadline (polling the queue: no fixed sleeps)."""

    def __init__(self, stream):
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.queue.put(line.rstrip("\n"))
        self.queue.put(None)

    def wait_for(self, pattern: str, timeout: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(
            f"no line matching {pattern!r}; the process wrote {self.seen}"
        )

    def rest(self) -> list[str]:
        """Everything still to come, once the process has ended."""
        lines = []
        while (line := self.queue.get(timeout=WAIT_S)) is not None:
            lines.append(line)
        self.seen.extend(lines)
        return lines


def start_daemon(config: Path) -> tuple[subprocess.Popen, Lines, Lines]:
    process = subprocess.Popen(
        [sys.executable, "-m", "monthlydocs", "--config", str(config), "daemon"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    return process, Lines(process.stdout), Lines(process.stderr)


@pytest.fixture
def processes():
    """Daemons started by a test; any still running at the end are killed by PID."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=WAIT_S)


def test_daemon_process_starts_refuses_a_second_and_stops_on_signals(
    workspace, processes
):
    first, out, err = start_daemon(workspace)
    processes.append(first)
    start = out.wait_for(r"daemon started")
    assert f"PID {first.pid}" in start
    assert (
        "remind every 15 min" in start
        and "generate daily at 07:00 Europe/Paris" in start
    )
    # The reminder run at start, as one dated line.
    out.wait_for(
        rf"^{STAMP} remind: 0 clients reminded, 0 notifications, 0 sent, 0 failed$"
    )
    lock = Path(
        str(load_settings(workspace, environ={}).database_path) + ".daemon.lock"
    )
    assert lock.read_text().strip() == str(first.pid)

    second = subprocess.run(
        [sys.executable, "-m", "monthlydocs", "--config", str(workspace), "daemon"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert second.returncode == 1
    assert second.stdout == ""
    [line] = second.stderr.splitlines()
    assert line.startswith("Error: ") and "already running" in line
    assert f"PID {first.pid}" in line
    assert first.poll() is None  # the first one is unaffected

    signalled = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=WAIT_S) == 0
    # The loop sleeps up to a minute between checks: only the stop event wakes it this soon.
    assert time.monotonic() - signalled < 10
    assert out.rest()[-1:] and re.match(rf"^{STAMP} daemon stopped$", out.seen[-1])
    assert err.rest() == []

    # The lock went with it: a new daemon starts, and Ctrl-C (SIGINT) stops it cleanly.
    third, out3, err3 = start_daemon(workspace)
    processes.append(third)
    out3.wait_for(rf"^{STAMP} remind: ")
    third.send_signal(signal.SIGINT)
    assert third.wait(timeout=WAIT_S) == 0
    assert out3.rest()[-1].endswith("daemon stopped")
    assert err3.rest() == []


# -- stopping in the middle of a run -----------------------------------------------------------


def seed_due_reminders(workspace: Path, count: int) -> datetime:
    """``count`` clients whose link went out on NOW; returns when their first reminder
    (day 3) is due, 10:00 in Paris."""
    settings = load_settings(workspace, environ={})
    db = open_db(settings.database_path)
    templates.load_file(db, example_templates_path(), NOW)
    monthly = templates.get_template(db, "monthly")
    ids = [
        clients.add_client(
            db,
            clients.ClientInput(f"Client {n}", f"c{n}@example.com"),
            NOW,
            region="FR",
        )
        for n in range(count)
    ]
    clients.assign(db, ids, monthly["id"], NOW)
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    assert (
        outbox.deliver(db, settings, NOW, "email").sent == count
    )  # the links, to files
    db.close()
    return NOW + timedelta(days=3)


class StoppingSink(SmtpSink):
    """An SMTP server that asks the daemon to stop as the first message arrives."""

    def __init__(self, stop: threading.Event):
        self.stop_event = stop
        super().__init__()

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        self.stop_event.set()
        return answer


def test_stop_during_a_run_finishes_the_message_in_flight_and_leaves_the_rest(
    workspace,
):
    when = seed_due_reminders(workspace, 3)
    stop = threading.Event()
    sink = StoppingSink(stop)
    try:
        use_smtp(workspace, sink.port)
        settings = load_settings(workspace, environ={})
        lines: list[str] = []
        runner = threading.Thread(
            target=daemon.run_daemon,
            args=(settings,),
            kwargs={"stop": stop, "log": lines.append, "clock": lambda: when},
        )
        runner.start()
        runner.join(timeout=WAIT_S)
        assert not runner.is_alive()
    finally:
        sink.down()
    assert len(sink.messages) == 1
    assert lines == [
        "2026-12-04T09:00:00Z remind: 3 clients reminded, 0 notifications, 1 sent, 0 failed",
        "2026-12-04T09:00:00Z daemon stopped",
    ]
    db = open_db(settings.database_path)
    states = [
        row[0]
        for row in db.execute(
            "SELECT state FROM messages WHERE kind = 'reminder' ORDER BY id"
        )
    ]
    db.close()
    assert states == ["sent", "pending", "pending"]  # the rest waits for the next run


# -- the pieces ------------------------------------------------------------------------------


def test_a_failing_job_is_logged_as_one_line_and_the_schedule_goes_on():
    lines: list[str] = []
    calls = {"remind": 0, "generate": 0}
    moment = datetime(2026, 12, 6, 10, 0, tzinfo=ZoneInfo("UTC"))

    def remind(now):
        calls["remind"] += 1
        raise RuntimeError("database disk image is malformed\nsecond line")

    def generate(now):
        calls["generate"] += 1
        if calls["generate"] == 1:
            raise DeliveryError("Cannot reach SMTP server localhost:25")
        return "generate: 0 checklists created for 0 templates, 0 sent, 0 failed"

    settings = settings_from_dict({}, environ={})
    scheduler = daemon.build_scheduler(
        settings,
        daemon.guarded("remind", remind, log=lines.append, clock=lambda: moment),
        daemon.guarded("generate", generate, log=lines.append, clock=lambda: moment),
    )
    scheduler.run_all()
    scheduler.run_all()
    assert calls == {"remind": 2, "generate": 2}
    assert len(scheduler.jobs) == 2  # nothing was cancelled
    assert lines == [
        "2026-12-06T10:00:00Z remind failed: unexpected RuntimeError: database disk image "
        "is malformed second line",
        "2026-12-06T10:00:00Z generate failed: Cannot reach SMTP server localhost:25",
        "2026-12-06T10:00:00Z remind failed: unexpected RuntimeError: database disk image "
        "is malformed second line",
        "2026-12-06T10:00:00Z generate: 0 checklists created for 0 templates, 0 sent, "
        "0 failed",
    ]


def test_a_stopped_daemon_starts_no_further_job():
    stop = threading.Event()
    ran = []
    job = daemon.guarded(
        "remind", lambda now: ran.append(now) or "ok", log=ran.append, stop=stop
    )
    job()
    assert len(ran) == 2  # the call and its line
    stop.set()
    job()
    assert len(ran) == 2


def by_tag(scheduler) -> dict[str, object]:
    return {tag: job for job in scheduler.jobs for tag in job.tags}


def test_schedule_has_the_configured_jobs():
    settings = settings_from_dict(
        {
            "firm": {"timezone": "America/New_York"},
            "daemon": {"remind_every_minutes": 10, "generate_at": "06:30"},
            "notifications": {
                "email": "office@example.com",
                "on": ["digest"],
                "digest_at": "08:15",
            },
        },
        environ={},
    )

    def remind():
        pass

    def generate():
        pass

    scheduler = daemon.build_scheduler(settings, remind, generate)
    jobs = by_tag(scheduler)
    assert sorted(jobs) == ["digest", "generate", "remind"]
    assert (jobs["remind"].interval, jobs["remind"].unit) == (10, "minutes")
    assert jobs["remind"].job_func.func is remind
    for tag, at, func in (("generate", (6, 30), generate), ("digest", (8, 15), remind)):
        job = jobs[tag]
        assert (job.interval, job.unit, job.at_time) == (1, "days", clock_time(*at))
        assert str(job.at_time_zone) == "America/New_York"
        assert job.job_func.func is func
        # next_run is naive machine-local time; in New York it is the configured time.
        local = job.next_run.astimezone().astimezone(ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == at
    assert "digest run daily at 08:15 America/New_York" in daemon.describe(settings)


def test_no_digest_job_without_a_digest_to_send():
    for notifications in ({"email": ""}, {"email": "office@example.com", "on": []}):
        settings = settings_from_dict({"notifications": notifications}, environ={})
        scheduler = daemon.build_scheduler(settings, lambda: None, lambda: None)
        assert sorted(by_tag(scheduler)) == ["generate", "remind"]
        assert "digest off" in daemon.describe(settings)


def test_wait_between_checks_is_bounded():
    settings = settings_from_dict({}, environ={})
    scheduler = daemon.build_scheduler(settings, lambda: None, lambda: None)
    assert 0 < daemon.next_wait(scheduler) <= daemon.MAX_WAIT_S
    scheduler.jobs[0].next_run = datetime.now() - timedelta(minutes=5)  # overdue
    assert daemon.next_wait(scheduler) == 0
    scheduler.clear()
    assert daemon.next_wait(scheduler) == daemon.MAX_WAIT_S


def test_lock_is_exclusive_names_the_holder_and_is_released(tmp_path):
    path = tmp_path / "monthlydocs.db.daemon.lock"
    with daemon.daemon_lock(path):
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(DaemonRunning, match=rf"PID {os.getpid()}\b"):
            with daemon.daemon_lock(path):
                pass
    with daemon.daemon_lock(path):  # released on exit
        pass


def test_generate_job_creates_due_checklists_once_and_sends_links(workspace):
    settings = load_settings(workspace, environ={})
    db = open_db(settings.database_path)
    templates.load_file(db, example_templates_path(), NOW)
    monthly = templates.get_template(db, "monthly")
    client_id = clients.add_client(
        db, clients.ClientInput("Client", "client@example.com"), NOW, region="FR"
    )
    clients.assign(db, [client_id], monthly["id"], NOW)
    never = threading.Event().is_set
    first = daemon.generate_job(db, settings, NOW, never)
    assert first == "generate: 1 checklists created for 1 templates, 1 sent, 0 failed"
    second = daemon.generate_job(db, settings, NOW + timedelta(days=1), never)
    assert second == "generate: 0 checklists created for 0 templates, 0 sent, 0 failed"
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 1
    db.close()


# -- the examples --------------------------------------------------------------------------


def test_cron_and_systemd_examples_run_real_commands(cli):
    root = Path(__file__).resolve().parent.parent
    commands = set(
        re.findall(r"\$MD (\w[\w-]*)", (root / "crontab.example").read_text())
    )
    units = sorted((root / "contrib").glob("monthlydocs-*.service"))
    assert len(units) == 3
    for unit in units:
        text = unit.read_text()
        assert "Environment=MONTHLYDOCS_CONFIG=" in text
        [exec_start] = re.findall(r"^ExecStart=\S+/monthlydocs (\S+)$", text, re.M)
        commands.add(exec_start)
        timer = unit.with_suffix(".timer")
        assert timer.exists() or exec_start == "daemon"
    assert commands == {"daemon", "generate", "remind"}
    for command in commands:
        result = cli(command, "--help")
        assert result.exit_code == 0, (command, result.output)
