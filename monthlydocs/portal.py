"""What the client portal does, without any web in it.

The portal face (``monthlydocs.web.portal``) turns each request into one call here: open
a checklist by its token, take a file for a slot, say a slot has nothing this month (and
undo it), remove a file sent by mistake, and register a new client through the firm's
invite link. Every function takes ``now``; none reads the clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from . import checklists, storage
from .checklists import APPROVED, NOT_APPLICABLE, RECEIVED, REJECTED, TO_SEND
from .clients import ClientInput, add_client, by_email, client_folder, get_client
from .config import Settings
from .db import write_transaction
from .errors import ItemLocked, LinkNotFound, MonthlydocsError
from .events import Event, record
from .links import lookup
from .templates import localized
from .timeutil import iso, parse_iso

INVITE_PATH = "/join/"
CLIENT = "client"  # the actor of what the client does through the portal
MAX_REASON_CHARS = 500


class ItemNotFound(MonthlydocsError):
    """The slot or document is not part of this checklist."""


class SlotHasFiles(MonthlydocsError):
    """ "Nothing to send" was asked for a slot that already holds files."""


class InvitesDisabled(MonthlydocsError):
    pass


# -- opening ---------------------------------------------------------------------------


def find_checklist(
    db: Database, token: str, now: datetime, grace_days: int
) -> dict[str, Any]:
    """The checklist behind a live link.

    Raises LinkNotFound for an unknown or rotated token, and for a link whose checklist
    was completed or archived more than ``grace_days`` ago: the portal shows the same
    page whatever the reason, so a guessed token learns nothing.
    """
    checklist = lookup(db, token)
    if link_expired(checklist, now, grace_days):
        raise LinkNotFound("expired link")
    return checklist


def link_expired(checklist: dict[str, Any], now: datetime, grace_days: int) -> bool:
    closed = [
        parse_iso(checklist[key])
        for key in ("completed_at", "archived_at")
        if checklist.get(key)
    ]
    return bool(closed) and now >= min(closed) + timedelta(days=grace_days)


def open_checklist(
    db: Database, token: str, now: datetime, grace_days: int
) -> dict[str, Any]:
    """find_checklist, counting the visit: first and last opened time, number of opens."""
    checklist = find_checklist(db, token, now, grace_days)
    stamp = iso(now)
    with write_transaction(db):
        first = db.execute(
            "UPDATE checklists SET first_opened_at = ? WHERE id = ?"
            " AND first_opened_at IS NULL",
            [stamp, checklist["id"]],
        ).rowcount
        db.execute(
            "UPDATE checklists SET open_count = open_count + 1, last_opened_at = ?"
            " WHERE id = ?",
            [stamp, checklist["id"]],
        )
        if first:
            record(
                db,
                Event.CHECKLIST_OPENED,
                now,
                actor=CLIENT,
                subject_type="checklist",
                subject_id=checklist["id"],
                client_id=checklist["client_id"],
            )
    return checklists.get_checklist(db, checklist["id"])


# -- what the page shows ---------------------------------------------------------------


@dataclass
class Slot:
    item: dict[str, Any]
    documents: list[dict[str, Any]] = field(default_factory=list)
    # Who last said "nothing to send" for this slot: CLIENT, or the firm's reviewer.
    not_applicable_by: str | None = None

    @property
    def id(self) -> int:
        return self.item["id"]

    @property
    def state(self) -> str:
        return self.item["state"]

    @property
    def can_upload(self) -> bool:
        return self.state != APPROVED

    @property
    def can_mark_not_applicable(self) -> bool:
        return self.state in (TO_SEND, REJECTED) and not self.removable_documents

    @property
    def not_applicable_by_client(self) -> bool:
        """The client said so (the firm's decision is not theirs to undo)."""
        return self.state == NOT_APPLICABLE and self.not_applicable_by == CLIENT

    @property
    def can_undo(self) -> bool:
        return self.not_applicable_by_client

    @property
    def removable_documents(self) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if can_remove(self.item, doc)]

    def wording(self, language: str | None) -> tuple[str, str]:
        """(name, description) as the client reads them in ``language``: the slot's
        translation, else the firm's own wording."""
        return localized(self.item, language)


