"""Staff users of the dashboard; passwords are stored as argon2 hashes only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlite_utils import Database

from .clients import normalize_email, normalize_language
from .errors import MonthlydocsError
from .timeutil import iso

MIN_PASSWORD = 10


class UserNotFound(MonthlydocsError):
    pass


class WeakPassword(MonthlydocsError):
    pass


class LoginFailed(MonthlydocsError):
    """Wrong email or password (deliberately not told apart)."""


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"A password needs at least {MIN_PASSWORD} characters")


def add_user(
    db: Database,
    email: str,
    password: str,
    now: datetime,
    *,
    name: str = "",
    language: str | None = None,
    hasher=None,
) -> int:
    email = normalize_email(email)
    check_password(password)
    if find_user(db, email, missing_ok=True):
        raise MonthlydocsError(f"A user {email} already exists")
    digest = (hasher or _hasher()).hash(password)
    return db.execute(
        "INSERT INTO users (email, name, password_hash, language, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [email, name.strip(), digest, normalize_language(language), iso(now)],
    ).lastrowid


def find_user(
    db: Database, email: str, missing_ok: bool = False
) -> dict[str, Any] | None:
    rows = list(
        db.query("SELECT * FROM users WHERE email = ? COLLATE NOCASE", [email.strip()])
    )
    if rows:
        return rows[0]
    if missing_ok:
        return None
    raise UserNotFound(f"No user {email}: see `monthlydocs user list`")


def get_user(db: Database, user_id: int) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM users WHERE id = ?", [user_id]))
    return rows[0] if rows else None


def list_users(db: Database) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT id, email, name, language, created_at, last_login_at FROM users"
            " ORDER BY email"
        )
    )


def edit_user(
    db: Database,
    email: str,
    *,
    name: str | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Change a user's name or dashboard language (None: leave it as it is); an empty
    language means "follow the browser's". Returns the user as it now is."""
    user = find_user(db, email)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = " ".join(name.split())
    if language is not None:
        changes["language"] = normalize_language(language)
    if changes:
        db["users"].update(user["id"], changes)
    return get_user(db, user["id"])


def remove_user(db: Database, email: str) -> None:
    user = find_user(db, email)
    db.execute("DELETE FROM users WHERE id = ?", [user["id"]])


def authenticate(
    db: Database, email: str, password: str, now: datetime, hasher=None
) -> dict[str, Any]:
    """The user, or LoginFailed. Spends the same hashing time for unknown emails."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = hasher or _hasher()
    user = find_user(db, email, missing_ok=True)
    target = user["password_hash"] if user else _DUMMY.get(hasher)
    try:
        hasher.verify(target, password)
    except (VerificationError, InvalidHashError):
        raise LoginFailed("Wrong email or password") from None
    if user is None:
        raise LoginFailed("Wrong email or password")
    if hasher.check_needs_rehash(user["password_hash"]):
        db.execute(
            "UPDATE users SET password_hash = ? WHERE id = ?",
            [hasher.hash(password), user["id"]],
        )
    db.execute(
        "UPDATE users SET last_login_at = ? WHERE id = ?", [iso(now), user["id"]]
    )
    return user


class _Dummy:
    """A hash of nothing, per hasher settings, so unknown emails cost as much as real."""

    def __init__(self):
        self._cache: dict[tuple, str] = {}

    def get(self, hasher) -> str:
        key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
        if key not in self._cache:
            self._cache[key] = hasher.hash("not a password")
        return self._cache[key]


_DUMMY = _Dummy()
