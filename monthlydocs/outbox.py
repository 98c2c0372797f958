"""Outgoing messages: claim, check, send, mark, retry.

Each message is a row before it is anything else. A run claims a row with a conditional
UPDATE, committed before the message leaves; checks that it should still go (a reminder
whose checklists were completed meanwhile, or whose client was paused or archived, is
dropped with its reason; one outside the send hours waits for them); hands it to the
channel; then marks it sent, only if the claim is still its own. Two overlapping runs can
never claim the same row. While the channel sends one message, the run claims and
composes the next, so a run killed at any moment leaves at most two rows in "sending":
the one in the channel's hands, the only message that may arrive twice, and the next
one, not sent. Claims carry the wall clock's time, whatever moment the rules are applied
at (``remind --as-of``): the next run on this machine sees that the claiming process is
gone and takes both back at once; a claim from another machine is taken back once it is
``STALE_CLAIM`` old by the wall clock.

When the channel cannot be reached at all (connection refused, timeout, login refused),
the run stops using it: the message that met the failure is recorded as failed without
counting an attempt, the rest stay queued for the next run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from .config import Settings, parse_send_hours
from .db import write_transaction
from .errors import DeliveryError, PermanentDeliveryError
from .events import Event, record
from .timeutil import iso, parse_iso, utcnow

Clock = Callable[[], datetime]

MAX_ATTEMPTS = 6
# Wait before attempt n+1 after n failures. The first retry is allowed at once so that a
# person who fixes the SMTP settings and runs the command again sees the result.
BACKOFF = [
    timedelta(0),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=4),
    timedelta(hours=12),
]
STALE_CLAIM = timedelta(minutes=15)
CHANNELS = ("email", "sms")
CLIENT_KINDS = ("link", "reminder", "rejection")

# Why a message was dropped (its drop_reason).
DROP_COMPLETE = "checklists complete"
DROP_PAUSED = "reminders paused"
DROP_ARCHIVED = "client archived"
DROP_GONE = "client erased"
DROP_SUPERSEDED = "superseded by a later reminder"

# Test hook: ``MONTHLYDOCS_FAULT=kill:<point>:<n>`` makes the process SIGKILL itself the
# n-th time it reaches <point> ("queued", "claimed", "sent", "marked"). Read only when set.
FAULT_ENV = "MONTHLYDOCS_FAULT"
_fault_hits: dict[str, int] = {}

_DUE_SQL = (
    "(state = 'pending' OR (state = 'failed' AND attempts < ? AND next_attempt_at <= ?))"
    " AND (not_before IS NULL OR not_before <= ?)"
)


def _due_params(now: datetime) -> list[Any]:
    return [MAX_ATTEMPTS, iso(now), iso(now)]


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (id, to, error)
    dropped: int = 0  # not sent on purpose: complete, paused, archived
    deferred: int = 0  # reminders outside the send hours, held until they open
    unreachable: dict[str, str] = field(default_factory=dict)  # channel -> error
    left: int = 0  # messages not tried because their channel could not be reached

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.errors.extend(other.errors)
        self.dropped += other.dropped
        self.deferred += other.deferred
        self.unreachable.update(other.unreachable)
        self.left += other.left


def fault_point(point: str) -> None:
    """Where a test may have this process killed (see ``FAULT_ENV``)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    action, _, rest = spec.partition(":")
    target, _, count = rest.partition(":")
    if action != "kill" or target != point:
        return
    _fault_hits[point] = _fault_hits.get(point, 0) + 1
    if _fault_hits[point] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def claimer() -> str:
    """Who holds a claim: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimer_gone(claimed_by: str | None) -> bool:
    """True when the claim was made by a process of this host that no longer runs."""
    host, _, pid = (claimed_by or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def due_ids(
    db: Database,
    now: datetime,
    channel: str,
    limit: int | None = None,
    *,
    client_id: int | None = None,
    clock: Clock = utcnow,
) -> list[int]:
    """Messages that may be sent now: new, failed and due for retry, or abandoned.

    ``now`` is the moment the rules apply at; ``clock`` is the wall clock that claims
    are stamped with and judged by.
    """
    only, params = (
        ("", []) if client_id is None else (" AND client_id = ?", [client_id])
    )
    ids = [
        row[0]
        for row in db.execute(
            f"SELECT id FROM messages WHERE channel = ?{only} AND ({_DUE_SQL})",
            [channel, *params, *_due_params(now)],
        )
    ]
    wall = clock()
    for message_id, claimed_at, claimed_by in db.execute(
        "SELECT id, claimed_at, claimed_by FROM messages"
        f" WHERE channel = ?{only} AND state = 'sending'",
        [channel, *params],
    ):
        if _abandoned(claimed_at, claimed_by, wall):
            ids.append(message_id)
    ids.sort()
    return ids[:limit] if limit else ids


def _abandoned(claimed_at: str | None, claimed_by: str | None, wall: datetime) -> bool:
    """A claim nobody works on any more: its process is gone, or it is stale by the
    wall clock (a live run on this machine is never taken over)."""
    if _claimer_gone(claimed_by):
        return True
    stamp = parse_iso(claimed_at)
    return stamp is None or stamp <= wall - STALE_CLAIM


def claim(
    db: Database, message_id: int, now: datetime, *, clock: Clock = utcnow
) -> dict[str, Any] | None:
    """Take a message for sending; None if another run has it or it is no longer due."""
    wall = clock()
    with write_transaction(db):
        current = db.execute(
            "SELECT state, claimed_at, claimed_by FROM messages WHERE id = ?",
            [message_id],
        ).fetchone()
        if current is None:
            return None
        if current[0] == "sending":
            if not _abandoned(current[1], current[2], wall):
                return None
            guard, params = "state = 'sending' AND claimed_by IS ?", [current[2]]
        else:
            guard, params = f"({_DUE_SQL})", _due_params(now)
        cursor = db.execute(
            "UPDATE messages SET state = 'sending', claimed_at = ?, claimed_by = ?,"
            f" attempts = attempts + 1 WHERE id = ? AND {guard} RETURNING *",
            [iso(wall), claimer(), message_id, *params],
        )
        columns = [c[0] for c in cursor.description]
        found = cursor.fetchone()
    return dict(zip(columns, found, strict=True)) if found else None


_MINE = "id = ? AND state = 'sending' AND claimed_by = ?"


def release(
    db: Database, message: dict[str, Any], not_before: datetime | None = None
) -> bool:
    """Give back a claim on a message that was not handed to its channel (not counted
    as an attempt); with ``not_before``, it waits until then."""
    with write_transaction(db):
        return bool(
            db.execute(
                "UPDATE messages SET state = ?, attempts = attempts - 1,"
                " claimed_at = NULL, claimed_by = NULL,"
                f" not_before = coalesce(?, not_before) WHERE {_MINE}",
                [
                    "pending" if message["attempts"] <= 1 else "failed",
                    iso(not_before) if not_before else None,
                    message["id"],
                    message["claimed_by"],
                ],
            ).rowcount
        )


def mark_sent(
    db: Database, message: dict[str, Any], now: datetime, provider_id: str | None
) -> bool:
    """Record that the channel took the message; False if the claim was no longer ours
    (another run took it over), in which case the row is left to that run."""
    ids = json.loads(message["checklist_ids"])
    with write_transaction(db):
        if not db.execute(
            "UPDATE messages SET state = 'sent', sent_at = ?, message_id = ?,"
            f" last_error = NULL WHERE {_MINE}",
            [iso(now), provider_id, message["id"], message["claimed_by"]],
        ).rowcount:
            return False
        if message["kind"] == "link" and ids:
            db.execute(
                "UPDATE checklists SET link_sent_at = coalesce(link_sent_at, ?)"
                " WHERE id IN (SELECT value FROM json_each(?))",
                [iso(now), json.dumps(ids)],
            )
        record(
            db,
            Event.MESSAGE_SENT,
            now,
            subject_type="message",
            subject_id=message["id"],
            client_id=message["client_id"],
            data={
                "kind": message["kind"],
                "channel": message["channel"],
                "checklists": ids,
            },
        )
    return True


def mark_failed(
    db: Database,
    message: dict[str, Any],
    now: datetime,
    error: str,
    permanent: bool,
    *,
    counted: bool = True,
) -> bool:
    """Record a failure (``counted=False``: the channel was never reached, the attempt
    does not count). False if the claim was no longer ours."""
    attempts = message["attempts"] if counted else message["attempts"] - 1
    if permanent:
        attempts = MAX_ATTEMPTS
    wait = BACKOFF[min(max(attempts - 1, 0), len(BACKOFF) - 1)]
    with write_transaction(db):
        if not db.execute(
            "UPDATE messages SET state = 'failed', attempts = ?, last_error = ?,"
            f" next_attempt_at = ? WHERE {_MINE}",
            [
                attempts,
                error[:1000],
                iso(now + wait),
                message["id"],
                message["claimed_by"],
            ],
        ).rowcount:
            return False
        record(
            db,
            Event.MESSAGE_FAILED,
            now,
            subject_type="message",
            subject_id=message["id"],
            client_id=message["client_id"],
            data={
                "kind": message["kind"],
                "channel": message["channel"],
                "error": error[:300],
                "final": attempts >= MAX_ATTEMPTS,
            },
        )
    return True


def drop(db: Database, message: dict[str, Any], now: datetime, reason: str) -> bool:
    """Give a claimed message up on purpose (final state 'dropped'), with its reason and
    an event; the reminder steps it announced are recorded as skipped."""
    with write_transaction(db):
        if not db.execute(
            "UPDATE messages SET state = 'dropped', drop_reason = ?,"
            f" attempts = attempts - 1 WHERE {_MINE}",
            [reason, message["id"], message["claimed_by"]],
        ).rowcount:
            return False
        _dropped(db, now, message, reason)
    return True


def _dropped(db: Database, now: datetime, message: dict[str, Any], reason: str) -> None:
    """What dropping a message leaves behind: the reminder steps it announced are
    recorded as skipped, and an event says why."""
    db.execute(
        "UPDATE reminder_steps SET outcome = 'skipped' WHERE message_id = ?",
        [message["id"]],
    )
    record(
        db,
        Event.MESSAGE_DROPPED,
        now,
        subject_type="message",
        subject_id=message["id"],
        client_id=message["client_id"],
        data={
            "kind": message["kind"],
            "channel": message["channel"],
            "reason": reason,
            "checklists": json.loads(message["checklist_ids"]),
        },
    )


def supersede(db: Database, client_id: int, now: datetime) -> int:
    """Drop a client's reminders still waiting (queued, failed, held until the send
    hours) when a newer one is queued: it is composed when sent, so it says all they
    would have said, and the client gets one message, not two. Call it inside the
    transaction that queues the new one; returns how many were dropped."""
    rows = db.execute(
        "UPDATE messages SET state = 'dropped', drop_reason = ? WHERE client_id = ?"
        " AND kind = 'reminder' AND state IN ('pending', 'failed')"
        " RETURNING id, client_id, kind, channel, checklist_ids",
        [DROP_SUPERSEDED, client_id],
    ).fetchall()
    columns = ("id", "client_id", "kind", "channel", "checklist_ids")
    for row in rows:
        _dropped(db, now, dict(zip(columns, row, strict=True)), DROP_SUPERSEDED)
    return len(rows)


# -- the rules at send time ----------------------------------------------------------------


def hold(
    db: Database, settings: Settings, message: dict[str, Any], now: datetime
) -> tuple[str, Any] | None:
    """Whether a message must not go at ``now``: ("drop", reason), ("defer", until) or
    None. The firm's own notifications always go; a link or a rejection is dropped for
    an archived client; a reminder also for checklists all complete (or archived) and
    for a paused client, and waits outside the send hours, unless the firm asked for it
    (``manual``)."""
    if message["kind"] not in CLIENT_KINDS:
        return None
    client = db.execute(
        "SELECT status, reminders_paused_at, (SELECT count(*) FROM checklists"
        " WHERE id IN (SELECT value FROM json_each(?)) AND completed_at IS NULL"
        " AND archived_at IS NULL) FROM clients WHERE id = ?",
        [message["checklist_ids"], message["client_id"]],
    ).fetchone()
    if client is None:
        return ("drop", DROP_GONE)
    status, paused_at, still_open = client
    if status == "archived":
        return ("drop", DROP_ARCHIVED)
    if message["kind"] != "reminder":
        return None
    if not still_open:
        return ("drop", DROP_COMPLETE)
    if message["manual"]:
        return None
    if paused_at is not None:
        return ("drop", DROP_PAUSED)
    from .reminders import next_send_time

    until = next_send_time(
        now.astimezone(ZoneInfo(settings.firm.timezone)),
        send_hours=parse_send_hours(settings.reminders.send_hours),
        weekdays_only=settings.reminders.weekdays_only,
    )
    return ("defer", until) if until else None


def _unreachable(exc: DeliveryError) -> bool:
    """The channel itself failed (no connection, no greeting, refused login), not this
    message.

    The channels raise the same DeliveryError for both; what caused it tells them apart:
    a refused connection or login, or a network error (refused, timed out, reset) behind
    it, rather than an SMTP server's answer about the message.
    """
    import smtplib

    cause = exc.__cause__
    while cause is not None:
        if isinstance(
            cause, smtplib.SMTPConnectError | smtplib.SMTPAuthenticationError
        ):
            return True
        if isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _permanent(exc: DeliveryError) -> bool:
    """A refusal for good; an SMTP server refusing every recipient with a 4xx code
    ("try again later", greylisting) is not one, whatever the channel called it."""
    if not isinstance(exc, PermanentDeliveryError):
        return False
    import smtplib

    cause = exc.__cause__
    if isinstance(cause, smtplib.SMTPRecipientsRefused) and cause.recipients:
        return not all(400 <= code < 500 for code, _ in cause.recipients.values())
    return True


# -- delivering ----------------------------------------------------------------------------


def deliver(
    db: Database,
    settings: Settings,
    now: datetime,
    channel: str,
    *,
    backend=None,
    limit: int | None = None,
    on_message: Callable[[dict[str, Any], str | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    client_id: int | None = None,
    clock: Clock = utcnow,
) -> DeliveryReport:
    """Send every due message of one channel over one connection; record failures.

    ``now`` is the moment the rules apply at (send hours, overdue wording); ``clock``
    the wall clock claims are stamped with. ``client_id`` limits the run to one client's
    messages. ``should_stop`` is asked between messages, so a stop request lets the
    message in flight finish and leaves the rest for the next run.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .compose import build_for_channel, open_backend

    report = DeliveryReport()
    ids = due_ids(db, now, channel, limit, client_id=client_id, clock=clock)
    if not ids:
        return report

    def settle(message: dict[str, Any], sending, built: bool = True) -> bool:
        """Record how one message went (``sending``: its future, or the error that
        stopped it before it left); only this thread touches the database. False when
        the channel could not be reached."""
        error, reachable = None, True
        try:
            if isinstance(sending, DeliveryError):
                raise sending
            provider_id = sending.result()
        except DeliveryError as exc:
            error = str(exc)
            reachable = not (built and _unreachable(exc))
            mark_failed(db, message, now, error, _permanent(exc), counted=reachable)
            report.failed += 1
            report.errors.append((message["id"], message["recipient"], error))
            if not reachable:
                report.unreachable[channel] = error
        else:
            fault_point("sent")
            mark_sent(db, message, now, provider_id)
            fault_point("marked")
            report.sent += 1
        if on_message:
            on_message(message, error)
        return reachable

    def screen(message: dict[str, Any]) -> bool:
        """Apply the rules at send time; True when the message may go now."""
        verdict = hold(db, settings, message, now)
        if verdict is None:
            return True
        what, detail = verdict
        if what == "drop":
            report.dropped += drop(db, message, now, detail)
        else:
            report.deferred += release(db, message, not_before=detail)
        return False

    # While the channel sends one message (waiting on the network), this thread claims
    # and composes the next. Only the message in the channel's hands can be in doubt if
    # the process dies: the next one is claimed but unsent, and the next run takes it
    # back (its claimer is gone).
    reachable = True
    with (
        backend or open_backend(settings, channel) as sender,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"send-{channel}") as pool,
    ):
        in_flight = None
        for message_id in ids:
            if should_stop and should_stop():
                break
            message = claim(db, message_id, now, clock=clock)
            if message is None:
                continue
            fault_point("claimed")
            if not screen(message):
                continue
            message["as_of"] = iso(now)  # the moment the content is written for
            try:
                built = build_for_channel(db, settings, message)
            except DeliveryError as exc:
                built = exc
            if in_flight is not None:
                reachable = settle(*in_flight)
                in_flight = None
                if not reachable:
                    release(db, message)
                    break
            if isinstance(built, DeliveryError):
                settle(message, built, built=False)
                continue
            if should_stop and should_stop():
                release(db, message)  # asked to stop while it was being composed
                break
            in_flight = (message, pool.submit(sender.send, built))
        if in_flight is not None:
            reachable = settle(*in_flight)
    if not reachable:
        report.left = len(due_ids(db, now, channel, client_id=client_id, clock=clock))
    return report


def deliver_email(
    db: Database, settings: Settings, now: datetime, **options
) -> DeliveryReport:
    return deliver(db, settings, now, "email", **options)


def deliver_all(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    should_stop: Callable[[], bool] | None = None,
    on_message: Callable[[dict[str, Any], str | None], None] | None = None,
    client_id: int | None = None,
    clock: Clock = utcnow,
) -> DeliveryReport:
    """Every due message on every channel (SMS only when a backend is configured),
    or only ``client_id``'s. A channel that cannot be reached is left for the next
    run after its first failure; the other channels still go."""
    report = DeliveryReport()
    for channel in CHANNELS:
        if channel == "sms" and settings.sms.backend == "none":
            continue
        report.add(
            deliver(
                db,
                settings,
                now,
                channel,
                should_stop=should_stop,
                on_message=on_message,
                client_id=client_id,
                clock=clock,
            )
        )
    return report


def failed_messages(db: Database) -> list[dict[str, Any]]:
    """Messages that will not be retried any more, or not yet: for `status`."""
    return list(
        db.query(
            "SELECT m.*, c.name AS client FROM messages m"
            " LEFT JOIN clients c ON c.id = m.client_id"
            " WHERE m.state = 'failed' ORDER BY m.id"
        )
    )
