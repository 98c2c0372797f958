"""The audit trail: who did what, when, on what. Webhooks and the dashboard read it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlite_utils import Database

from .timeutil import iso


class Event(StrEnum):
    """Event names read ``subject:action``; webhooks publish them as ``subject.action``."""

    CLIENT_CREATED = "client:created"
    CLIENT_UPDATED = "client:updated"
    CLIENT_ARCHIVED = "client:archived"
    CLIENT_ERASED = "client:erased"
    CLIENT_ASSIGNED = "client:assigned"
    CLIENT_UNASSIGNED = "client:unassigned"
    CLIENT_APPROVED = "client:approved"
    INVITE_ROTATED = "invite:rotated"
    TEMPLATE_SAVED = "template:saved"
    TEMPLATE_REMOVED = "template:removed"
    SLOT_ADDED = "template:slot_added"
    SLOT_CHANGED = "template:slot_changed"
    SLOT_REMOVED = "template:slot_removed"
    SLOTS_REPLACED = "template:slots_replaced"
    CHECKLIST_CREATED = "checklist:created"
    CHECKLIST_OPENED = "checklist:opened"
    CHECKLIST_COMPLETED = "checklist:completed"
    LINK_ROTATED = "checklist:link_rotated"
    CHECKLISTS_PURGED = "checklist:purged"
    DOCUMENT_UPLOADED = "document:uploaded"
    DOCUMENT_REMOVED = "document:removed"
    DOCUMENT_APPROVED = "document:approved"
    DOCUMENT_REJECTED = "document:rejected"
    ITEM_NOT_APPLICABLE = "item:not_applicable"
    ITEM_REOPENED = "item:reopened"
    REMINDER_QUEUED = "reminder:queued"
    REMINDER_REQUESTED = "reminder:requested"  # "Send a reminder now" on the dashboard
    REMINDERS_PAUSED = "client:reminders_paused"
    REMINDERS_RESUMED = "client:reminders_resumed"
    MESSAGE_SENT = "message:sent"
    MESSAGE_FAILED = "message:failed"
    MESSAGE_DROPPED = "message:dropped"  # not sent on purpose (complete, paused, ...)
    WEBHOOK_ADDED = "webhook:added"  # internal: never published to webhooks themselves
    WEBHOOK_REMOVED = "webhook:removed"


def record(
    db: Database,
    action: Event,
    now: datetime,
    *,
    actor: str = "system",
    subject_type: str,
    subject_id: int | None = None,
    client_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    db.execute(
        "INSERT INTO events (at, actor, action, subject_type, subject_id, client_id, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            iso(now),
            actor,
            str(action),
            subject_type,
            subject_id,
            client_id,
            json.dumps(data, ensure_ascii=False) if data else None,
        ],
    )


def record_many(
    db: Database,
    action: Event,
    now: datetime,
    rows: Iterable[tuple[int, int | None]],
    *,
    actor: str = "system",
    subject_type: str,
) -> None:
    """One event per (subject_id, client_id) pair, in a single executemany."""
    at = iso(now)
    db.conn.executemany(
        "INSERT INTO events (at, actor, action, subject_type, subject_id, client_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ((at, actor, str(action), subject_type, sid, cid) for sid, cid in rows),
    )


def for_client(db: Database, client_id: int, limit: int = 50) -> list[dict]:
    return list(
        db.query(
            "SELECT * FROM events WHERE client_id = ? ORDER BY id DESC LIMIT ?",
            [client_id, limit],
        )
    )
