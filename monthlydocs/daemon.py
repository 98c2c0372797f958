"""`monthlydocs daemon`: the scheduler loop, for firms that prefer one process to cron.

Three jobs on a private ``schedule.Scheduler``: the reminder run every
``daemon.remind_every_minutes``; checklist generation daily at ``daemon.generate_at``; an
extra reminder run daily at ``notifications.digest_at`` so that the digest (queued by a
reminder run) leaves on time. A reminder run also happens at start.

The loop ends when ``stop`` is set (the CLI sets it on SIGTERM and SIGINT); a run in
progress stops between two messages, so the message in flight is finished and recorded. A
job that fails is logged as one line and the loop goes on. An exclusive ``flock`` on
``<database>.daemon.lock`` keeps a second daemon off the same workspace.

No Typer here, and no signal handling: both are the face's business.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import ConfigError, DaemonRunning, MonthlydocsError
from .timeutil import iso, local_date, utcnow

Log = Callable[[str], None]
Clock = Callable[[], datetime]

# The loop wakes at least this often, so a clock change or a suspend is noticed soon.
MAX_WAIT_S = 60.0


def lock_path(settings: Settings) -> Path:
    database = settings.database_path
    return database.with_name(database.name + ".daemon.lock")


@contextmanager
def daemon_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (with our PID written in it) for the block.

    The kernel releases a ``flock`` when its process dies, so a crashed daemon never leaves
    a stale lock behind. Raises ``DaemonRunning`` naming the holder's PID.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            who = f"PID {holder}" if holder.isdigit() else "another process"
            raise DaemonRunning(
                f"A monthlydocs daemon is already running on this workspace ({who}, "
                f"lock {path}); stop it first (kill {holder or '<pid>'}) or let it "
                "keep running"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- the jobs -------------------------------------------------------------------------------


def remind_job(
    db, settings: Settings, now: datetime, should_stop: Callable[[], bool]
) -> str:
    """One reminder run (reminders, notifications, retries); returns its log line."""
    from . import reminders

    report = reminders.run(db, settings, now, should_stop=should_stop)
    queued, delivery = report.queued, report.delivery
    return (
        f"remind: {queued.reminded} clients reminded, {report.notifications} "
        f"notifications, {delivery.sent} sent, {delivery.failed} failed"
        + _first_error(delivery)
    )


def generate_job(
    db, settings: Settings, now: datetime, should_stop: Callable[[], bool]
) -> str:
    """What `monthlydocs generate` does without options: every template whose current
    period has no checklists yet, then send the links; returns its log line."""
    from . import checklists, outbox

    today = local_date(now, settings.firm.timezone)
    templates = checklists.templates_due(db, today, unsent=True)
    result = checklists.generate(
        db,
        [checklists.Request(template) for template in templates],
        now,
        today,
        default_language=settings.firm.default_language,
        actor="daemon",
    )
    delivery = outbox.deliver_all(db, settings, now, should_stop=should_stop)
    return (
        f"generate: {result.created} checklists created for {len(templates)} "
        f"templates, {delivery.sent} sent, {delivery.failed} failed"
        + _first_error(delivery)
    )


def _first_error(delivery: Any) -> str:
    if not delivery.failed:
        return ""
    _id, recipient, error = delivery.errors[0]
    return f" (first: {recipient}: {error})"


def guarded(
    name: str,
    job: Callable[[datetime], str],
    *,
    log: Log,
    clock: Clock = utcnow,
    stop: threading.Event | None = None,
) -> Callable[[], None]:
    """``job`` as a scheduler job: called with the time, its line logged with the time,
    and any exception logged as one line instead of ending the loop. Once ``stop`` is set
    it does nothing (two jobs due together: the second does not start)."""

    def run() -> None:
        if stop is not None and stop.is_set():
            return
        now = clock()
        try:
            line = job(now)
        except MonthlydocsError as exc:
            line = f"{name} failed: {exc}"
        except Exception as exc:  # the loop must survive whatever a job raises
            line = f"{name} failed: unexpected {type(exc).__name__}: {exc}"
        log(f"{iso(now)} {' '.join(line.split())}")  # one line, always

    run.__name__ = f"{name}_job"
    return run


# -- the schedule -------------------------------------------------------------------------


def digest_enabled(settings: Settings) -> bool:
    notifications = settings.notifications
    return "digest" in notifications.on and bool(notifications.email)


def build_scheduler(
    settings: Settings,
    remind: Callable[[], None],
    generate: Callable[[], None],
):
    """A private ``schedule.Scheduler`` with the daemon's jobs, tagged by name."""
    import schedule

    zone = settings.firm.timezone
    scheduler = schedule.Scheduler()
    minutes = settings.daemon.remind_every_minutes
    if minutes < 1:  # settings validation refuses it too; every(0) would spin forever
        raise ConfigError("daemon.remind_every_minutes must be at least 1")
    scheduler.every(minutes).minutes.do(remind).tag("remind")
    scheduler.every().day.at(settings.daemon.generate_at, zone).do(generate).tag(
        "generate"
    )
    if digest_enabled(settings):
        scheduler.every().day.at(settings.notifications.digest_at, zone).do(remind).tag(
            "digest"
        )
    return scheduler


def describe(settings: Settings) -> str:
    """The schedule in words, for the start line."""
    zone = settings.firm.timezone
    parts = [
        f"remind every {settings.daemon.remind_every_minutes} min",
        f"generate daily at {settings.daemon.generate_at} {zone}",
    ]
    if digest_enabled(settings):
        parts.append(f"digest run daily at {settings.notifications.digest_at} {zone}")
    else:
        parts.append("digest off")
    return ", ".join(parts)


def next_wait(scheduler) -> float:
    """Seconds to sleep before the next job is due, between 0 and ``MAX_WAIT_S``."""
    idle = scheduler.idle_seconds
    if idle is None:
        return MAX_WAIT_S
    return min(MAX_WAIT_S, max(0.0, idle))


# -- the loop --------------------------------------------------------------------------------


def run_daemon(
    settings: Settings,
    *,
    stop: threading.Event,
    log: Log = print,
    clock: Clock = utcnow,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run the schedule until ``stop`` is set. Raises ``DaemonRunning`` if another daemon
    holds this workspace; job failures are logged, never raised."""
    from .db import open_db

    with daemon_lock(lock_path(settings)):
        db = open_db(settings.database_path)
        try:
            remind = guarded(
                "remind",
                lambda now: remind_job(db, settings, now, stop.is_set),
                log=log,
                clock=clock,
                stop=stop,
            )
            generate = guarded(
                "generate",
                lambda now: generate_job(db, settings, now, stop.is_set),
                log=log,
                clock=clock,
                stop=stop,
            )
            scheduler = build_scheduler(settings, remind, generate)
            if on_ready:
                on_ready()
            remind()
            while not stop.is_set():
                scheduler.run_pending()
                stop.wait(next_wait(scheduler))
        finally:
            db.close()
    log(f"{iso(clock())} daemon stopped")
