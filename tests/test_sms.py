"""SMS: the file backend, the Twilio backend against a local stand-in for the Messages API,
the GSM-7 helpers, and reminders driven through the outbox to both backends.

The Twilio boundary is HTTP: the official client talks to a real server on a free port,
which checks what Twilio would check and answers what Twilio would answer.
"""

from __future__ import annotations

import base64
import inspect
import json
import secrets
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from conftest import NOW
from monthlydocs import checklists, clients, outbox, reminders, templates
from monthlydocs.channels.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    FileSmsBackend,
    Sms,
    TwilioSmsBackend,
    is_gsm7,
    sms_backend_for,
    sms_parts,
)
from monthlydocs.config import load_settings, settings_from_dict
from monthlydocs.db import open_db
from monthlydocs.errors import ConfigError, DeliveryError, PermanentDeliveryError
from monthlydocs.workspace import example_templates_path, set_value

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "test-auth-token-0042"
SERVICE = "MG" + "fedcba9876543210" * 2
FROM = "+33700000001"
TO = "+33612345678"
MESSAGES_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"


# -- a stand-in for the Twilio Messages API ---------------------------------------------------


class FakeTwilio:
    """Answers POST /2010-04-01/Accounts/<sid>/Messages.json like Twilio does.

    Checks Basic auth (401, code 20003, otherwise). ``answers`` maps a To number to
    ``(status, code, message)`` for an error answer; any other To gets 201 and a new SID.
    Every request is kept, with the client port it came from.
    """

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: dict[str, tuple[int, int, str]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as api.twilio.com
            timeout = 10

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode("utf-8")
                form = {
                    k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()
                }
                request = {
                    "path": self.path,
                    "auth": _basic(self.headers.get("Authorization", "")),
                    "content_type": self.headers.get("Content-Type", ""),
                    "form": form,
                    "port": self.client_address[1],
                }
                with fake.lock:
                    fake.requests.append(request)
                status, payload = fake.answer(request)
                self._reply(status, payload)

            def do_GET(self):
                self._reply(
                    405, {"code": 20004, "message": "Method not allowed", "status": 405}
                )

            def _reply(self, status, payload):
                body = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        )
        self.thread.start()

    def answer(self, request: dict) -> tuple[int, dict]:
        if request["auth"] != (SID, TOKEN):
            return 401, _error(401, 20003, "Authenticate")
        if request["path"] != MESSAGES_PATH:
            return 404, _error(
                404, 20404, f"The requested resource {request['path']} was not found"
            )
        form = request["form"]
        if form.get("To") in self.answers:
            return _error_answer(*self.answers[form["To"]])
        if not form.get("Body"):
            return 400, _error(400, 21602, "Message body is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return 400, _error(400, 21603, "The 'From' number is required.")
        sid = "SM" + secrets.token_hex(16)
        return 201, {
            "sid": sid,
            "account_sid": SID,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": "Tue, 08 Dec 2026 09:00:00 +0000",
            "date_updated": "Tue, 08 Dec 2026 09:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{SID}/Messages/{sid}.json",
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _error(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _error_answer(status: int, code: int, message: str) -> tuple[int, dict]:
    return status, _error(status, code, message)


def _basic(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    return user, password


@pytest.fixture
def twilio():
    fake = FakeTwilio()
    yield fake
    fake.stop()


def twilio_settings(url: str, **sms):
    values = {
        "backend": "twilio",
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": FROM,
        "api_url": url,
        **sms,
    }
    return settings_from_dict({"sms": values}, environ={})


# -- the file backend ------------------------------------------------------------------------


def test_file_backend_writes_one_complete_text_file_per_sms(tmp_path):
    folder = tmp_path / "outbox"
    with FileSmsBackend(folder) as backend:
        first = backend.send(Sms(to=TO, body="Cabinet Dupont : 2 documents manquent."))
        second = backend.send(
            Sms(to="+4915112345678", body="Grüße – noch 1 Dokument ✓")
        )
    assert first != second
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [Path(first).name, Path(second).name]
    )  # no temporary file left behind
    assert all(name.endswith(".txt") for name in (first, second))
    assert Path(first).read_text(encoding="utf-8") == (
        f"To: {TO}\n\nCabinet Dupont : 2 documents manquent.\n"
    )
    assert Path(second).read_bytes().decode("utf-8").splitlines() == [
        "To: +4915112345678",
        "",
        "Grüße – noch 1 Dokument ✓",
    ]


def test_file_backend_reports_an_unwritable_folder_as_a_delivery_error(tmp_path):
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(DeliveryError, match="outbox"):
        with FileSmsBackend(blocker) as backend:
            backend.send(Sms(to=TO, body="x"))


def test_backends_share_one_interface():
    for backend in (FileSmsBackend, TwilioSmsBackend):
        assert isinstance(backend.name, str)
        for method in ("__enter__", "__exit__", "send"):
            assert callable(getattr(backend, method)), (backend, method)
        assert list(inspect.signature(backend.send).parameters) == ["self", "sms"]


def test_backend_is_chosen_by_one_setting(tmp_path):
    chosen = sms_backend_for(
        settings_from_dict({"sms": {"backend": "file"}}, environ={})
    )
    assert isinstance(chosen, FileSmsBackend)
    assert isinstance(sms_backend_for(twilio_settings("")), TwilioSmsBackend)
    with pytest.raises(ConfigError, match="sms.backend"):
        sms_backend_for(settings_from_dict({}, environ={}))


# -- the Twilio backend ----------------------------------------------------------------------


def test_twilio_request_has_twilio_path_auth_and_form_fields(twilio):
    with sms_backend_for(twilio_settings(twilio.url)) as backend:
        sid = backend.send(
            Sms(to=TO, body="Il manque 2 documents : relevé, facture. Merci")
        )
    [request] = twilio.requests
    assert request["path"] == MESSAGES_PATH
    assert request["auth"] == (SID, TOKEN)
    assert request["content_type"].startswith("application/x-www-form-urlencoded")
    assert request["form"] == {
        "To": TO,
        "From": FROM,
        "Body": "Il manque 2 documents : relevé, facture. Merci",
    }
    assert sid.startswith("SM") and len(sid) == 34


def test_twilio_messaging_service_replaces_from(twilio):
    settings = twilio_settings(
        twilio.url, from_number="", messaging_service_sid=SERVICE
    )
    with TwilioSmsBackend(settings) as backend:
        backend.send(Sms(to=TO, body="Hello ✓ 😀"))
    [request] = twilio.requests
    assert request["form"] == {
        "To": TO,
        "MessagingServiceSid": SERVICE,
        "Body": "Hello ✓ 😀",
    }


def test_twilio_token_from_the_named_environment_variable(twilio, monkeypatch):
    monkeypatch.setenv("FIRM_TWILIO_TOKEN", TOKEN)
    settings = twilio_settings(
        twilio.url, auth_token="", auth_token_env="FIRM_TWILIO_TOKEN"
    )
    with TwilioSmsBackend(settings) as backend:
        backend.send(Sms(to=TO, body="x"))
    assert twilio.requests[0]["auth"] == (SID, TOKEN)


def test_twilio_one_client_and_one_connection_for_a_run(twilio):
    with TwilioSmsBackend(twilio_settings(twilio.url)) as backend:
        sids = {backend.send(Sms(to=TO, body=f"message {n}")) for n in range(3)}
    assert len(sids) == 3
    assert len(twilio.requests) == 3
    assert len({r["port"] for r in twilio.requests}) == 1  # kept alive, not reopened


@pytest.mark.parametrize(
    ("status", "code", "text", "permanent"),
    [
        (400, 21211, "The 'To' number +3361234 is not a valid phone number.", True),
        (400, 21610, "Attempt to send to unsubscribed recipient", True),
        (
            400,
            21606,
            "The 'From' phone number provided is not a valid SMS-capable "
            "inbound phone number for your account.",
            False,
        ),
        (429, 20429, "Too Many Requests", False),
        (500, 20500, "Internal Server Error", False),
        (503, 20503, "Service Unavailable", False),
    ],
)
def test_twilio_errors_become_our_errors(twilio, status, code, text, permanent):
    twilio.answers[TO] = (status, code, text)
    with TwilioSmsBackend(twilio_settings(twilio.url)) as backend:
        with pytest.raises(DeliveryError) as caught:
            backend.send(Sms(to=TO, body="x"))
    assert isinstance(caught.value, PermanentDeliveryError) is permanent
    message = str(caught.value)
    assert str(code) in message and text in message and str(status) in message
    assert "\033[" not in message  # Twilio's coloured terminal form is not what we show
    assert len(twilio.requests) == 1  # the client itself does not retry


def test_twilio_wrong_token_is_retried_and_says_what_to_check(twilio):
    settings = twilio_settings(twilio.url, auth_token="not-the-token")
    with TwilioSmsBackend(settings) as backend:
        with pytest.raises(DeliveryError) as caught:
            backend.send(Sms(to=TO, body="x"))
    assert not isinstance(caught.value, PermanentDeliveryError)
    assert "20003" in str(caught.value) and "auth token" in str(caught.value)
    assert TOKEN not in str(caught.value) and "not-the-token" not in str(caught.value)


def test_twilio_unreachable_is_a_delivery_error(free_port):
    settings = twilio_settings(f"http://127.0.0.1:{free_port}")
    with TwilioSmsBackend(settings) as backend:
        with pytest.raises(DeliveryError, match="Cannot reach Twilio") as caught:
            backend.send(Sms(to=TO, body="x"))
    assert not isinstance(caught.value, PermanentDeliveryError)


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"account_sid": ""}, "sms.account_sid"),
        ({"auth_token": ""}, "sms.auth_token"),
        (
            {"auth_token": "", "auth_token_env": "NO_SUCH_TWILIO_VAR"},
            "NO_SUCH_TWILIO_VAR",
        ),
        ({"from_number": ""}, "sms.from_number"),
    ],
)
def test_twilio_missing_settings_are_one_clear_config_error(
    changes, names, monkeypatch
):
    monkeypatch.delenv("NO_SUCH_TWILIO_VAR", raising=False)
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")) as caught:
        TwilioSmsBackend(twilio_settings("http://127.0.0.1:9", **changes))
    assert "\n" not in str(caught.value)


