"""Outgoing messages: claim, send, mark, retry.

Each message is a row before it is anything else. A run claims a row with a conditional
UPDATE, committed before the message leaves; hands it to the channel; then marks it sent.
Two overlapping runs can never claim the same row. While the channel sends one message,
the run claims and composes the next, so a run killed at any moment leaves at most two
rows in "sending": the one in the channel's hands, the only message that may arrive
twice, and the next one, not sent. The next run on this machine sees that the claiming
process is gone and takes both back (elsewhere, after ``STALE_CLAIM``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from .config import Settings
from .db import write_transaction
from .errors import DeliveryError, PermanentDeliveryError
from .events import Event, record
from .timeutil import iso, parse_iso

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

_DUE_SQL = (
    "state = 'pending' OR (state = 'failed' AND attempts < ? AND next_attempt_at <= ?)"
)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (id, to, error)

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.errors.extend(other.errors)


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
    db: Database, now: datetime, channel: str, limit: int | None = None
) -> list[int]:
    """Messages that may be sent now: new, failed and due for retry, or abandoned."""
    ids = [
        row[0]
        for row in db.execute(
            f"SELECT id FROM messages WHERE channel = ? AND ({_DUE_SQL}) ORDER BY id",
            [channel, MAX_ATTEMPTS, iso(now)],
        )
    ]
    for message_id, claimed_at, claimed_by in db.execute(
        "SELECT id, claimed_at, claimed_by FROM messages"
        " WHERE channel = ? AND state = 'sending'",
        [channel],
    ):
        if _abandoned(claimed_at, claimed_by, now):
            ids.append(message_id)
    ids.sort()
    return ids[:limit] if limit else ids


def _abandoned(claimed_at: str | None, claimed_by: str | None, now: datetime) -> bool:
    stamp = parse_iso(claimed_at)
    return stamp is None or stamp <= now - STALE_CLAIM or _claimer_gone(claimed_by)


def claim(db: Database, message_id: int, now: datetime) -> dict[str, Any] | None:
    """Take a message for sending; None if another run has it or it is no longer due."""
    with write_transaction(db):
        current = db.execute(
            "SELECT state, claimed_at, claimed_by FROM messages WHERE id = ?",
            [message_id],
        ).fetchone()
        if current is None:
            return None
        if current[0] == "sending":
            if not _abandoned(current[1], current[2], now):
                return None
            guard, params = "state = 'sending' AND claimed_by IS ?", [current[2]]
        else:
            guard, params = f"({_DUE_SQL})", [MAX_ATTEMPTS, iso(now)]
        cursor = db.execute(
            "UPDATE messages SET state = 'sending', claimed_at = ?, claimed_by = ?,"
            f" attempts = attempts + 1 WHERE id = ? AND {guard} RETURNING *",
            [iso(now), claimer(), message_id, *params],
        )
        columns = [c[0] for c in cursor.description]
        found = cursor.fetchone()
    return dict(zip(columns, found, strict=True)) if found else None


def release(db: Database, message: dict[str, Any]) -> None:
    """Give back a claim on a message that was not handed to its channel."""
    with write_transaction(db):
        db.execute(
            "UPDATE messages SET state = ?, attempts = attempts - 1, claimed_at = NULL,"
            " claimed_by = NULL WHERE id = ? AND state = 'sending' AND claimed_by = ?",
            [
                "pending" if message["attempts"] <= 1 else "failed",
                message["id"],
                message["claimed_by"],
            ],
        )


def mark_sent(
    db: Database, message: dict[str, Any], now: datetime, provider_id: str | None
) -> None:
    ids = json.loads(message["checklist_ids"])
    with write_transaction(db):
        db.execute(
            "UPDATE messages SET state = 'sent', sent_at = ?, message_id = ?,"
            " last_error = NULL WHERE id = ?",
            [iso(now), provider_id, message["id"]],
        )
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


def mark_failed(
    db: Database, message: dict[str, Any], now: datetime, error: str, permanent: bool
) -> None:
    attempts = MAX_ATTEMPTS if permanent else message["attempts"]
    wait = BACKOFF[min(max(attempts - 1, 0), len(BACKOFF) - 1)]
    with write_transaction(db):
        db.execute(
            "UPDATE messages SET state = 'failed', attempts = ?, last_error = ?,"
            " next_attempt_at = ? WHERE id = ?",
            [attempts, error[:1000], iso(now + wait), message["id"]],
        )
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
) -> DeliveryReport:
    """Send every due message of one channel over one connection; record failures.

    ``should_stop`` is asked between messages, so a stop request lets the message in
    flight finish and leaves the rest for the next run.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .compose import build_for_channel, open_backend

    report = DeliveryReport()
    ids = due_ids(db, now, channel, limit)
    if not ids:
        return report

    def settle(message: dict[str, Any], sending) -> None:
        """Record how one message went (``sending``: its future, or the error that
        stopped it before it left); only this thread touches the database."""
        error = None
        try:
            if isinstance(sending, DeliveryError):
                raise sending
            provider_id = sending.result()
        except DeliveryError as exc:
            error = str(exc)
            mark_failed(
                db, message, now, error, isinstance(exc, PermanentDeliveryError)
            )
            report.failed += 1
            report.errors.append((message["id"], message["recipient"], error))
        else:
            mark_sent(db, message, now, provider_id)
            report.sent += 1
        if on_message:
            on_message(message, error)

    # While the channel sends one message (waiting on the network), this thread claims
    # and composes the next. Only the message in the channel's hands can be in doubt if
    # the process dies: the next one is claimed but unsent, and the next run takes it
    # back (its claimer is gone).
    with (
        backend or open_backend(settings, channel) as sender,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"send-{channel}") as pool,
    ):
        in_flight = None
        for message_id in ids:
            if should_stop and should_stop():
                break
            message = claim(db, message_id, now)
            if message is None:
                continue
            try:
                built = build_for_channel(db, settings, message)
            except DeliveryError as exc:
                if in_flight is not None:
                    settle(*in_flight)
                    in_flight = None
                settle(message, exc)
                continue
            if in_flight is not None:
                settle(*in_flight)
                in_flight = None
            if should_stop and should_stop():
                release(db, message)  # asked to stop while it was being composed
                break
            in_flight = (message, pool.submit(sender.send, built))
        if in_flight is not None:
            settle(*in_flight)
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
) -> DeliveryReport:
    """Every due message on every channel (SMS only when a backend is configured)."""
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
