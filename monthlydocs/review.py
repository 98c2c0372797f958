"""The firm's review of what clients sent: approve, or reject with a note for the client.

An item's state follows its documents: any still waiting for review -> received; else any
approved -> approved; else (all rejected) -> rejected, shown to the client as "to send
again" with the note. A rejection queues an email to the client in their language.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from . import checklists
from .config import Settings
from .db import write_transaction
from .errors import MonthlydocsError
from .events import Event, record
from .i18n import pick_language
from .timeutil import iso

MAX_NOTE = 1000


class DocumentNotFound(MonthlydocsError):
    pass


def get_document(db: Database, document_id: int) -> dict[str, Any]:
    rows = list(
        db.query(
            "SELECT d.*, i.checklist_id, i.name AS slot, i.state AS item_state,"
            " c.client_id, c.period, c.template_name, cl.name AS client"
            " FROM documents d JOIN checklist_items i ON i.id = d.item_id"
            " JOIN checklists c ON c.id = i.checklist_id"
            " JOIN clients cl ON cl.id = c.client_id WHERE d.id = ?",
            [document_id],
        )
    )
    if not rows:
        raise DocumentNotFound(
            f"No document #{document_id}: see `monthlydocs review CLIENT` for the ids"
        )
    return rows[0]


def documents_of_client(db: Database, client_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT d.id, d.original_filename, d.size, d.sha256, d.uploaded_at,"
            " d.review_state, d.review_note, d.reviewer, i.name AS slot, i.state AS"
            " item_state, c.period, c.template_name, c.id AS checklist_id"
            " FROM documents d JOIN checklist_items i ON i.id = d.item_id"
            " JOIN checklists c ON c.id = i.checklist_id WHERE c.client_id = ?"
            " ORDER BY c.period DESC, c.id, i.position, d.uploaded_at",
            [client_id],
        )
    )


def derive_item_state(db: Database, item_id: int) -> str:
    states = [
        row[0]
        for row in db.execute(
            "SELECT review_state FROM documents WHERE item_id = ?", [item_id]
        )
    ]
    if "pending" in states:
        return checklists.RECEIVED
    if "approved" in states:
        return checklists.APPROVED
    if "rejected" in states:
        return checklists.REJECTED
    return checklists.TO_SEND


def approve(
    db: Database, document_id: int, reviewer: str, now: datetime
) -> dict[str, Any]:
    """Accept a document; its slot is approved once nothing in it waits for review."""
    with write_transaction(db):
        document = get_document(db, document_id)
        _review(db, document, "approved", None, reviewer, now)
        record(
            db,
            Event.DOCUMENT_APPROVED,
            now,
            actor=reviewer,
            subject_type="document",
            subject_id=document_id,
            client_id=document["client_id"],
        )
        checklists.refresh_completion(db, document["checklist_id"], now, actor=reviewer)
    return get_document(db, document_id)


def reject(
    db: Database,
    settings: Settings,
    document_id: int,
    note: str,
    reviewer: str,
    now: datetime,
) -> dict[str, Any]:
    """Refuse a document with a note; the client is emailed the note and their link."""
    note = " ".join((note or "").split())[:MAX_NOTE]
    if not note:
        raise MonthlydocsError(
            "A rejection needs a note telling the client what to send"
        )
    with write_transaction(db):
        document = get_document(db, document_id)
        _review(db, document, "rejected", note, reviewer, now)
        record(
            db,
            Event.DOCUMENT_REJECTED,
            now,
            actor=reviewer,
            subject_type="document",
            subject_id=document_id,
            client_id=document["client_id"],
            data={"note": note},
        )
        checklists.refresh_completion(db, document["checklist_id"], now, actor=reviewer)
        _queue_rejection(db, settings, document, now)
    return get_document(db, document_id)


def _review(
    db: Database,
    document: dict[str, Any],
    state: str,
    note: str | None,
    reviewer: str,
    now: datetime,
) -> None:
    db.execute(
        "UPDATE documents SET review_state = ?, review_note = ?, reviewer = ?,"
        " reviewed_at = ? WHERE id = ?",
        [state, note, reviewer, iso(now), document["id"]],
    )
    item_state = derive_item_state(db, document["item_id"])
    # The item carries the rejection note for the client to read while it stands.
    item_note = note if item_state == checklists.REJECTED else None
    db.execute(
        "UPDATE checklist_items SET state = ?, note = ?, updated_at = ? WHERE id = ?",
        [item_state, item_note, iso(now), document["item_id"]],
    )


def _queue_rejection(
    db: Database, settings: Settings, document: dict[str, Any], now: datetime
) -> None:
    client = db.execute(
        "SELECT email, language FROM clients WHERE id = ?", [document["client_id"]]
    ).fetchone()
    language = pick_language(client[1], settings.firm.default_language)
    stamp = iso(now)
    db.execute(
        "INSERT OR IGNORE INTO messages (channel, client_id, recipient, kind, language,"
        " checklist_ids, dedupe_key, created_at, next_attempt_at)"
        " VALUES ('email', ?, ?, 'rejection', ?, ?, ?, ?, ?)",
        [
            document["client_id"],
            client[0],
            language,
            json.dumps([document["checklist_id"]]),
            f"rejection:{document['id']}:{stamp}",
            stamp,
            stamp,
        ],
    )


def mark_not_applicable(
    db: Database, item_id: int, reviewer: str, now: datetime, reason: str | None = None
) -> None:
    """The firm decides a slot needs nothing this period."""
    with write_transaction(db):
        row = db.execute(
            "SELECT i.checklist_id, c.client_id FROM checklist_items i"
            " JOIN checklists c ON c.id = i.checklist_id WHERE i.id = ?",
            [item_id],
        ).fetchone()
        if row is None:
            raise MonthlydocsError(f"No item #{item_id}")
        db.execute(
            "UPDATE checklist_items SET state = 'not_applicable', note = ?,"
            " updated_at = ? WHERE id = ?",
            [reason, iso(now), item_id],
        )
        record(
            db,
            Event.ITEM_NOT_APPLICABLE,
            now,
            actor=reviewer,
            subject_type="item",
            subject_id=item_id,
            client_id=row[1],
            data={"reason": reason} if reason else None,
        )
        checklists.refresh_completion(db, row[0], now, actor=reviewer)
