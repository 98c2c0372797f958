"""The dashboard kit: a staff user on the portal kit's workspace, and Flask's test
client with the dashboard's vocabulary (sign in, read a form's CSRF token, post).

The tests of tests/web/test_dashboard_*.py and the browser test import from here; a test
module imports the fixtures ``staff_fixture`` and ``anonymous_fixture`` to use ``staff``
(signed in) and ``anonymous``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from argon2 import PasswordHasher

from monthlydocs.users import add_user

# Cheap on purpose: a real hash costs tens of milliseconds and 64 MB per sign-in.
HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
EMAIL = "anne@martin.example"
PASSWORD = "correct horse battery"
ADDED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_staff(case, email: str = EMAIL, language: str | None = None,
              name: str = "Anne Martin") -> int:
    db = case.db()
    try:
        return add_user(db, email, PASSWORD, ADDED, name=name, language=language,
                        hasher=HASHER)
    finally:
        db.close()


def use_cheap_hasher(app) -> None:
    app.extensions["monthlydocs.password_hasher"] = HASHER


class Staff:
    """A browser session on the dashboard, through Flask's test client."""

    def __init__(self, flask_client):
        self.http = flask_client

    def csrf(self, path: str = "/dashboard/login") -> str:
        page = self.http.get(path)
        found = _CSRF.search(page.get_data(as_text=True))
        assert found, f"no CSRF token on {path} ({page.status_code})"
        return found.group(1)

    def login(self, email: str = EMAIL, password: str = PASSWORD, **extra):
        return self.http.post("/dashboard/login", data={
            "csrf_token": self.csrf(), "email": email, "password": password, **extra,
        })

    def get(self, path: str, **kwargs):
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, *,
             csrf_from: str = "/dashboard/", **kwargs):
        form = dict(data or {})
        form.setdefault("csrf_token", self.csrf(csrf_from))
        return self.http.post(path, data=form, **kwargs)


def text_of(response) -> str:
    return response.get_data(as_text=True)


def flashed(staff: Staff, response) -> str:
    """The page a redirect leads to (where the flashed message shows)."""
    assert response.status_code == 303, (response.status_code, text_of(response)[:500])
    return text_of(staff.get(response.headers["Location"]))


@pytest.fixture(name="staff")
def staff_fixture(app, case) -> Staff:
    """Signed in as Anne (no language of her own: the browser's decides)."""
    use_cheap_hasher(app)
    add_staff(case)
    signed = Staff(app.test_client())
    assert signed.login().status_code == 303
    return signed


@pytest.fixture(name="anonymous")
def anonymous_fixture(app) -> Staff:
    use_cheap_hasher(app)
    return Staff(app.test_client())