@dataclass
class PortalPage:
    checklist: dict[str, Any]
    client: dict[str, Any]
    slots: list[Slot]

    @property
    def required(self) -> list[Slot]:
        return [s for s in self.slots if not s.item["optional"]] or self.slots

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.required if s.state in checklists.DONE_STATES)

    @property
    def complete(self) -> bool:
        return bool(self.required) and self.done_count == len(self.required)

    def template_name(self, language: str | None) -> str:
        """The template's name as the client reads it in ``language``."""
        return localized(self.checklist, language)[0]


def page(db: Database, checklist: dict[str, Any]) -> PortalPage:
    """Everything the portal page shows for a checklist, in slot order."""
    slots = [Slot(item) for item in checklists.items(db, checklist["id"])]
    by_id = {slot.id: slot for slot in slots}
    for doc in db.query(
        "SELECT d.* FROM documents d JOIN checklist_items i ON i.id = d.item_id"
        " WHERE i.checklist_id = ? ORDER BY d.uploaded_at, d.id",
        [checklist["id"]],
    ):
        by_id[doc["item_id"]].documents.append(doc)
    marked = [slot.id for slot in slots if slot.state == NOT_APPLICABLE]
    for item_id, actor in not_applicable_by(db, checklist["client_id"], marked).items():
        by_id[item_id].not_applicable_by = actor
    return PortalPage(checklist, get_client(db, checklist["client_id"]), slots)


def not_applicable_by(
    db: Database, client_id: int, item_ids: list[int]
) -> dict[int, str]:
    """Who last marked each of these items "not applicable": CLIENT or a reviewer.

    Read from the audit trail, the latest such event of each item; an item without
    one is left out (and counts as the firm's decision).
    """
    if not item_ids:
        return {}
    marks = ", ".join("?" for _ in item_ids)
    rows = db.execute(
        "SELECT subject_id, actor FROM events WHERE client_id = ? AND action = ?"
        f" AND subject_type = 'item' AND subject_id IN ({marks}) ORDER BY id",
        [client_id, str(Event.ITEM_NOT_APPLICABLE), *item_ids],
    ).fetchall()
    return dict(rows)  # later rows win: the latest event of each item


def slot(db: Database, checklist: dict[str, Any], item_id: int) -> Slot:
    item = _item(db, checklist, item_id)
    documents = list(
        db.query(
            "SELECT * FROM documents WHERE item_id = ? ORDER BY uploaded_at, id",
            [item_id],
        )
    )
    by = not_applicable_by(db, checklist["client_id"], [item_id])
    return Slot(item, documents, by.get(item_id))


def can_remove(item: dict[str, Any], document: dict[str, Any]) -> bool:
    """A client may take back a file until the firm has reviewed it."""
    return document["review_state"] == "pending" and item["state"] != APPROVED


def _item(db: Database, checklist: dict[str, Any], item_id: int) -> dict[str, Any]:
    rows = list(
        db.query(
            "SELECT * FROM checklist_items WHERE id = ? AND checklist_id = ?",
            [item_id, checklist["id"]],
        )
    )
    if not rows:
        raise ItemNotFound(f"checklist #{checklist['id']} has no item #{item_id}")
    return rows[0]


# -- changes -----------------------------------------------------------------------------


@dataclass
class UploadResult:
    document: dict[str, Any]
    duplicate: bool  # the same content was already in this slot: nothing new stored


def upload(
    db: Database,
    settings: Settings,
    checklist: dict[str, Any],
    item_id: int,
    incoming: storage.Incoming,
    now: datetime,
) -> UploadResult:
    """Keep a received file under a slot: checked, moved into place, then recorded.

    The same content sent twice to one slot is stored once (UNIQUE(item_id, sha256));
    the second upload returns the first document with ``duplicate`` set. Raises
    ItemNotFound, ItemLocked (the firm approved the slot), EmptyUpload or
    UnsupportedFileType; the temporary file is gone whatever happens.
    """
    try:
        item = _item(db, checklist, item_id)
        if item["state"] == APPROVED:
            raise ItemLocked(f"item #{item_id} is approved")
        incoming.finish()
        existing = _document_by_hash(db, item_id, incoming.sha256)
        if existing:
            return UploadResult(existing, duplicate=True)
        folder = storage.folder_for(
            client_folder(checklist["client_id"]), checklist["period"], item["name"]
        )
        stored = storage.store(incoming, settings.files_dir, folder)
    finally:
        incoming.discard()
    try:
        with write_transaction(db):
            document_id = db.execute(
                "INSERT INTO documents (item_id, original_filename, stored_path, size,"
                " sha256, content_type, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    item_id,
                    _display_name(incoming.filename),
                    stored.relative_path,
                    incoming.size,
                    incoming.sha256,
                    incoming.content_type,
                    iso(now),
                ],
            ).lastrowid
            _set_state(db, item_id, RECEIVED, None, now)
            record(
                db,
                Event.DOCUMENT_UPLOADED,
                now,
                actor=CLIENT,
                subject_type="document",
                subject_id=document_id,
                client_id=checklist["client_id"],
                data={
                    "item_id": item_id,
                    "size": incoming.size,
                    "content_type": incoming.content_type,
                },
            )
            checklists.refresh_completion(db, checklist["id"], now)
    except sqlite3.IntegrityError:
        # The same file arrived twice at the same moment: the other request won.
        storage.delete(settings.files_dir, stored.relative_path)
        existing = _document_by_hash(db, item_id, incoming.sha256)
        if existing is None:
            raise
        return UploadResult(existing, duplicate=True)
    return UploadResult(_document(db, document_id), duplicate=False)


