"""The portal kit: a workspace with one client, a template and its generated checklist,
the Flask app on it with a clock the test controls, and a small client for the portal.

Browser tests import make_case from here too.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monthlydocs import checklists, clients, templates
from monthlydocs.config import load_settings
from monthlydocs.db import open_db
from monthlydocs.workspace import create_workspace

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SLOTS = (
    # name, description, optional, multiple
    ("Bank statements", "Every account, the whole month", False, True),
    ("Sales invoices", "Invoices you sent to your customers", False, True),
    ("Expense receipts", "Only if you paid something personally", True, False),
)
# The smallest file each accepted kind can be recognised from.
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea73581e4000000"
                    "0049454e44ae426082")
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + (
    b"PE\x00\x00" + b"\x00" * 200)


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@dataclass
class Case:
    """One firm, one client, one checklist: what a portal test starts from."""

    settings: Any
    client_id: int
    checklist_id: int
    token: str
    item_ids: list[int]
    extra: dict = field(default_factory=dict)

    def db(self):
        return open_db(self.settings.database_path)

    def checklist(self) -> dict:
        db = self.db()
        try:
            return checklists.get_checklist(db, self.checklist_id)
        finally:
            db.close()

    def items(self) -> list[dict]:
        db = self.db()
        try:
            return checklists.items(db, self.checklist_id)
        finally:
            db.close()

    def documents(self) -> list[dict]:
        db = self.db()
        try:
            return list(db.query("SELECT * FROM documents ORDER BY id"))
        finally:
            db.close()

    def events(self, action: str) -> list[dict]:
        db = self.db()
        try:
            return list(db.query("SELECT * FROM events WHERE action = ? ORDER BY id",
                                 [action]))
        finally:
            db.close()


def make_case(
    folder: Path,
    *,
    language: str | None = "fr",
    name: str = "Boulangerie Dupont",
    slots=SLOTS,
    max_upload_mb: int = 1,
    now: datetime = NOW,
    portal: dict | None = None,
) -> Case:
    """A workspace in ``folder`` with one client and this month's checklist."""
    settings = create_workspace(folder, {
        "firm": {"name": "Cabinet Martin", "email": "office@martin.example",
                 "phone": "+33 1 23 45 67 89"},
        "storage": {"max_upload_mb": max_upload_mb},
        "portal": portal or {},
    })
    settings = load_settings(settings.path, environ={})
    db = open_db(settings.database_path)
    try:
        client_id = clients.add_client(
            db, clients.ClientInput(name=name, email="marie@dupont.example",
                                    language=language),
            now, region="FR",
        )
        template_id, _created = templates.save_template(
            db, "monthly", now, name="Monthly bookkeeping", due_day=10)
        for slot_name, description, optional, multiple in slots:
            templates.save_slot(db, "monthly", slot_name, description=description,
                                optional=optional, multiple=multiple)
        clients.assign(db, [client_id], template_id, now)
        template = templates.get_template(db, "monthly")
        result = checklists.generate(
            db, [checklists.Request(template)], now, date(2026, 12, 1), send=False)
        checklist_id = result.created_by_client[client_id][0]
        checklist = checklists.get_checklist(db, checklist_id)
        item_ids = [row["id"] for row in checklists.items(db, checklist_id)]
    finally:
        db.close()
    return Case(settings, client_id, checklist_id, checklist["token"], item_ids)


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class PortalClient:
    """Flask's test client with the portal's vocabulary."""

    def __init__(self, flask_client, case: Case):
        self.http = flask_client
        self.case = case

    @property
    def url(self) -> str:
        return f"/c/{self.case.token}"

    def open(self, **headers):
        return self.http.get(self.url, headers=headers)

    def csrf(self) -> str:
        page = self.http.get(self.url)
        return _CSRF.search(page.get_data(as_text=True)).group(1)

    def upload(self, item_id: int, *files: tuple[str, bytes], xhr: bool = False,
               csrf: str | None = None, headers: dict | None = None):
        data: dict[str, Any] = {
            "csrf_token": csrf if csrf is not None else self.csrf(),
            "files": [(io.BytesIO(content), name) for name, content in files],
        }
        return self.http.post(
            f"{self.url}/items/{item_id}/upload", data=data,
            content_type="multipart/form-data",
            headers={**_xhr(xhr), **(headers or {})},
        )

    def post(self, path: str, xhr: bool = False, **form):
        form.setdefault("csrf_token", self.csrf())
        return self.http.post(f"{self.url}{path}", data=form, headers=_xhr(xhr))

    def not_applicable(self, item_id: int, reason: str = "", xhr: bool = False):
        return self.post(f"/items/{item_id}/not-applicable", xhr=xhr, reason=reason)

    def undo(self, item_id: int, xhr: bool = False):
        return self.post(f"/items/{item_id}/undo", xhr=xhr)

    def remove(self, document_id: int, xhr: bool = False):
        return self.post(f"/documents/{document_id}/remove", xhr=xhr)


def _xhr(on: bool) -> dict:
    return {"X-Requested-With": "XMLHttpRequest"} if on else {}


def text_of(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def case(tmp_path) -> Case:
    return make_case(tmp_path / "ws")


@pytest.fixture
def app(case, clock):
    from monthlydocs.web import create_app

    flask_app = create_app(case.settings, clock=clock)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def portal(app, case) -> PortalClient:
    return PortalClient(app.test_client(), case)


@pytest.fixture
def cli_runner_for():
    """Run `monthlydocs` commands against a case's workspace."""
    from typer.testing import CliRunner

    from monthlydocs.cli import app as cli_app

    def bind(case: Case):
        runner = CliRunner()

        def run(*args: str):
            return runner.invoke(cli_app, ["--config", str(case.settings.path), *args])

        return run

    return bind
