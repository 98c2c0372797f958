import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import NOW, eml_text, example_wording, use_smtp
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
    # The French client reads the slots in French (templates.example.toml has them).
    assert example_wording("monthly", "Bank statements", "fr") in text
    assert example_wording("vat", "Sales ledger", "fr") in text
    assert "Bank statements" not in text


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
    # The first failure to connect stops the run: not counted as an attempt, and the
    # other message is not even tried.
    assert [r[:2] for r in rows] == [("failed", 0), ("pending", 0)]

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


def test_send_failures_are_one_line_and_listed_under_verbose(
    cli, settings, smtp_server
):
    use_smtp(cli.config, smtp_server.port)
    db = open_db(settings.database_path)
    seed(db, languages=["en", "en", "en", "en"])
    smtp_server.refuse = "example.com"
    db.execute("UPDATE clients SET email = 'c0@example.org' WHERE email LIKE 'c0@%'")

    result = cli("generate", "--template", "monthly", "--period", "2026-12")

    assert result.exit_code == 2
    assert "Emails sent: 1, failed: 3" in result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: 3 emails could not be sent (first: c1@example.com: ")
    assert "550" in line and "will retry" in line

    db.execute(
        "UPDATE messages SET state = 'failed', attempts = 1,"
        " next_attempt_at = '2026-01-01T00:00:00Z' WHERE state = 'failed'"
    )
    verbose = cli("--verbose", "generate", "--template", "monthly")
    assert verbose.exit_code == 2
    lines = verbose.stderr.strip().splitlines()
    assert [line.split(":")[0].strip() for line in lines[:3]] == [
        "c1@example.com",
        "c2@example.com",
        "c3@example.com",
    ]
    assert lines[3].startswith("Error: 3 emails could not be sent") and len(lines) == 4


def test_links_waiting_for_a_retry_are_reported(cli, settings, smtp_server):
    use_smtp(cli.config, smtp_server.port)
    db = open_db(settings.database_path)
    seed(db, languages=["en", "en"])
    monthly = templates.get_template(db, "monthly")
    checklists.generate(db, [checklists.Request(monthly, "2026-12")], NOW, NOW.date())
    # Both failed twice: the next try is allowed at 10:45 Paris time on 1 December 2099.
    db.execute(
        "UPDATE messages SET state = 'failed', attempts = 2, last_error = 'timed out',"
        " next_attempt_at = '2099-12-01T09:45:00Z'"
    )

    result = cli("generate", "--template", "monthly", "--period", "2026-12")

    assert result.exit_code == 2
    assert "Emails sent: 0, failed: 0, waiting for a retry: 2" in result.stdout
    assert result.stderr.strip() == (
        "Error: 2 link emails waiting to be retried after 2099-12-01 10:45; "
        "`monthlydocs status` shows the last error, and `monthlydocs generate` or "
        "`remind` retries them then."
    )
    assert smtp_server.messages == []


def test_stale_claim_is_taken_back_but_a_live_one_is_not(db):
    from datetime import timedelta

    seed(db, languages=["en"])
    monthly = templates.get_template(db, "monthly")
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    [message_id] = outbox.due_ids(db, NOW, "email")
    assert outbox.claim(db, message_id, NOW, clock=lambda: NOW) is not None
    # A second run cannot take it, even one applying the rules a day later.
    assert outbox.claim(db, message_id, NOW + timedelta(days=1), clock=lambda: NOW) is None
    # Stale by the wall clock, the claim is taken back.
    later = NOW + outbox.STALE_CLAIM + timedelta(seconds=1)
    assert outbox.due_ids(db, NOW, "email", clock=lambda: later) == [message_id]
    assert outbox.claim(db, message_id, NOW, clock=lambda: later)["attempts"] == 2


def test_generate_without_template_does_every_template_due(cli, settings):
    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    first = cli("generate", "--no-send")
    assert first.exit_code == 0, first.output
    assert "monthly" in first.output
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    second = cli("generate")  # what cron runs: the links made with --no-send go out
    assert second.exit_code == 0, second.output
    assert "Emails sent: 1, failed: 0" in second.output
    third = cli("generate")
    assert "Nothing to generate" in third.output
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1


def test_links_made_with_no_send_are_emailed_by_a_later_generate(cli, settings):
    db = open_db(settings.database_path)
    ids = seed(db, languages=["en", "fr", "de"])
    args = ("generate", "--template", "monthly", "--period", "2026-12")
    assert cli(*args, "--no-send").exit_code == 0
    db.execute(
        "UPDATE checklists SET completed_at = '2026-12-02T10:00:00Z'"
        " WHERE client_id = ?",
        [ids[2]],
    )  # complete already: no link to send

    dry = cli(*args, "--dry-run")
    assert (
        "Checklists made earlier without email (--no-send): 2, their links would"
        in (dry.stdout)
    )
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0

    later = cli(*args)
    assert later.exit_code == 0, later.output
    assert "Emails sent: 2, failed: 0" in later.stdout
    assert "their links go out now" in later.stdout
    sent = db.execute(
        "SELECT client_id FROM checklists WHERE link_sent_at IS NOT NULL ORDER BY 1"
    ).fetchall()
    assert sent == [(ids[0],), (ids[1],)]
    emails = sorted(settings.outbox_dir.glob("*.eml"))
    assert len(emails) == 2
    links = {LINK_RE.search(eml_text(eml)).group(0).rsplit("/", 1)[1] for eml in emails}
    tokens = {
        row[0]
        for row in db.execute(
            "SELECT token FROM checklists WHERE client_id IN (?, ?)", ids[:2]
        )
    }
    assert links == tokens

    again = cli(*args)
    assert "Emails sent: 0, failed: 0" in again.stdout
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 2


def test_an_unsent_link_joins_the_clients_new_checklist_in_one_email(db, settings):
    ids = seed(db, languages=["fr"])
    vat = templates.get_template(db, "vat")
    clients.assign(db, ids, vat["id"], NOW)
    monthly = templates.get_template(db, "monthly")
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date(), send=False)

    result = checklists.generate(
        db, [checklists.Request(monthly), checklists.Request(vat)], NOW, NOW.date()
    )

    assert (result.created, result.unsent, result.messages_queued) == (1, 1, 1)
    [covered] = db.execute("SELECT checklist_ids FROM messages").fetchone()
    assert sorted(json.loads(covered)) == [1, 2]


