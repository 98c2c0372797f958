"""The firm's own notifications: a checklist completed, new uploads, the daily digest.

They are derived from what happened (events and documents) each time a run looks, and
queued as messages whose dedupe key says what they cover, so looking twice never queues
twice and a run that was missed is caught up by the next one.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from .config import Settings, parse_clock
from .db import write_transaction
from .timeutil import iso

UPLOAD_WINDOW = timedelta(minutes=15)  # the least time between two upload emails
LOOK_BACK = timedelta(days=7)


def queue_due(db: Database, settings: Settings, now: datetime) -> int:
    """Queue every notification that is due; returns how many were new."""
    address = settings.notifications.email
    if not address:
        return 0
    wanted = set(settings.notifications.on)
    language = settings.firm.default_language
    rows: list[tuple] = []
    if "completed" in wanted:
        rows += _completed(db, now, address, language)
    if "uploaded" in wanted:
        rows += _uploaded(db, now, address, language)
    if "digest" in wanted:
        rows += _digest(settings, now, address, language)
    if not rows:
        return 0
    with write_transaction(db):
        before = db.conn.total_changes
        db.conn.executemany(
            "INSERT OR IGNORE INTO messages (channel, client_id, recipient, kind,"
            " language, checklist_ids, dedupe_key, created_at, next_attempt_at)"
            " VALUES ('email', ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return db.conn.total_changes - before


def _completed(db: Database, now: datetime, address: str, language: str) -> list[tuple]:
    stamp = iso(now)
    return [
        (
            client_id,
            address,
            "notify_completed",
            language,
            json.dumps([checklist_id]),
            f"notify:completed:{checklist_id}",
            stamp,
            stamp,
        )
        for checklist_id, client_id in db.execute(
            "SELECT DISTINCT e.subject_id, e.client_id FROM events e"
            " JOIN checklists c ON c.id = e.subject_id"
            " WHERE e.action = 'checklist:completed' AND e.at >= ?"
            " AND c.completed_at IS NOT NULL",
            [iso(now - LOOK_BACK)],
        )
    ]


def upload_batch(dedupe_key: str) -> tuple[str, str]:
    """(since, until) of the uploads an upload notification covers, from its key:
    ``notify:uploaded:<client>:<since>/<until>`` (an older key held the start of a
    fixed 15-minute window)."""
    from .timeutil import parse_iso

    covered = dedupe_key.split(":", 3)[3]
    since, _, until = covered.partition("/")
    return since, until or iso(parse_iso(since) + UPLOAD_WINDOW)


def _uploaded(db: Database, now: datetime, address: str, language: str) -> list[tuple]:
    """At most one notification per client per 15 minutes: a batch covers every upload
    since the previous notification, and is sent once its first upload is 15 minutes
    old, so a client sending files one after the other gets them in one email, and two
    emails about one client are always 15 minutes apart or more."""
    from .timeutil import parse_iso

    stamp = iso(now)
    covered: dict[int, str] = {}  # client -> where its last notification stopped
    for client_id, key in db.execute(
        "SELECT client_id, dedupe_key FROM messages WHERE kind = 'notify_uploaded'"
        " AND created_at >= ? ORDER BY created_at, id",
        [iso(now - LOOK_BACK - UPLOAD_WINDOW)],
    ):
        covered[client_id] = max(covered.get(client_id, ""), upload_batch(key)[1])
    batches: dict[int, tuple[str, set[int]]] = {}  # client -> (first upload, lists)
    for client_id, checklist_id, uploaded_at in db.execute(
        "SELECT c.client_id, c.id, d.uploaded_at FROM documents d"
        " JOIN checklist_items i ON i.id = d.item_id"
        " JOIN checklists c ON c.id = i.checklist_id"
        " WHERE d.uploaded_at >= ? AND d.uploaded_at < ? ORDER BY d.uploaded_at",
        [iso(now - LOOK_BACK), stamp],
    ):
        if uploaded_at < covered.get(client_id, ""):
            continue  # told already
        first, ids = batches.setdefault(client_id, (uploaded_at, set()))
        ids.add(checklist_id)
    rows = []
    for client_id, (first, ids) in batches.items():
        if parse_iso(first) + UPLOAD_WINDOW > now:
            continue  # the batch is still open: more files may come
        since = covered.get(client_id) or first
        rows.append(
            (
                client_id,
                address,
                "notify_uploaded",
                language,
                json.dumps(sorted(ids)),
                f"notify:uploaded:{client_id}:{since}/{stamp}",
                stamp,
                stamp,
            )
        )
    return rows


def _digest(
    settings: Settings, now: datetime, address: str, language: str
) -> list[tuple]:
    local = now.astimezone(ZoneInfo(settings.firm.timezone))
    minute = parse_clock(settings.notifications.digest_at, "notifications.digest_at")
    if local.hour * 60 + local.minute < minute:
        return []
    stamp = iso(now)
    return [
        (
            None,
            address,
            "digest",
            language,
            "[]",
            f"digest:{local.date().isoformat()}",
            stamp,
            stamp,
        )
    ]
