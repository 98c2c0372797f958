"""Templates in the client's language: loading, generation, the portal and the emails."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from conftest import NOW, example_wording, use_smtp
from monthlydocs import checklists, clients, reminders, templates
from monthlydocs.config import load_settings
from monthlydocs.db import open_db
from monthlydocs.errors import TemplateError
from monthlydocs.workspace import example_templates_path

SMALL = """
[[template]]
slug = "books"
name = "Books"
description = "For the books."

[template.translations.fr]
name = "Comptabilité"

[[template.slot]]
name = "Bank statements"
description = "Every account."

[template.slot.translations.fr]
name = "Relevés bancaires"
description = "Chaque compte."

[template.slot.translations.de]
name = "Kontoauszüge"

[[template.slot]]
name = "Receipts"
description = "Card and cash."
"""


def write(tmp_path, text: str):
    path = tmp_path / "templates.toml"
    path.write_text(text, encoding="utf-8")
    return path


def add_client(db, language: str, name: str = "Client") -> int:
    return clients.add_client(
        db,
        clients.ClientInput(name, f"{language}@client.example", language=language),
        NOW,
        region="FR",
    )


def generate(db, slug: str, client_id: int, period: str | None = None, send=False):
    template = templates.get_template(db, slug)
    clients.assign(db, [client_id], template["id"], NOW)
    result = checklists.generate(
        db,
        [checklists.Request(template, period=period)],
        NOW,
        NOW.date(),
        client_ids=[client_id],
        send=send,
    )
    return result.created_by_client[client_id][-1]


def test_loading_stores_the_translations_of_templates_and_slots(db, tmp_path):
    templates.load_file(db, write(tmp_path, SMALL), NOW)
    template = templates.get_template(db, "books")
    assert json.loads(template["translations"]) == {"fr": {"name": "Comptabilité"}}
    bank, receipts = templates.slots(db, template["id"])
    assert json.loads(bank["translations"]) == {
        "fr": {"name": "Relevés bancaires", "description": "Chaque compte."},
        "de": {"name": "Kontoauszüge"},
    }
    assert json.loads(receipts["translations"]) == {}
    assert templates.languages_of(bank) == ["fr", "de"]
    # Loading a file without them again clears them: slots follow the file.
    plain = re.sub(r"\[[a-z.]*translations[a-z.]*\]\n(?:.+\n)*", "", SMALL)
    assert "translations" not in plain
    templates.load_file(db, write(tmp_path, plain), NOW)
    template = templates.get_template(db, "books")
    assert json.loads(template["translations"]) == {}
    assert [templates.languages_of(s) for s in templates.slots(db, template["id"])] == [
        [],
        [],
    ]


def test_the_example_templates_are_translated_into_every_client_language(db):
    templates.load_file(db, example_templates_path(), NOW)
    for slug in ("monthly", "vat", "payroll"):
        template = templates.get_template(db, slug)
        assert templates.languages_of(template) == ["fr", "de", "es", "id"]
        for slot in templates.slots(db, template["id"]):
            assert templates.languages_of(slot) == ["fr", "de", "es", "id"], slot
            for language in ("fr", "de", "es", "id"):
                name, description = templates.localized(slot, language)
                assert name != slot["name"], (slot, language)
                assert description and description != slot["description"]


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        (
            "[template.translations.it]",
            'name = "Contabilità"',
            "books): unknown language 'it'",
        ),
        (
            "[template.slot.translations.fr]",
            'title = "Relevés"',
            "slot 'Receipts': unknown key(s) title in translations.fr",
        ),
        (
            "[template.slot.translations.fr]",
            "name = 3",
            "slot 'Receipts': translations.fr.name must be text",
        ),
    ],
)
def test_a_bad_translation_is_one_line_and_nothing_is_written(
    cli, settings, tmp_path, table, line, message
):
    path = write(tmp_path, f"{SMALL}\n{table}\n{line}\n")
    result = cli("template", "load", str(path))
    assert result.exit_code != 0
    [error] = result.stderr.strip().splitlines()
    assert message in error and "Traceback" not in result.output
    db = open_db(settings.database_path)
    assert db.execute("SELECT count(*) FROM templates").fetchone()[0] == 0


def test_save_slot_checks_translations_too(db, tmp_path):
    templates.load_file(db, write(tmp_path, SMALL), NOW)
    with pytest.raises(TemplateError, match="unknown language 'xx'"):
        templates.save_slot(db, "books", "Receipts", translations={"xx": {}})
    templates.save_slot(
        db, "books", "Receipts", translations={"es": {"name": " Tiques "}}, now=NOW
    )
    receipts = templates.slots(db, templates.get_template(db, "books")["id"])[1]
    assert templates.localized(receipts, "es") == ("Tiques", "Card and cash.")


def test_localized_falls_back_to_the_base_text_key_by_key(db, tmp_path):
    templates.load_file(db, write(tmp_path, SMALL), NOW)
    bank, receipts = templates.slots(db, templates.get_template(db, "books")["id"])
    assert templates.localized(bank, "fr") == ("Relevés bancaires", "Chaque compte.")
    assert templates.localized(bank, "de") == ("Kontoauszüge", "Every account.")
    assert templates.localized(bank, "es") == ("Bank statements", "Every account.")
    assert templates.localized(bank, None) == ("Bank statements", "Every account.")
    assert templates.localized(receipts, "fr") == ("Receipts", "Card and cash.")


def test_generation_copies_the_wording_and_later_edits_leave_it(db, tmp_path):
    templates.load_file(db, write(tmp_path, SMALL), NOW)
    client_id = add_client(db, "fr")
    first = generate(db, "books", client_id, period="2026-11")
    checklist = checklists.get_checklist(db, first)
    assert templates.localized(checklist, "fr") == ("Comptabilité", "")
    assert templates.localized(checklist, "de") == ("Books", "")
    bank = checklists.items(db, first)[0]
    assert templates.localized(bank, "fr")[0] == "Relevés bancaires"

    edited = SMALL.replace("Relevés bancaires", "Extraits de compte").replace(
        'name = "Comptabilité"', 'name = "Tenue des comptes"'
    )
    templates.load_file(db, write(tmp_path, edited), NOW)
    # The checklist already generated keeps the wording it was made with...
    assert templates.localized(checklists.get_checklist(db, first), "fr")[0] == (
        "Comptabilité"
    )
    assert (
        templates.localized(checklists.items(db, first)[0], "fr")[0]
        == "Relevés bancaires"
    )
    # ...and the next one gets the new wording.
    second = generate(db, "books", client_id, period="2026-12")
    assert templates.localized(checklists.get_checklist(db, second), "fr")[0] == (
        "Tenue des comptes"
    )
    assert (
        templates.localized(checklists.items(db, second)[0], "fr")[0]
        == "Extraits de compte"
    )


def test_the_portal_page_shows_the_slots_in_the_clients_language(settings, db):
    from monthlydocs.web import create_app

    templates.load_file(db, example_templates_path(), NOW)
    french = add_client(db, "fr", "Boulangerie Dupont")
    checklist = checklists.get_checklist(db, generate(db, "monthly", french))
    db.conn.commit()
    app = create_app(settings, clock=lambda: NOW)
    app.config["TESTING"] = True
    http = app.test_client()

    page = http.get(f"/c/{checklist['token']}").get_data(as_text=True)
    for base in ("Monthly bookkeeping", "Bank statements", "Supplier invoices"):
        assert example_wording("monthly", base, "fr") in page
        assert base not in page
    # The language chosen on the page wins, for the documents as for the rest.
    page = http.get(f"/c/{checklist['token']}?lang=es").get_data(as_text=True)
    assert example_wording("monthly", "Bank statements", "es") in page
    page = http.get(f"/c/{checklist['token']}?lang=en").get_data(as_text=True)
    assert "Bank statements" in page and "Monthly bookkeeping" in page


def test_the_link_email_names_the_documents_in_german(cli, settings, smtp_server):
    use_smtp(cli.config, smtp_server.port)
    db = open_db(settings.database_path)
    templates.load_file(db, example_templates_path(), NOW)
    german = add_client(db, "de", "Müller GmbH")
    english = add_client(db, "en", "Smith Ltd")
    monthly = templates.get_template(db, "monthly")
    clients.assign(db, [german, english], monthly["id"], NOW)
    db.conn.commit()

    result = cli("generate", "--template", "monthly", "--period", "2026-12")
    assert result.exit_code == 0, result.output
    by_language = {m["Content-Language"]: m for m in smtp_server.parsed()}
    for language, wanted, unwanted in (
        ("de", example_wording("monthly", "Bank statements", "de"), "Bank statements"),
        ("en", "Bank statements", example_wording("monthly", "Bank statements", "de")),
    ):
        message = by_language[language]
        for part in ("plain", "html"):
            text = message.get_body(part).get_content()
            assert wanted in text and unwanted not in text, (language, part)
            assert example_wording("monthly", "Monthly bookkeeping", language) in text


def test_a_reminder_names_the_missing_documents_in_german(
    workspace, settings, db, smtp_server
):
    use_smtp(workspace, smtp_server.port)
    templates.load_file(db, example_templates_path(), NOW)
    german = add_client(db, "de", "Müller GmbH")
    checklist_id = generate(db, "monthly", german)
    db.execute(
        "UPDATE checklists SET link_sent_at = '2026-12-01T08:00:00Z' WHERE id = ?",
        [checklist_id],
    )
    db.conn.commit()
    paris = ZoneInfo("Europe/Paris")
    reminders.run(
        db,
        load_settings(workspace, environ={}),
        datetime(2026, 12, 4, 10, 0, tzinfo=paris),
    )
    [message] = smtp_server.parsed()
    assert message["Content-Language"] == "de"
    plain = message.get_body("plain").get_content()
    for base in ("Bank statements", "Supplier invoices"):
        assert example_wording("monthly", base, "de") in plain
        assert base not in plain


def test_staff_keep_the_firms_wording(cli, settings, db, tmp_path):
    templates.load_file(db, write(tmp_path, SMALL), NOW)
    db.conn.commit()
    result = cli("template", "show", "books")
    assert result.exit_code == 0, result.output
    assert "Translated into: fr" in result.stdout
    lines = result.stdout.splitlines()
    [bank] = [line for line in lines if "Bank statements" in line]
    [receipts] = [line for line in lines if "Receipts" in line]
    assert "fr de" in bank and "fr" not in receipts
    assert "Relevés" not in result.stdout
    # The export and status rows keep the base text too.
    client_id = add_client(db, "fr")
    generate(db, "books", client_id)
    _counts, rows = checklists.status(db, date(2026, 12, 1))
    assert [row["template_name"] for row in rows] == ["Books"]
