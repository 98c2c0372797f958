"""Portal tokens and the links built from them.

The token is the only secret in a URL. It is stored in the clear (the firm must be able to
print the link again) and as a SHA-256 digest that the portal looks it up by, so a lookup
never compares the secret itself byte by byte; the final check is ``compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlite_utils import Database

from .db import write_transaction
from .errors import LinkNotFound
from .events import Event, record

TOKEN_BYTES = 24  # 192 random bits
PORTAL_PATH = "/c/"


def new_token() -> tuple[str, str]:
    """(token, digest) for a new link."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_for(base_url: str, token: str) -> str:
    return base_url.rstrip("/") + PORTAL_PATH + token


def mask(token: str) -> str:
    """What logs show instead of a token."""
    return token[:4] + "…" if len(token) > 8 else "…"


def lookup(db: Database, token: str) -> dict[str, Any]:
    """The checklist behind a token; LinkNotFound whatever the reason."""
    if not token or len(token) > 200:
        raise LinkNotFound("unknown link")
    digest = token_digest(token)
    rows = list(db.query("SELECT * FROM checklists WHERE token_hash = ?", [digest]))
    if not rows or not hmac.compare_digest(rows[0]["token_hash"], digest):
        raise LinkNotFound("unknown link")
    return rows[0]


def rotate(db: Database, checklist_id: int, now: datetime, actor: str = "cli") -> str:
    """Replace a checklist's token: the old link stops working at once."""
    token, digest = new_token()
    with write_transaction(db):
        row = db.execute(
            "UPDATE checklists SET token = ?, token_hash = ? WHERE id = ?"
            " RETURNING client_id",
            [token, digest, checklist_id],
        ).fetchone()
        record(
            db,
            Event.LINK_ROTATED,
            now,
            actor=actor,
            subject_type="checklist",
            subject_id=checklist_id,
            client_id=row[0] if row else None,
        )
    return token


def whatsapp_url(phone_e164: str | None, text: str) -> str:
    """A wa.me share link; without a phone, WhatsApp lets the sender pick the chat."""
    encoded = quote(text, safe="")
    if phone_e164:
        return f"https://wa.me/{phone_e164.lstrip('+')}?text={encoded}"
    return f"https://wa.me/?text={encoded}"


def whatsapp_share(client: dict[str, Any], link: str, default_language: str) -> str:
    """A wa.me link with a sentence carrying ``link``, in the client's language."""
    from .i18n import gettext, pick_language

    language = pick_language(client["language"], default_language)
    text = gettext(
        language,
        "Hello %(name)s, here is your link to send your documents: %(link)s",
        name=client["name"],
        link=link,
    )
    return whatsapp_url(client["phone"], text)
