"""Outgoing messages: claim, send, mark, retry.

Each message is a row before it is anything else. A run claims a row with a conditional
UPDATE (committed before the message leaves), hands it to the channel, then marks it sent.
Two overlapping runs can never claim the same row; a run killed between claim and mark
leaves one row in "sending", which a later run takes back after ``STALE_CLAIM`` (that one
message is the only one that may arrive twice).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from .config import Settings
from .errors import DeliveryError
from .events import Event, record
from .timeutil import iso

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


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (id, to, error)


def due_ids(
    db: Database, now: datetime, channel: str, limit: int | None = None
) -> list[int]:
    """Messages that may be sent now: new, failed and due for retry, or stale claims."""
    sql = (
        "SELECT id FROM messages WHERE channel = ? AND ("
        " state = 'pending'"
        " OR (state = 'failed' AND attempts < ? AND next_attempt_at <= ?)"
        " OR (state = 'sending' AND claimed_at <= ?)) ORDER BY id"
    )
    params: list[Any] = [channel, MAX_ATTEMPTS, iso(now), iso(now - STALE_CLAIM)]
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [row[0] for row in db.execute(sql, params)]


def claim(db: Database, message_id: int, now: datetime) -> dict[str, Any] | None:
    """Take a message for sending; None if another run has it or it is no longer due."""
    with db.atomic():
        row = db.execute(
            "UPDATE messages SET state = 'sending', claimed_at = ?, attempts = attempts + 1"
            " WHERE id = ? AND (state = 'pending'"
            "  OR (state = 'failed' AND attempts < ? AND next_attempt_at <= ?)"
            "  OR (state = 'sending' AND claimed_at <= ?))"
            " RETURNING *",
            [iso(now), message_id, MAX_ATTEMPTS, iso(now), iso(now - STALE_CLAIM)],
        )
        columns = [c[0] for c in row.description]
        found = row.fetchone()
    return dict(zip(columns, found, strict=True)) if found else None


def mark_sent(
    db: Database, message: dict[str, Any], now: datetime, provider_id: str | None
) -> None:
    ids = json.loads(message["checklist_ids"])
    with db.atomic():
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
    wait = BACKOFF[min(attempts - 1, len(BACKOFF) - 1)] if attempts else timedelta(0)
    with db.atomic():
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
                "error": error[:300],
                "final": attempts >= MAX_ATTEMPTS,
            },
        )


def deliver_email(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    backend=None,
    limit: int | None = None,
    on_message: Callable[[dict[str, Any], str | None], None] | None = None,
) -> DeliveryReport:
    """Send every email that is due, over one connection; failures are recorded."""
    from .channels.email import PermanentDeliveryError, backend_for

    report = DeliveryReport()
    ids = due_ids(db, now, "email", limit)
    if not ids:
        return report
    with backend or backend_for(settings) as channel:
        for message_id in ids:
            message = claim(db, message_id, now)
            if message is None:
                continue
            error = None
            try:
                email = build_email(db, settings, message)
                provider_id = channel.send(email)
            except DeliveryError as exc:
                error = str(exc)
                permanent = isinstance(exc, PermanentDeliveryError)
                mark_failed(db, message, now, error, permanent)
                report.failed += 1
                report.errors.append((message_id, message["recipient"], error))
            else:
                mark_sent(db, message, now, provider_id)
                report.sent += 1
            if on_message:
                on_message(message, error)
    return report


def build_email(db: Database, settings: Settings, message: dict[str, Any]):
    """Compose the message row's email now, from the current state of its checklists."""
    from .channels.email import PermanentDeliveryError, build_message
    from .clients import get_client
    from .errors import ClientNotFound
    from .messages import compose
    from .messages.context import link_context

    try:
        client = get_client(db, message["client_id"])
    except ClientNotFound:
        raise PermanentDeliveryError("the client no longer exists") from None
    if client["status"] == "archived":
        raise PermanentDeliveryError("the client is archived")
    ids = json.loads(message["checklist_ids"])
    if message["kind"] == "link":
        context = link_context(db, settings, client, ids, message["language"])
    else:
        raise PermanentDeliveryError(f"unknown kind of message {message['kind']!r}")
    composed = compose(message["kind"], message["language"], context)
    return build_message(
        settings, client["name"], message["recipient"], composed, message["language"]
    )


def failed_messages(db: Database) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT m.*, c.name AS client FROM messages m"
            " LEFT JOIN clients c ON c.id = m.client_id"
            " WHERE m.state = 'failed' ORDER BY m.id"
        )
    )