# -- GSM-7 -------------------------------------------------------------------------------------


def test_gsm7_tables_are_complete():
    assert (
        len(GSM7_BASIC) == 127
    )  # 128 positions, one of them the escape to the extension
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "gsm7"),
    [
        ("", True),
        ("Bonjour, il manque vos relevés de décembre. Merci !", True),
        ("Ça y est : à bientôt", False),  # ô is not GSM-7
        ("Ça va ? Où êtes-vous", False),  # ê
        ("Ça va ?", True),  # capital Ç is, small ç is not
        ("Documents reçus", False),
        ("Grüße aus München – 3 Dokumente", False),  # the en dash
        ("Grüße aus München - 3 Dokumente", True),
        ("¿Qué tal? ¡Año nuevo!", True),
        ("Información", False),  # ó
        ("Dokumen Anda belum lengkap: https://x.example/c/AbC_-9", True),
        ("Price: 10€ {x} [y] ~z | a^b \\", True),
        ("l’apostrophe typographique", False),
        ("back`tick", False),
        ("tab\there", False),
        ("emoji 😀", False),
    ],
)
def test_is_gsm7(text, gsm7):
    assert is_gsm7(text) is gsm7


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        (
            "a" * 152 + "€" + "a" * 152,
            3,
        ),  # 306 septets, but € cannot straddle two parts
        ("ç" * 70, 1),
        ("ç" * 71, 2),
        ("ç" * 134, 2),
        ("ç" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 units
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),  # 134 units, the emoji is never split
        ("a" * 159 + "ç", 3),  # one character outside GSM-7 makes the whole text UCS-2
    ],
)
def test_sms_parts(text, parts):
    assert sms_parts(text) == parts
    assert Sms(to=TO, body=text).parts == parts


