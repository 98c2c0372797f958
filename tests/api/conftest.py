"""The API kit: a workspace with clients, a template, checklists and an uploaded
document; the Flask app on it with a clock the test controls; a client that carries a
token; and a real HTTP receiver for webhooks on a free loopback port."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from monthlydocs import checklists, clients, portal, storage, templates, tokens

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
TODAY = date(2026, 12, 1)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
SLOTS = (("Bank statements", False), ("Sales invoices", False), ("Receipts", True))


class Clock:
    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Seed:
    """What the workspace holds before a test starts."""

    client_ids: list[int]
    template_id: int
    checklist_ids: list[int]  # one per client, in client order
    item_ids: list[int]  # the first checklist's items
    document_id: int  # uploaded to the first checklist's first item
    extra: dict[str, Any] = field(default_factory=dict)


def seed_workspace(db, settings, now: datetime = NOW) -> Seed:
    template_id, _ = templates.save_template(
        db, "monthly", now, name="Monthly bookkeeping", due_day=10
    )
    for name, optional in SLOTS:
        templates.save_slot(db, "monthly", name, optional=optional, multiple=True)
    client_ids = [
        clients.add_client(
            db,
            clients.ClientInput(name=name, email=email, language="fr"),
            now,
            region="FR",
        )
        for name, email in (
            ("Boulangerie Dupont", "marie@dupont.example"),
            ("Garage Martin", "paul@martin.example"),
        )
    ]
    clients.assign(db, client_ids, template_id, now)
    template = templates.get_template(db, "monthly")
    result = checklists.generate(
        db, [checklists.Request(template)], now, TODAY, send=False
    )
    checklist_ids = [result.created_by_client[cid][0] for cid in client_ids]
    item_ids = [row["id"] for row in checklists.items(db, checklist_ids[0])]
    document_id = upload(db, settings, checklist_ids[0], item_ids[0], "relevé.pdf", now)
    return Seed(client_ids, template_id, checklist_ids, item_ids, document_id)


def upload(db, settings, checklist_id, item_id, filename, now, content=PDF) -> int:
    """A client's upload through the portal's core, into the real file store."""
    checklist = checklists.get_checklist(db, checklist_id)
    incoming = storage.receive(
        io.BytesIO(content), settings.files_dir, 10 * 2**20, filename
    )
    result = portal.upload(db, settings, checklist, item_id, incoming, now)
    return result.document["id"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def seed(db, settings) -> Seed:
    return seed_workspace(db, settings)


@pytest.fixture
def app(settings, seed, clock):
    from monthlydocs.web import create_app

    flask_app = create_app(settings, clock=clock)
    flask_app.config["TESTING"] = True
    return flask_app


class Api:
    """Flask's test client speaking JSON with a bearer token."""

    def __init__(self, http, token: str | None):
        self.http = http
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, **kwargs):
        return self.http.get(
            _url(path), headers=self.headers(kwargs.pop("headers", None)), **kwargs
        )

    def post(self, path: str, json: Any = None, **kwargs):
        return self.http.post(
            _url(path),
            json=json,
            headers=self.headers(kwargs.pop("headers", None)),
            **kwargs,
        )

    def patch(self, path: str, json: Any = None, **kwargs):
        return self.http.patch(
            _url(path),
            json=json,
            headers=self.headers(kwargs.pop("headers", None)),
            **kwargs,
        )

    def request(self, method: str, path: str, **kwargs):
        return self.http.open(
            _url(path),
            method=method,
            headers=self.headers(kwargs.pop("headers", None)),
            **kwargs,
        )

    def as_token(self, token: str | None) -> Api:
        return Api(self.http, token)


def _url(path: str) -> str:
    return path if path.startswith("/api/") else "/api/v1" + path


@pytest.fixture
def token(db) -> str:
    return tokens.create_token(db, "crm-sync", NOW)[1]


@pytest.fixture
def read_only_token(db) -> str:
    return tokens.create_token(db, "reporting", NOW, read_only=True)[1]


@pytest.fixture
def api(app, token) -> Api:
    return Api(app.test_client(), token)


def assert_problem(response, status: int, code: str, /, **errors: str) -> dict:
    """An RFC 9457 problem with this status and type; ``errors`` maps a pointer or
    parameter to a piece of its detail."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == f"urn:monthlydocs:problem:{code}"
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    found = {
        e.get("pointer") or e.get("parameter") or e.get("header"): e["detail"]
        for e in problem.get("errors", [])
    }
    for where, text in errors.items():
        where = where.replace("__", "/")
        assert where in found, (where, found)
        assert text in found[where], (text, found[where])
    return problem


# -- a webhook receiver --------------------------------------------------------------------


def verify_signature(
    secret: str, header: str, body: bytes, now: float, tolerance: int = 300
) -> bool:
    """The receiver's check, as the README shows it."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    if abs(now - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: datetime | None = None  # the receiver's clock when it arrived, if it has one

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """A real HTTP server in a thread. ``answers`` are given in turn: a status code,
    or (status, headers); when none are left it answers 204. With a ``clock`` (a
    Clock), each request notes the time on it when it arrived, without moving it."""

    def __init__(self):
        self.received: list[Received] = []
        self.answers: list[Any] = []
        self.clock: Clock | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.received.append(
                    Received(
                        dict(self.headers.items()),
                        self.rfile.read(length),
                        receiver.clock.now if receiver.clock else None,
                    )
                )
                answer = receiver.answers.pop(0) if receiver.answers else 204
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                body = b"" if status == 204 else b"busy, try later"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll keeps shutdown() quick; requests are served as they come.
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()
