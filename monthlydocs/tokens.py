"""API tokens, and the idempotency keys stored under each.

A token is shown once, when it is created, and stored only as its SHA-256 digest. It is
not hashed with argon2 like staff passwords: a token is 256 random bits, so nobody can
guess it from its digest however fast the hash, and a plain digest can be looked up
through a UNIQUE index on every request for microseconds, where argon2 would cost tens
of milliseconds per request and, being salted, could not be looked up at all. The final
check is ``compare_digest``, like the portal's links.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from .db import write_transaction
from .errors import MonthlydocsError
from .timeutil import iso, parse_iso

TOKEN_PREFIX = "mdk_"
TOKEN_BYTES = 32
# What `token list` shows of a token so that a person can tell which one it is.
SHOWN_CHARS = len(TOKEN_PREFIX) + 4
MAX_NAME = 80
# last_used_at is written at most this often per token: a read-only request should not
# have to take the database's write lock.
LAST_USED_PRECISION = timedelta(minutes=1)
IDEMPOTENCY_TTL = timedelta(hours=24)
# A key whose request never finished (the process died) may be used again after this.
IDEMPOTENCY_ABANDONED = timedelta(minutes=5)


class TokenNotFound(MonthlydocsError):
    pass


class InvalidToken(MonthlydocsError):
    """Unknown or revoked token (deliberately not told apart)."""


class IdempotencyKeyReused(MonthlydocsError):
    """The key was already used with a different request."""


class IdempotencyKeyInProgress(MonthlydocsError):
    """The first request with this key has not finished yet."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    db: Database, name: str, now: datetime, *, read_only: bool = False
) -> tuple[int, str]:
    """Make a token; returns (id, token). The token is never stored or shown again."""
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise MonthlydocsError(
            f"A token needs a name of 1 to {MAX_NAME} characters saying who uses it, "
            "like --name crm-sync"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    try:
        token_id = db.execute(
            "INSERT INTO api_tokens (name, prefix, token_hash, read_only, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [name, token[:SHOWN_CHARS], token_digest(token), int(read_only), iso(now)],
        ).lastrowid
    except sqlite3.IntegrityError:
        raise MonthlydocsError(
            f"A token named {name!r} already exists: choose another name, or revoke "
            "it first with `monthlydocs token revoke`"
        ) from None
    return token_id, token


def list_tokens(db: Database, include_revoked: bool = False) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, name, prefix, read_only, created_at, last_used_at, revoked_at"
        " FROM api_tokens"
    )
    if not include_revoked:
        sql += " WHERE revoked_at IS NULL"
    return list(db.query(sql + " ORDER BY id"))


def find_token(db: Database, ref: str) -> dict[str, Any]:
    """A live token named by its id or its name."""
    text = (ref or "").strip().lstrip("#")
    rows = list(
        db.query(
            "SELECT * FROM api_tokens WHERE revoked_at IS NULL"
            " AND (name = ? COLLATE NOCASE OR CAST(id AS TEXT) = ?)"
            " ORDER BY name = ? COLLATE NOCASE DESC",
            [text, text, text],
        )
    )
    if not rows:
        raise TokenNotFound(
            f"No live token {ref!r}: see `monthlydocs token list` for ids and names"
        )
    return rows[0]


def revoke_token(db: Database, ref: str, now: datetime) -> dict[str, Any]:
    """Stop a token at once; its row stays so that `token list --all` shows it."""
    row = find_token(db, ref)
    db.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        [iso(now), row["id"]],
    )
    return row


def authenticate(db: Database, token: str, now: datetime) -> dict[str, Any]:
    """The live token row for a presented token, or InvalidToken."""
    if not token or len(token) > 200:
        raise InvalidToken("unknown token")
    digest = token_digest(token)
    rows = list(db.query("SELECT * FROM api_tokens WHERE token_hash = ?", [digest]))
    if not rows or not hmac.compare_digest(rows[0]["token_hash"], digest):
        raise InvalidToken("unknown token")
    row = rows[0]
    if row["revoked_at"]:
        raise InvalidToken("revoked token")
    last_used = parse_iso(row["last_used_at"])
    if last_used is None or now - last_used >= LAST_USED_PRECISION:
        db.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", [iso(now), row["id"]]
        )
    return row


# -- idempotency keys -------------------------------------------------------------------


@dataclass
class StoredResponse:
    status: int
    content_type: str
    body: bytes
    location: str | None


def request_digest(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for an idempotency key."""
    hashed = hashlib.sha256(f"{method} {path}\n".encode())
    hashed.update(body)
    return hashed.hexdigest()


def begin_idempotent(
    db: Database, token_id: int, key: str, digest: str, now: datetime
) -> StoredResponse | None:
    """Reserve ``key`` for this request, or return the response stored under it.

    Returns None when the caller should go ahead (and later call ``finish_idempotent``
    or ``abandon_idempotent``). Raises IdempotencyKeyReused when the key came with
    another request, IdempotencyKeyInProgress while its first request still runs. The
    PRIMARY KEY (token, key) decides between two requests sent at the same moment.
    """
    with write_transaction(db):
        db.execute(
            "DELETE FROM api_idempotency WHERE created_at < ?",
            [iso(now - IDEMPOTENCY_TTL)],
        )
        row = db.execute(
            "SELECT request_hash, status, content_type, body, location, created_at"
            " FROM api_idempotency WHERE token_id = ? AND key = ?",
            [token_id, key],
        ).fetchone()
        if row is not None:
            stored_hash, status, content_type, body, location, created_at = row
            if not hmac.compare_digest(stored_hash, digest):
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used with a different request: "
                    "use a new key for a new request"
                )
            if status is not None:
                return StoredResponse(status, content_type, body, location)
            if now - parse_iso(created_at) < IDEMPOTENCY_ABANDONED:
                raise IdempotencyKeyInProgress(
                    "The first request with this Idempotency-Key is still being "
                    "processed: retry in a moment"
                )
            db.execute(
                "DELETE FROM api_idempotency WHERE token_id = ? AND key = ?",
                [token_id, key],
            )
        db.execute(
            "INSERT INTO api_idempotency (token_id, key, request_hash, created_at)"
            " VALUES (?, ?, ?, ?)",
            [token_id, key, digest, iso(now)],
        )
    return None


def finish_idempotent(
    db: Database, token_id: int, key: str, response: StoredResponse
) -> None:
    db.execute(
        "UPDATE api_idempotency SET status = ?, content_type = ?, body = ?,"
        " location = ? WHERE token_id = ? AND key = ?",
        [
            response.status,
            response.content_type,
            response.body,
            response.location,
            token_id,
            key,
        ],
    )


def abandon_idempotent(db: Database, token_id: int, key: str) -> None:
    """Forget a key whose request failed on our side, so that a retry runs again."""
    db.execute(
        "DELETE FROM api_idempotency WHERE token_id = ? AND key = ? AND status IS NULL",
        [token_id, key],
    )