def test_a_link_already_queued_or_refused_is_not_queued_again(db):
    seed(db, languages=["en"])
    monthly = templates.get_template(db, "monthly")
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    db.execute(
        "UPDATE messages SET state = 'failed', attempts = ?, last_error = '550'",
        [outbox.MAX_ATTEMPTS],
    )
    again = checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date())
    assert (again.unsent, again.messages_queued) == (0, 0)
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1


def test_a_named_client_not_assigned_to_the_template_is_an_error(cli, settings):
    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    clients.add_client(
        db, clients.ClientInput("Z Co", "z@example.com"), NOW, region="FR"
    )

    result = cli(
        "generate", "--template", "monthly", "--client", "Client 0", "--client", "Z Co"
    )

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: Z Co is not assigned to monthly: nothing was generated."
    )
    assert "`monthlydocs client assign CLIENT --template monthly`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0

    cli("client", "assign", "Z Co", "--template", "monthly")
    assigned = cli("generate", "--template", "monthly", "--client", "Z Co")
    assert assigned.exit_code == 0, assigned.output
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 1


def test_a_named_archived_client_is_an_error_too(db):
    ids = seed(db, languages=["en", "en"])
    clients.archive_client(db, ids[1], NOW)
    monthly = templates.get_template(db, "monthly")
    with pytest.raises(checklists.NotAssigned, match="Client 1 Müller is archived"):
        checklists.generate(
            db, [checklists.Request(monthly)], NOW, NOW.date(), client_ids=ids
        )
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 0


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