# -- through the outbox -------------------------------------------------------------------------


def sms_reminder_due(workspace: Path, **sms) -> tuple:
    """A client with a phone, their link sent on NOW, and the day-7 reminder (with its SMS)
    queued a week later at 10:00 in Paris. Returns (db, settings, when, client)."""
    text = workspace.read_text(encoding="utf-8")
    for key, value in sms.items():
        text = set_value(text, "sms", key, value)
    workspace.write_text(text, encoding="utf-8")
    settings = load_settings(workspace, environ={})
    db = open_db(settings.database_path)
    templates.load_file(db, example_templates_path(), NOW)
    monthly = templates.get_template(db, "monthly")
    client_id = clients.add_client(
        db,
        clients.ClientInput(
            "Élodie Martin", "elodie@example.com", phone="06 12 34 56 78", language="fr"
        ),
        NOW,
        region="FR",
    )
    clients.assign(db, [client_id], monthly["id"], NOW)
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    assert outbox.deliver(db, settings, NOW, "email").sent == 1  # the link
    when = NOW + timedelta(days=7)  # 10:00 in Paris, day 7: in sms_days
    queued = reminders.queue(db, settings, when)
    assert (queued.reminded, queued.sms) == (1, 1)
    client = clients.get_client(db, client_id)
    return db, settings, when, client


