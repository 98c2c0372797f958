"""Clients: add, edit, find, archive, erase, and assign document templates."""

from __future__ import annotations

import shutil
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .config import LANGUAGES
from .db import write_transaction
from .errors import (
    AmbiguousClient,
    ClientNotFound,
    DuplicateClient,
    InvalidEmail,
    InvalidLanguage,
    InvalidPhone,
    MonthlydocsError,
)
from .events import Event, record
from .timeutil import iso

EDITABLE = ("name", "email", "phone", "language", "notes")

# Words people write in a "language" column, in the five languages, folded to ASCII.
_LANGUAGE_WORDS = {
    "en": ["en", "eng", "english", "anglais", "englisch", "ingles", "inggris"],
    "fr": [
        "fr",
        "fra",
        "fre",
        "french",
        "francais",
        "franzosisch",
        "frances",
        "perancis",
    ],
    "de": ["de", "deu", "ger", "german", "allemand", "deutsch", "aleman", "jerman"],
    "es": [
        "es",
        "spa",
        "spanish",
        "espagnol",
        "spanisch",
        "espanol",
        "castellano",
        "spanyol",
    ],
    "id": [
        "id",
        "ind",
        "in",
        "indonesian",
        "indonesien",
        "indonesisch",
        "indonesio",
        "bahasa",
        "bahasa indonesia",
        "indonesia",
    ],
}
_LANGUAGE_LOOKUP = {
    word: code for code, words in _LANGUAGE_WORDS.items() for word in words
}


@dataclass
class ClientInput:
    """Fields of a client as a person typed them, before checking."""

    name: str
    email: str
    phone: str | None = None
    language: str | None = None
    notes: str | None = None