def _display_name(filename: str) -> str:
    """The name as sent, for display only: the last path part, bounded."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] or "document"


def _document_by_hash(db: Database, item_id: int, sha256: str) -> dict | None:
    rows = list(
        db.query(
            "SELECT * FROM documents WHERE item_id = ? AND sha256 = ?",
            [item_id, sha256],
        )
    )
    return rows[0] if rows else None


def _document(db: Database, document_id: int) -> dict[str, Any]:
    return next(db.query("SELECT * FROM documents WHERE id = ?", [document_id]))


def _set_state(
    db: Database, item_id: int, state: str, note: str | None, now: datetime
) -> None:
    db.execute(
        "UPDATE checklist_items SET state = ?, note = ?, updated_at = ? WHERE id = ?",
        [state, note, iso(now), item_id],
    )


def mark_not_applicable(
    db: Database,
    checklist: dict[str, Any],
    item_id: int,
    reason: str | None,
    now: datetime,
) -> None:
    """The client has nothing for this slot this period (with an optional reason)."""
    reason = " ".join((reason or "").split())[:MAX_REASON_CHARS] or None
    with write_transaction(db):
        current = slot(db, checklist, item_id)
        if current.state == NOT_APPLICABLE:
            return
        if current.state == APPROVED:
            raise ItemLocked(f"item #{item_id} is approved")
        if current.removable_documents or current.state == RECEIVED:
            raise SlotHasFiles(f"item #{item_id} holds files: remove them first")
        _set_state(db, item_id, NOT_APPLICABLE, reason, now)
        record(
            db,
            Event.ITEM_NOT_APPLICABLE,
            now,
            actor=CLIENT,
            subject_type="item",
            subject_id=item_id,
            client_id=checklist["client_id"],
            data={"reason": reason} if reason else None,
        )
        checklists.refresh_completion(db, checklist["id"], now)


def undo_not_applicable(
    db: Database, checklist: dict[str, Any], item_id: int, now: datetime
) -> None:
    """Back to "to send", when the client said "nothing to send" and the firm has not
    reviewed the slot since. The firm's own "not applicable" stays (ItemLocked)."""
    with write_transaction(db):
        current = slot(db, checklist, item_id)
        if current.state == TO_SEND:
            return
        if current.state != NOT_APPLICABLE:
            raise ItemLocked(f"item #{item_id} is {current.state}")
        if not current.not_applicable_by_client:
            raise ItemLocked(f"item #{item_id} was marked not applicable by the firm")
        _set_state(db, item_id, TO_SEND, None, now)
        record(
            db,
            Event.ITEM_REOPENED,
            now,
            actor=CLIENT,
            subject_type="item",
            subject_id=item_id,
            client_id=checklist["client_id"],
        )
        checklists.refresh_completion(db, checklist["id"], now)