def _sms_rows(db) -> list[dict]:
    return list(db.query("SELECT * FROM messages WHERE channel = 'sms'"))


def test_reminder_sms_through_the_outbox_to_twilio(workspace, twilio):
    db, settings, when, client = sms_reminder_due(
        workspace,
        backend="twilio",
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        api_url=twilio.url,
    )
    report = outbox.deliver(db, settings, when, "sms")
    assert (report.sent, report.failed) == (1, 0)
    [request] = twilio.requests
    assert request["path"] == MESSAGES_PATH and request["auth"] == (SID, TOKEN)
    assert request["form"]["To"] == client["phone"] == TO
    assert request["form"]["From"] == FROM
    assert "http://127.0.0.1:8000/c/" in request["form"]["Body"]
    [row] = _sms_rows(db)
    assert row["kind"] == "reminder" and row["state"] == "sent"
    assert row["message_id"].startswith("SM") and len(row["message_id"]) == 34
    # Sent means sent: a second run sends nothing more.
    assert outbox.deliver(db, settings, when + timedelta(minutes=15), "sms").sent == 0
    assert len(twilio.requests) == 1
    db.close()


def test_reminder_sms_refused_for_a_bad_number_is_not_retried(workspace, twilio):
    twilio.answers[TO] = (
        400,
        21211,
        f"The 'To' number {TO} is not a valid phone number.",
    )
    db, settings, when, _client = sms_reminder_due(
        workspace,
        backend="twilio",
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        api_url=twilio.url,
    )
    report = outbox.deliver(db, settings, when, "sms")
    assert (report.sent, report.failed) == (0, 1)
    [row] = _sms_rows(db)
    assert row["state"] == "failed" and "21211" in row["last_error"]
    assert row["attempts"] == outbox.MAX_ATTEMPTS
    assert outbox.deliver(db, settings, when + timedelta(days=2), "sms").failed == 0
    assert len(twilio.requests) == 1
    db.close()


def test_reminder_sms_after_a_twilio_outage_is_sent_by_a_later_run(workspace, twilio):
    twilio.answers[TO] = (503, 20503, "Service Unavailable")
    db, settings, when, _client = sms_reminder_due(
        workspace,
        backend="twilio",
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        api_url=twilio.url,
    )
    assert outbox.deliver(db, settings, when, "sms").failed == 1
    [row] = _sms_rows(db)
    assert (
        row["state"] == "failed" and row["attempts"] == 1 and "503" in row["last_error"]
    )
    del twilio.answers[TO]
    later = when + timedelta(minutes=1)
    assert outbox.deliver(db, settings, later, "sms").sent == 1
    [row] = _sms_rows(db)
    assert row["state"] == "sent" and row["attempts"] == 2
    assert len(twilio.requests) == 2
    db.close()


def test_reminder_sms_to_the_file_backend(workspace):
    db, settings, when, client = sms_reminder_due(workspace, backend="file")
    report = outbox.deliver(db, settings, when, "sms")
    assert report.sent == 1
    [row] = _sms_rows(db)
    written = Path(row["message_id"])
    assert written.parent == settings.outbox_dir and written.suffix == ".txt"
    lines = written.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"To: {client['phone']}" and lines[1] == ""
    assert "http://127.0.0.1:8000/c/" in lines[2]
    db.close()
