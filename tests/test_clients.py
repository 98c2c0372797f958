import re

import pytest

from conftest import NOW
from monthlydocs import clients
from monthlydocs.clients import ClientInput
from monthlydocs.errors import (
    AmbiguousClient,
    ClientNotFound,
    DuplicateClient,
    InvalidEmail,
    InvalidLanguage,
    InvalidPhone,
)


def add(db, name, email, **extra):
    return clients.add_client(db, ClientInput(name, email, **extra), NOW, region="FR")


@pytest.mark.parametrize(
    "raw, region, expected",
    [
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("0033612345678", "FR", "+33612345678"),
        ("+49 151 23456789", "FR", "+4915123456789"),
        ("0151 23456789", "DE", "+4915123456789"),
        ("0812-3456-789", "ID", "+628123456789"),
        ("", "FR", None),
    ],
)
def test_phone_numbers_are_stored_in_e164(raw, region, expected):
    assert clients.normalize_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+33 1"])
def test_invalid_phone_names_the_value(raw):
    with pytest.raises(InvalidPhone, match=re.escape(f"Invalid phone number '{raw}'")):
        clients.normalize_phone(raw, "FR")


@pytest.mark.parametrize(
    "raw, code",
    [
        ("fr", "fr"),
        ("FR-be", "fr"),
        ("Français", "fr"),
        ("Deutsch", "de"),
        ("español", "es"),
        ("Bahasa Indonesia", "id"),
        ("English", "en"),
        ("", None),
    ],
)
def test_languages_from_codes_and_words(raw, code):
    assert clients.normalize_language(raw) == code


def test_unknown_language_is_refused():
    with pytest.raises(InvalidLanguage, match="use one of en, fr, de, es, id"):
        clients.normalize_language("klingon")


@pytest.mark.parametrize("raw", ["no-at-sign", "a@b", "two@@example.com", ""])
def test_invalid_email(raw):
    with pytest.raises(InvalidEmail):
        clients.normalize_email(raw)


def test_add_and_find_by_id_email_and_name_part(db):
    first = add(
        db,
        "Boulangerie Dupont",
        "Marie@Dupont.example",
        phone="0612345678",
        language="fr",
    )
    add(db, "Café Lumière", "cafe@lumiere.example")
    row = clients.get_client(db, first)
    assert row["phone"] == "+33612345678"
    assert row["email"] == "Marie@dupont.example"
    assert clients.find_client(db, str(first))["id"] == first
    assert clients.find_client(db, "marie@dupont.EXAMPLE")["id"] == first
    assert clients.find_client(db, "dupont")["id"] == first
    assert clients.find_client(db, "cafe lumiere")["name"] == "Café Lumière"


def test_ambiguous_and_unknown_names(db):
    add(db, "Dupont Boulangerie", "a@dupont.example")
    add(db, "Dupont Traiteur", "b@dupont.example")
    with pytest.raises(AmbiguousClient, match="matches 2 clients"):
        clients.find_client(db, "dupont")
    with pytest.raises(ClientNotFound, match="No client matches 'zzz'"):
        clients.find_client(db, "zzz")


def test_email_is_unique_whatever_the_case(db):
    add(db, "A", "same@example.com")
    with pytest.raises(DuplicateClient, match="already exists"):
        add(db, "B", "SAME@example.com")


def test_edit_changes_only_what_is_given(db):
    client_id = add(db, "A", "a@example.com", phone="0612345678")
    diff = clients.update_client(
        db, client_id, {"language": "de", "name": None}, NOW, region="FR"
    )
    assert diff == {"language": "de"}
    row = clients.get_client(db, client_id)
    assert (row["name"], row["phone"], row["language"]) == ("A", "+33612345678", "de")
    assert (
        clients.update_client(db, client_id, {"language": "de"}, NOW, region="FR") == {}
    )


def test_archive_keeps_history(db):
    client_id = add(db, "A", "a@example.com")
    clients.archive_client(db, client_id, NOW)
    assert clients.get_client(db, client_id)["status"] == "archived"
    assert clients.list_clients(db) == []
    assert len(clients.list_clients(db, include_archived=True)) == 1


def test_erase_deletes_rows_and_files(db, settings):
    from monthlydocs import checklists, templates

    client_id = add(db, "A", "a@example.com")
    keep_id = add(db, "B", "b@example.com")
    templates.save_template(db, "monthly", NOW, name="Monthly")
    templates.save_slot(db, "monthly", "Bank statements")
    template = templates.get_template(db, "monthly")
    clients.assign(db, [client_id, keep_id], template["id"], NOW)
    checklists.generate(db, [checklists.Request(template)], NOW, NOW.date())
    folder = settings.files_dir / clients.client_folder(client_id) / "2026-12"
    folder.mkdir(parents=True)
    (folder / "statement.pdf").write_bytes(b"%PDF-1.4")

    counts = clients.erase_client(db, client_id, settings.files_dir, NOW)

    assert counts == {"documents": 0, "checklists": 1, "messages": 1}
    assert not (settings.files_dir / clients.client_folder(client_id)).exists()
    for table in ("checklists", "messages"):
        assert (
            db.execute(
                f"SELECT count(*) FROM {table} WHERE client_id = ?", [client_id]
            ).fetchone()[0]
            == 0
        )
    assert db.execute("SELECT count(*) FROM checklist_items").fetchone()[0] == 1
    assert (
        db.execute(
            "SELECT count(*) FROM events WHERE client_id = ?", [client_id]
        ).fetchone()[0]
        == 0
    )
    assert clients.get_client(db, keep_id)["name"] == "B"


def test_archive_is_recorded(db):
    from monthlydocs.events import for_client

    client_id = add(db, "A", "a@example.com")
    clients.archive_client(db, client_id, NOW)
    assert "client:archived" in [e["action"] for e in for_client(db, client_id)]


def test_unassign_is_recorded_with_its_actor(db):
    from monthlydocs import templates
    from monthlydocs.events import for_client

    client_id = add(db, "A", "a@example.com")
    template_id, _ = templates.save_template(db, "vat", NOW, name="VAT")
    clients.assign(db, [client_id], template_id, NOW)
    assert clients.unassign(db, [client_id], template_id, NOW, actor="anne") == 1
    event = for_client(db, client_id)[0]
    assert (event["action"], event["actor"]) == ("client:unassigned", "anne")
    assert clients.unassign(db, [client_id], template_id, NOW) == 0