def remove_document(
    db: Database,
    settings: Settings,
    checklist: dict[str, Any],
    document_id: int,
    now: datetime,
) -> dict[str, Any]:
    """Delete a file the client sent by mistake, while it is not reviewed.

    The row goes first, then the file: a crash in between leaves an orphan file, never
    a row pointing at nothing. The slot goes back to "to send" when it is empty.
    """
    with write_transaction(db):
        rows = list(
            db.query(
                "SELECT d.*, i.state AS item_state FROM documents d"
                " JOIN checklist_items i ON i.id = d.item_id"
                " WHERE d.id = ? AND i.checklist_id = ?",
                [document_id, checklist["id"]],
            )
        )
        if not rows:
            raise ItemNotFound(
                f"checklist #{checklist['id']} has no document #{document_id}"
            )
        document = rows[0]
        if not can_remove({"state": document["item_state"]}, document):
            raise ItemLocked(f"document #{document_id} is reviewed")
        db.execute("DELETE FROM documents WHERE id = ?", [document_id])
        _restore_state(db, document["item_id"], now)
        record(
            db,
            Event.DOCUMENT_REMOVED,
            now,
            actor=CLIENT,
            subject_type="document",
            subject_id=document_id,
            client_id=checklist["client_id"],
            data={"item_id": document["item_id"], "sha256": document["sha256"]},
        )
        checklists.refresh_completion(db, checklist["id"], now)
    storage.delete(settings.files_dir, document["stored_path"])
    return document


def _restore_state(db: Database, item_id: int, now: datetime) -> None:
    """The slot's state from the documents left, as the firm's review derives it."""
    from .review import derive_item_state

    state = derive_item_state(db, item_id)
    note = None
    if state == REJECTED:
        # The firm's note on the refused file is what the client must read again.
        note = db.execute(
            "SELECT review_note FROM documents WHERE item_id = ? AND review_state ="
            " 'rejected' ORDER BY reviewed_at DESC, id DESC LIMIT 1",
            [item_id],
        ).fetchone()[0]
    _set_state(db, item_id, state, note, now)


# -- self-registration -------------------------------------------------------------------


def invite_token(db: Database, secret_key: str) -> str:
    """The firm's current invite token.

    It is derived from the secret key and the number of rotations (an HMAC), so it is
    never stored; ``rotate_invite`` changes it and the old link stops working at once.
    """
    if not secret_key:
        raise InvitesDisabled(
            "firm.secret_key is empty: set one (monthlydocs init writes one) to use "
            "invite links"
        )
    generation = db.execute(
        "SELECT count(*) FROM events WHERE action = ?", [str(Event.INVITE_ROTATED)]
    ).fetchone()[0]
    digest = hmac.new(
        secret_key.encode("utf-8"),
        f"monthlydocs:invite:{generation}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")


def invite_link(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + INVITE_PATH + token


def rotate_invite(
    db: Database, secret_key: str, now: datetime, actor: str = "cli"
) -> str:
    with write_transaction(db):
        record(db, Event.INVITE_ROTATED, now, actor=actor, subject_type="invite")
    return invite_token(db, secret_key)


def check_invite(db: Database, settings: Settings, token: str) -> None:
    """LinkNotFound unless ``token`` is the current invite and invites are on."""
    if not settings.portal.self_registration or not settings.firm.secret_key:
        raise LinkNotFound("invites are off")
    current = invite_token(db, settings.firm.secret_key)
    if not hmac.compare_digest(current.encode(), (token or "").encode()):
        raise LinkNotFound("unknown invite")


def register_client(
    db: Database,
    settings: Settings,
    token: str,
    data: ClientInput,
    now: datetime,
) -> int | None:
    """A new client, pending until the firm approves them (``client approve``).

    Returns the new id, or None when the email is already known: the page then thanks
    the person all the same, so the form cannot be used to learn who is a client.
    Raises LinkNotFound for a bad invite, and the clients module's validation errors.
    """
    check_invite(db, settings, token)
    from .clients import check_input

    fields = check_input(data, settings.firm.country)
    if by_email(db, fields["email"]):
        return None
    return add_client(
        db, data, now, region=settings.firm.country, status="pending", actor="portal"
    )


def approve_client(
    db: Database, client_id: int, now: datetime, actor: str = "cli"
) -> None:
    """Confirm a self-registered client: they can now be assigned templates."""
    client = get_client(db, client_id)
    if client["status"] != "pending":
        raise MonthlydocsError(
            f"#{client_id} {client['name']} is {client['status']}, not waiting for "
            "approval"
        )
    with write_transaction(db):
        db.execute(
            "UPDATE clients SET status = 'active', updated_at = ? WHERE id = ?",
            [iso(now), client_id],
        )
        record(
            db,
            Event.CLIENT_APPROVED,
            now,
            actor=actor,
            subject_type="client",
            subject_id=client_id,
            client_id=client_id,
        )
