"""Shared fixtures: a real workspace on disk, the CLI bound to it, a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monthlydocs.config import load_settings
from monthlydocs.db import open_db
from monthlydocs.workspace import create_workspace

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path):
    """No configuration or secret from the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith("MONTHLYDOCS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERMINAL_WIDTH", "200")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A fresh workspace folder (file email backend); returns its config path."""
    settings = create_workspace(
        tmp_path / "ws",
        {"firm": {"name": "Cabinet Dupont & Fils", "email": "office@dupont.example"}},
    )
    return settings.path


@pytest.fixture
def settings(workspace):
    return load_settings(workspace, environ={})


@pytest.fixture
def db(settings):
    database = open_db(settings.database_path)
    yield database
    database.close()


class Cli:
    """Runs commands against one workspace, like a person at a terminal."""

    def __init__(self, config: Path):
        self.config = config
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env=None):
        from monthlydocs.cli import app

        return self.runner.invoke(
            app,
            ["--config", str(self.config), *args],
            input=input,
            env=env,
            catch_exceptions=False,
        )


@pytest.fixture
def cli(workspace) -> Cli:
    return Cli(workspace)


def use_smtp(config: Path, port: int) -> None:
    """Point a workspace at the test SMTP server."""
    from monthlydocs.workspace import set_value

    text = config.read_text(encoding="utf-8")
    for key, value in (
        ("backend", "smtp"),
        ("host", "127.0.0.1"),
        ("port", port),
        ("from_address", "office@dupont.example"),
        ("from_name", "Cabinet Dupont & Fils – Expertise"),
        ("reply_to", "jean@dupont.example"),
        ("timeout", 5),
    ):
        text = set_value(text, "email", key, value)
    config.write_text(text, encoding="utf-8")


class SmtpSink:
    """An aiosmtpd server on a free port that keeps every message it accepts.

    ``refuse`` makes it answer 550 to RCPT for addresses containing that text;
    ``down()`` stops it so that connections are refused.
    """

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.connections = 0
        self.refuse: str | None = None
        self.drop_after: int | None = None
        self.lock = threading.Lock()
        self.port = _free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.running = True

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse and self.refuse in address:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_after is not None and len(self.messages) >= self.drop_after:
            # Hang up instead of answering: the client must reconnect and resend.
            self.drop_after = None
            server.transport.close()
            return "421 closing"
        with self.lock:
            self.messages.append(envelope.original_content)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(raw, policy=email.policy.default)
            for raw in self.messages
        ]

    def down(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    sink = SmtpSink()
    yield sink
    sink.down()


@pytest.fixture
def free_port() -> int:
    return _free_port()


class PinnedClock:
    """A clock that stands still until moved, for the core (call it) and for the CLI
    and its subprocesses (through ``MONTHLYDOCS_NOW``)."""

    def __init__(self, monkeypatch, now: datetime):
        self.monkeypatch = monkeypatch
        self.set(now)

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment
        self.monkeypatch.setenv("MONTHLYDOCS_NOW", moment.isoformat())

    def advance(self, **delta) -> None:
        self.set(self.now + timedelta(**delta))


@pytest.fixture
def clock(monkeypatch) -> PinnedClock:
    """Every command's clock pinned at NOW (1 December 2026, 10:00 in Paris)."""
    return PinnedClock(monkeypatch, NOW)


def eml_text(path: Path) -> str:
    """Subject, text part and HTML part of an .eml file, decoded, for assertions."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    parts = [
        message["Subject"],
        message.get_body("plain").get_content(),
        message.get_body("html").get_content(),
    ]
    return "\n".join(parts)


def example_wording(slug: str, name: str, language: str) -> str:
    """The name a client reading ``language`` sees for the slot ``name`` of the example
    template ``slug`` (or for the template itself when ``name`` is its name), read from
    templates.example.toml: its translation, else the base name."""
    import tomllib

    from monthlydocs.workspace import example_templates_path

    data = tomllib.loads(example_templates_path().read_text(encoding="utf-8"))
    [template] = [t for t in data["template"] if t["slug"] == slug]
    rows = [template, *template["slot"]]
    [row] = [r for r in rows if r["name"] == name]
    return row.get("translations", {}).get(language, {}).get("name", name)
