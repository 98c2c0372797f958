import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import NOW, eml_text, use_smtp
from monthlydocs import checklists, clients, outbox, templates
from monthlydocs.db import open_db
from monthlydocs.workspace import example_templates_path

LINK_RE = re.compile(r"http://127\.0\.0\.1:8000/c/[A-Za-z0-9_-]{32,}")


def seed(db, *, languages=("fr", "de", None)):
    """The example templates and one client per language, all on `monthly`."""
    templates.load_file(db, example_templates_path(), NOW)
    monthly = templates.get_template(db, "monthly")
    ids = []
    for number, language in enumerate(languages):
        client_id = clients.add_client(
            db,
            clients.ClientInput(
                f"Client {number} Müller", f"c{number}@example.com", language=language
            ),
            NOW,
            region="FR",
        )
        clients.assign(db, [client_id], monthly["id"], NOW)
        ids.append(client_id)
    return ids


def test_generate_is_idempotent_and_queues_one_message_per_client(db):
    seed(db)
    monthly = templates.get_template(db, "monthly")
    first = checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    assert (first.created, first.already, first.messages_queued) == (3, 0, 3)
    second = checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    assert (second.created, second.already, second.messages_queued) == (0, 3, 0)
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 3
    assert db.execute("SELECT count(*) FROM checklist_items").fetchone()[0] == 15
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    row = db.execute("SELECT period, due_on FROM checklists LIMIT 1").fetchone()
    assert row == ("2026-12", "2026-12-10")


def test_tokens_are_long_random_and_unique(db):
    seed(db, languages=[None] * 50)
    monthly = templates.get_template(db, "monthly")
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    tokens = [r[0] for r in db.execute("SELECT token FROM checklists")]
    assert len(set(tokens)) == 50
    assert all(len(t) >= 32 for t in tokens)  # 192 bits, base64url


def test_dry_run_writes_nothing(db):
    seed(db)
    monthly = templates.get_template(db, "monthly")
    result = checklists.generate(
        db, [checklists.Request(monthly)], NOW, NOW.date(), dry_run=True
    )
    assert result.created == 3
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_archived_and_pending_clients_get_nothing(db):
    ids = seed(db)
    clients.archive_client(db, ids[0], NOW)
    db.execute("UPDATE clients SET status = 'pending' WHERE id = ?", [ids[1]])
    monthly = templates.get_template(db, "monthly")
    result = checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    assert result.created == 1


def test_one_email_covers_every_checklist_of_the_run(db, settings):
    ids = seed(db, languages=["fr"])
    vat = templates.get_template(db, "vat")
    clients.assign(db, ids, vat["id"], NOW)
    requests = [
        checklists.Request(templates.get_template(db, s)) for s in ("monthly", "vat")
    ]
    result = checklists.generate(db, requests, NOW, NOW.date())
    assert result.created == 2 and result.messages_queued == 1
    report = outbox.deliver_email(db, settings, NOW)
    assert report.sent == 1
    [eml] = list(settings.outbox_dir.glob("*.eml"))
    text = eml_text(eml)
    assert "Bank statements" in text and "Sales ledger" in text