def fold(text: str) -> str:
    """Lower case without accents, for matching words people type."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize_email(raw: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    text = (raw or "").strip()
    if not text:
        raise InvalidEmail("An email address is required")
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"Invalid email address {text!r}: {exc}") from None
    return result.normalized


def normalize_phone(raw: str | None, region: str) -> str | None:
    """A phone number in E.164 (+33612345678), or None when empty."""
    import phonenumbers

    text = (raw or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region.upper() or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            f"Invalid phone number {text!r}: write it with its country code, "
            f"like +33 6 12 34 56 78 (numbers without one are read as {region.upper()})"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_language(raw: str | None) -> str | None:
    """'fr', 'FR-be', 'Français', 'Bahasa Indonesia' -> a code in LANGUAGES; '' -> None."""
    text = fold(raw or "").replace("_", "-")
    if not text:
        return None
    code = _LANGUAGE_LOOKUP.get(text) or _LANGUAGE_LOOKUP.get(text.split("-")[0])
    if code is None:
        raise InvalidLanguage(
            f"Unknown language {raw!r}: use one of {', '.join(LANGUAGES)}"
        )
    return code


def check_input(data: ClientInput, region: str) -> dict[str, Any]:
    """Validate and normalise; raises the first problem found."""
    name = " ".join((data.name or "").split())
    if not name:
        raise MonthlydocsError("A client needs a name")
    return {
        "name": name,
        "email": normalize_email(data.email),
        "phone": normalize_phone(data.phone, region),
        "language": normalize_language(data.language),
        "notes": (data.notes or "").strip() or None,
    }


def add_client(
    db: Database,
    data: ClientInput,
    now: datetime,
    *,
    region: str,
    status: str = "active",
    actor: str = "cli",
) -> int:
    fields = check_input(data, region)
    with write_transaction(db):
        existing = by_email(db, fields["email"])
        if existing:
            raise DuplicateClient(
                f"A client with the email {fields['email']} already exists "
                f"(#{existing['id']} {existing['name']})"
            )
        stamp = iso(now)
        cursor = db.execute(
            "INSERT INTO clients (name, email, phone, language, notes, status,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [*fields.values(), status, stamp, stamp],
        )
        client_id = cursor.lastrowid
        record(
            db,
            Event.CLIENT_CREATED,
            now,
            actor=actor,
            subject_type="client",
            subject_id=client_id,
            client_id=client_id,
        )
    return client_id


def update_client(
    db: Database,
    client_id: int,
    changes: dict[str, Any],
    now: datetime,
    *,
    region: str,
    actor: str = "cli",
) -> dict[str, Any]:
    """Apply the given changes (already-None values mean "not given"). Returns the diff."""
    current = get_client(db, client_id)
    merged = ClientInput(**{k: current[k] for k in EDITABLE})
    for key, value in changes.items():
        if key not in EDITABLE:
            raise MonthlydocsError(f"{key} cannot be edited")
        if value is not None:
            setattr(merged, key, value)
    fields = check_input(merged, region)
    diff = {k: v for k, v in fields.items() if v != current[k]}
    if not diff:
        return {}
    with write_transaction(db):
        if "email" in diff:
            other = by_email(db, fields["email"])
            if other and other["id"] != client_id:
                raise DuplicateClient(
                    f"Another client (#{other['id']} {other['name']}) already uses "
                    f"{fields['email']}"
                )
        assignments = ", ".join(f"{key} = ?" for key in diff)
        db.execute(
            f"UPDATE clients SET {assignments}, updated_at = ? WHERE id = ?",
            [*diff.values(), iso(now), client_id],
        )
        record(
            db,
            Event.CLIENT_UPDATED,
            now,
            actor=actor,
            subject_type="client",
            subject_id=client_id,
            client_id=client_id,
            data={"fields": list(diff)},
        )
    return diff


def get_client(db: Database, client_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM clients WHERE id = ?", [client_id]))
    if not rows:
        raise ClientNotFound(f"No client #{client_id}")
    return rows[0]


def by_email(db: Database, email: str) -> dict[str, Any] | None:
    rows = list(
        db.query(
            "SELECT * FROM clients WHERE email = ? COLLATE NOCASE", [email.strip()]
        )
    )
    return rows[0] if rows else None


def find_client(
    db: Database, ref: str, include_archived: bool = True
) -> dict[str, Any]:
    """A client named by id, email, or an unambiguous part of the name."""
    text = ref.strip().lstrip("#")
    if not text:
        raise ClientNotFound("Name a client by id, email or part of the name")
    if text.isdigit():
        rows = list(db.query("SELECT * FROM clients WHERE id = ?", [int(text)]))
        if rows:
            return rows[0]
    if "@" in text:
        row = by_email(db, text)
        if row:
            return row
        raise ClientNotFound(f"No client with the email {text}")
    wanted = fold(text)
    candidates = [
        row
        for row in db.query("SELECT * FROM clients ORDER BY id")
        if wanted in fold(row["name"])
        and (include_archived or row["status"] != "archived")
    ]
    exact = [row for row in candidates if fold(row["name"]) == wanted]
    if len(exact) == 1:
        return exact[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ClientNotFound(
            f"No client matches {ref!r}: try `monthlydocs client list`"
        )
    names = ", ".join(f"#{row['id']} {row['name']}" for row in candidates[:5])
    more = " ..." if len(candidates) > 5 else ""
    raise AmbiguousClient(
        f"{ref!r} matches {len(candidates)} clients ({names}{more}): use the id or email"
    )


def list_clients(
    db: Database, *, status: str | None = None, include_archived: bool = False
) -> list[dict[str, Any]]:
    where, params = [], []
    if status:
        where.append("c.status = ?")
        params.append(status)
    elif not include_archived:
        where.append("c.status != 'archived'")
    sql = (
        "SELECT c.*, (SELECT group_concat(t.slug, ',') FROM assignments a"
        " JOIN templates t ON t.id = a.template_id WHERE a.client_id = c.id) AS templates"
        " FROM clients c"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    return list(db.query(sql + " ORDER BY c.name COLLATE NOCASE, c.id", params))


def archive_client(
    db: Database, client_id: int, now: datetime, actor: str = "cli"
) -> None:
    """Archive: no new checklists or messages, history kept."""
    with write_transaction(db):
        db.execute(
            "UPDATE clients SET status = 'archived', updated_at = ? WHERE id = ?",
            [iso(now), client_id],
        )
        db.execute(
            "UPDATE checklists SET archived_at = ? WHERE client_id = ? AND archived_at IS NULL",
            [iso(now), client_id],
        )
        record(
            db,
            Event.CLIENT_ARCHIVED,
            now,
            actor=actor,
            subject_type="client",
            subject_id=client_id,
            client_id=client_id,
        )


def erase_client(
    db: Database, client_id: int, files_dir: Path, now: datetime, actor: str = "cli"
) -> dict[str, int]:
    """Delete a client with every document, file and message (right to erasure).

    Rows go first inside one transaction; files follow. A crash in between leaves orphan
    files under the client's folder, never rows pointing at nothing.
    """
    get_client(db, client_id)  # raises ClientNotFound
    paths = [
        row["stored_path"]
        for row in db.query(
            "SELECT d.stored_path FROM documents d"
            " JOIN checklist_items i ON i.id = d.item_id"
            " JOIN checklists c ON c.id = i.checklist_id WHERE c.client_id = ?",
            [client_id],
        )
    ]
    with write_transaction(db):
        counts = {
            "documents": len(paths),
            "checklists": db.execute(
                "SELECT count(*) FROM checklists WHERE client_id = ?", [client_id]
            ).fetchone()[0],
            "messages": db.execute(
                "SELECT count(*) FROM messages WHERE client_id = ?", [client_id]
            ).fetchone()[0],
        }
        db.execute("DELETE FROM messages WHERE client_id = ?", [client_id])
        db.execute("DELETE FROM events WHERE client_id = ?", [client_id])
        db.execute("DELETE FROM clients WHERE id = ?", [client_id])
        # The erasure itself is recorded without any personal data.
        record(
            db,
            Event.CLIENT_ERASED,
            now,
            actor=actor,
            subject_type="client",
            subject_id=client_id,
        )
    for relative in paths:
        (files_dir / relative).unlink(missing_ok=True)
    folder = files_dir / client_folder(client_id)
    if folder.exists():
        shutil.rmtree(folder)
    return counts


def client_folder(client_id: int) -> str:
    """Stored files live under files/<client id>/ so names never collide or leak."""
    return f"{client_id:06d}"


def assign(
    db: Database,
    client_ids: list[int],
    template_id: int,
    now: datetime,
    actor: str = "cli",
) -> int:
    """Assign a template to clients; returns how many assignments are new."""
    stamp = iso(now)
    added = 0
    with write_transaction(db):
        for client_id in client_ids:
            cursor = db.execute(
                "INSERT OR IGNORE INTO assignments (client_id, template_id, assigned_at)"
                " VALUES (?, ?, ?)",
                [client_id, template_id, stamp],
            )
            if cursor.rowcount:
                added += 1
                record(
                    db,
                    Event.CLIENT_ASSIGNED,
                    now,
                    actor=actor,
                    subject_type="client",
                    subject_id=client_id,
                    client_id=client_id,
                    data={"template_id": template_id},
                )
    return added


def unassign(
    db: Database,
    client_ids: list[int],
    template_id: int,
    now: datetime | None = None,
    actor: str = "cli",
) -> int:
    """Take a template off clients (their checklists stay); returns how many had it.

    With ``now``, each removal is recorded in the audit trail under ``actor``.
    """
    removed = 0
    with write_transaction(db):
        for client_id in client_ids:
            gone = db.execute(
                "DELETE FROM assignments WHERE client_id = ? AND template_id = ?",
                [client_id, template_id],
            ).rowcount
            removed += gone
            if gone and now is not None:
                record(
                    db,
                    Event.CLIENT_UNASSIGNED,
                    now,
                    actor=actor,
                    subject_type="client",
                    subject_id=client_id,
                    client_id=client_id,
                    data={"template_id": template_id},
                )
    return removed


def set_paused(
    db: Database, client_id: int, paused: bool, now: datetime, actor: str = "cli"
) -> None:
    """Stop (or restart) a client's automatic reminders."""
    with write_transaction(db):
        db.execute(
            "UPDATE clients SET reminders_paused_at = ? WHERE id = ?",
            [iso(now) if paused else None, client_id],
        )
        record(
            db,
            Event.REMINDERS_PAUSED if paused else Event.REMINDERS_RESUMED,
            now,
            actor=actor,
            subject_type="client",
            subject_id=client_id,
            client_id=client_id,
        )