@pytest.mark.parametrize(
    "flag, code, message",
    [
        (
            ["--period", "2026-13"],
            1,
            "Error: Period '2026-13' does not fit a monthly template: write it like "
            "2026-12",
        ),
        (
            ["--due", "tomorrow"],
            2,
            "Error: Invalid value for --due: 'tomorrow' is not a date like 2026-12-10",
        ),
        (["--bogus"], 2, "Error: No such option: --bogus"),
    ],
)
def test_generate_bad_options_are_one_line(cli, settings, flag, code, message):
    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    result = cli("generate", "--template", "monthly", *flag)
    assert result.exit_code == code
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert "Usage:" not in result.output and "Traceback" not in result.output
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 0


def test_link_asks_for_the_template_when_several_are_current(cli, settings):
    db = open_db(settings.database_path)
    ids = seed(db, languages=["en"])
    vat = templates.get_template(db, "vat")
    clients.assign(db, ids, vat["id"], NOW)
    cli("generate", "--template", "monthly", "--period", "2026-12", "--no-send")
    cli("generate", "--template", "vat", "--period", "2026-Q4", "--no-send")

    both = cli("link", "Client 0")
    assert both.exit_code == 1
    assert both.stdout == ""
    assert both.stderr.strip() == (
        "Error: This client has several current checklists (monthly 2026-12, "
        "vat 2026-Q4): choose one with --template"
    )
    token = {
        slug: db.execute(
            "SELECT token FROM checklists c JOIN templates t ON t.id = c.template_id"
            " WHERE t.slug = ?",
            [slug],
        ).fetchone()[0]
        for slug in ("monthly", "vat")
    }
    vat_link = cli("link", "Client 0", "--template", "vat").stdout.strip()
    assert vat_link.endswith("/c/" + token["vat"])

    # Once the VAT checklist is complete, the monthly one is the only current one.
    db.execute(
        "UPDATE checklists SET completed_at = '2026-12-02T10:00:00Z'"
        " WHERE template_id = ?",
        [vat["id"]],
    )
    assert cli("link", "Client 0").stdout.strip().endswith("/c/" + token["monthly"])


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["status", "--period", "xx"],
            "Error: Period 'xx' is not a period: write it like 2026-12, 2026-Q4, "
            "2026 or once",
        ),
        (
            ["link", "Client 0", "--period", "garbage"],
            "Error: Period 'garbage' is not a period",
        ),
        (
            ["link", "Client 0", "--template", "vat", "--period", "2026-12"],
            "Error: Period '2026-12' does not fit a quarterly template",
        ),
        (
            ["status", "--template", "monthly", "--period", "2026-Q4"],
            "Error: Period '2026-Q4' does not fit a monthly template",
        ),
    ],
)
def test_status_and_link_check_the_period(cli, settings, args, message):
    db = open_db(settings.database_path)
    seed(db, languages=["en"])
    cli("generate", "--template", "monthly", "--period", "2026-12", "--no-send")
    result = cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
    assert "2026-12" in cli("status", "--period", "2026-12").stdout


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


def test_the_daemons_daily_generate_also_emails_links_made_with_no_send(db, settings):
    from monthlydocs.daemon import generate_job

    seed(db, languages=["en", "fr"])
    monthly = templates.get_template(db, "monthly")
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date(), send=False)

    line = generate_job(db, settings, NOW, should_stop=lambda: False)

    assert "0 checklists created for 1 templates, 2 sent, 0 failed" in line
    assert len(list(settings.outbox_dir.glob("*.eml"))) == 2
    assert generate_job(db, settings, NOW, should_stop=lambda: False).startswith(
        "generate: 0 checklists created for 0 templates, 0 sent"
    )