def test_file_backend_writes_a_complete_rfc5322_message(cli, settings):
    import email
    import email.policy

    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    assert (
        cli("generate", "--template", "monthly", "--period", "2026-12").exit_code == 0
    )
    [eml] = list(settings.outbox_dir.glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"].addresses[0].display_name == "Client 0 Müller"
    assert message["Message-ID"] and message["Date"]
    assert message.get_body("plain") and message.get_body("html")
    assert (
        db.execute(
            "SELECT count(*) FROM checklists WHERE link_sent_at IS NOT NULL"
        ).fetchone()[0]
        == 1
    )


def test_generate_emails_through_smtp_in_each_language(cli, settings, smtp_server):
    use_smtp(cli.config, smtp_server.port)
    db = open_db(settings.database_path)
    seed(db, languages=["fr", "de", "es", "id", "en", None])

    result = cli(
        "generate",
        "--template",
        "monthly",
        "--period",
        "2026-12",
        "--due",
        "2026-12-10",
    )

    assert result.exit_code == 0, result.output
    assert "Emails sent: 6, failed: 0" in result.output
    assert smtp_server.connections == 1  # one connection for the whole run
    messages = smtp_server.parsed()
    assert len(messages) == 6
    assert len({m["Message-ID"] for m in messages}) == 6
    expected = {
        "fr": ("Bonjour", "décembre 2026", "10 décembre 2026"),
        "de": ("Hallo", "Dezember 2026", "10. Dezember 2026"),
        "es": ("Hola", "diciembre 2026", "10 de diciembre de 2026"),
        "id": ("Halo", "Desember 2026", "10 Desember 2026"),
        "en": ("Hello", "December 2026", "December 10, 2026"),
    }
    for message in messages:
        language = message["Content-Language"]
        assert message["From"].addresses[0].display_name == (
            "Cabinet Dupont & Fils – Expertise"
        )
        assert message["From"].addresses[0].addr_spec == "office@dupont.example"
        assert message["Reply-To"].addresses[0].addr_spec == "jean@dupont.example"
        assert message["Date"] is not None
        plain = message.get_body("plain").get_content()
        html = message.get_body("html").get_content()
        assert "<" not in plain, "the text part must not carry HTML"
        assert f'<html lang="{language}">' in html
        greeting, period, due = expected[language]
        assert plain.startswith(f"{greeting} Client"), plain[:80]
        assert period in message["Subject"] or period in plain
        assert due in plain and due in html
        links_plain = LINK_RE.findall(plain)
        assert links_plain and links_plain[0] in html
    by_client = {
        m["To"].addresses[0].addr_spec: m["Content-Language"] for m in messages
    }
    assert by_client["c5@example.com"] == "en"  # no language: the firm's default

    again = cli("generate", "--template", "monthly", "--period", "2026-12")
    assert again.exit_code == 0
    assert len(smtp_server.messages) == 6


def test_smtp_down_keeps_checklists_and_the_next_run_sends(cli, settings, smtp_server):
    use_smtp(cli.config, smtp_server.port)
    db = open_db(settings.database_path)
    seed(db, languages=["en", "fr"])
    smtp_server.down()

    result = cli("generate", "--template", "monthly", "--period", "2026-12")

    assert result.exit_code == 2
    assert "Cannot reach SMTP server 127.0.0.1" in result.stderr
    assert "the next `monthlydocs generate` or `remind` will retry" in result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 2
    rows = db.execute("SELECT state, attempts, last_error FROM messages").fetchall()
    assert [r[:2] for r in rows] == [("failed", 1), ("failed", 1)]

    from conftest import SmtpSink

    sink = SmtpSink()
    try:
        use_smtp(cli.config, sink.port)
        retry = cli("generate", "--template", "monthly", "--period", "2026-12")
        assert retry.exit_code == 0, retry.output
        assert len(sink.messages) == 2
        states = {r[0] for r in db.execute("SELECT state FROM messages")}
        assert states == {"sent"}
    finally:
        sink.down()


def test_refused_address_is_recorded_and_others_still_go(cli, settings, smtp_server):
    use_smtp(cli.config, smtp_server.port)
    db = open_db(settings.database_path)
    seed(db, languages=["en", "en", "en"])
    smtp_server.refuse = "c1@"
    result = cli("generate", "--template", "monthly", "--period", "2026-12")
    assert result.exit_code == 2
    assert "550" in result.stderr
    assert len(smtp_server.messages) == 2
    failed = outbox.failed_messages(db)
    assert [m["recipient"] for m in failed] == ["c1@example.com"]
    assert failed[0]["attempts"] == outbox.MAX_ATTEMPTS  # a refused address is final


def test_stale_claim_is_taken_back_but_a_live_one_is_not(db):
    from datetime import timedelta

    seed(db, languages=["en"])
    monthly = templates.get_template(db, "monthly")
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    [message_id] = outbox.due_ids(db, NOW, "email")
    assert outbox.claim(db, message_id, NOW) is not None
    assert outbox.claim(db, message_id, NOW) is None  # a second run cannot take it
    later = NOW + outbox.STALE_CLAIM + timedelta(seconds=1)
    assert outbox.due_ids(db, later, "email") == [message_id]
    assert outbox.claim(db, message_id, later)["attempts"] == 2


def test_generate_without_template_does_every_template_due(cli, settings):
    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    first = cli("generate", "--no-send")
    assert first.exit_code == 0, first.output
    assert "monthly" in first.output
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    second = cli("generate")
    assert "Nothing to generate" in second.output


def test_link_prints_only_the_url_and_rotates(cli, settings):
    db = open_db(settings.database_path)
    seed(db, languages=["fr"])
    db.execute("UPDATE clients SET phone = '+33612345678'")
    cli("generate", "--template", "monthly", "--period", "2026-12", "--no-send")
    out = cli("link", "Client 0").stdout
    assert LINK_RE.fullmatch(out.strip())
    rotated = cli("link", "Client 0", "--rotate").stdout.strip()
    assert rotated != out.strip() and LINK_RE.fullmatch(rotated)
    share = cli("link", "Client 0", "--whatsapp").stdout.strip()
    parsed = urlparse(share)
    assert parsed.netloc == "wa.me" and parsed.path == "/33612345678"
    text = parse_qs(parsed.query)["text"][0]
    assert rotated in text and text.startswith("Bonjour")


def test_whatsapp_without_phone(cli, settings):
    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    cli("generate", "--template", "monthly", "--period", "2026-12", "--no-send")
    assert cli("link", "Client 0", "--whatsapp").stdout.startswith(
        "https://wa.me/?text="
    )


def test_status_counts_and_json(cli, settings):
    db = open_db(settings.database_path)
    ids = seed(db, languages=["en", "en"])
    cli(
        "generate",
        "--template",
        "monthly",
        "--period",
        "2026-12",
        "--no-send",
        "--due",
        "2099-01-10",
    )
    db.execute(
        "UPDATE checklists SET first_opened_at = '2026-12-02T10:00:00Z'"
        " WHERE client_id = ?",
        [ids[0]],
    )
    data = json.loads(cli("status", "--json").stdout)
    assert data["counts"]["opened"] == 1 and data["counts"]["not_opened"] == 1
    table = cli("status", "--period", "2026-12").stdout
    assert "opened: 1" in table and "not opened: 1" in table
    assert "0/3" in table


@pytest.mark.parametrize("flag", [["--period", "2026-13"], ["--due", "tomorrow"]])
def test_generate_bad_options_are_one_line(cli, settings, flag):
    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    result = cli("generate", "--template", "monthly", *flag)
    assert result.exit_code != 0
    assert "Traceback" not in result.output + result.stderr
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 0


def test_email_test_reports_each_step(cli, smtp_server):
    use_smtp(cli.config, smtp_server.port)
    result = cli("email-test", "me@example.com")
    assert result.exit_code == 0, result.output
    assert f"ok: connected to 127.0.0.1:{smtp_server.port}" in result.stdout
    assert "ok: message accepted by the server" in result.stdout
    assert len(smtp_server.messages) == 1
    smtp_server.down()
    failed = cli("email-test", "me@example.com")
    assert failed.exit_code == 1
    assert failed.stderr.startswith("Error: Test message not sent: Cannot reach SMTP")
