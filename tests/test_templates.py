from datetime import date, timedelta

import pytest

from conftest import NOW
from monthlydocs import checklists, clients, templates
from monthlydocs.errors import InvalidPeriod, TemplateError, TemplateNotFound
from monthlydocs.periods import check_period, current_period, due_date
from monthlydocs.workspace import example_templates_path


def test_example_templates_load_with_their_slots(db):
    outcome = templates.load_file(db, example_templates_path(), NOW)
    assert outcome == [("monthly", True), ("vat", True), ("payroll", True)]
    monthly = templates.get_template(db, "monthly")
    names = [s["name"] for s in templates.slots(db, monthly["id"])]
    assert names == [
        "Bank statements",
        "Supplier invoices",
        "Sales invoices",
        "Expense receipts",
        "Payroll export",
    ]
    assert templates.get_template(db, "vat")["cadence"] == "quarterly"
    assert all(s["description"] for s in templates.slots(db, monthly["id"]))


def test_loading_again_updates_and_follows_the_file(db, tmp_path):
    templates.load_file(db, example_templates_path(), NOW)
    changed = tmp_path / "t.toml"
    changed.write_text(
        '[[template]]\nslug = "vat"\nname = "VAT (quarterly)"\ncadence = "quarterly"\n'
        '[[template.slot]]\nname = "Purchase invoices"\n'
        '[[template.slot]]\nname = "Sales ledger"\ndescription = "New words"\n',
        encoding="utf-8",
    )
    assert templates.load_file(db, changed, NOW) == [("vat", False)]
    vat = templates.get_template(db, "vat")
    assert vat["name"] == "VAT (quarterly)"
    rows = templates.slots(db, vat["id"])
    assert [(s["name"], s["description"]) for s in rows] == [
        ("Purchase invoices", ""),
        ("Sales ledger", "New words"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("nothing = 1", "has no [[template]] tables"),
        ('[[template]]\nslug = "x"\n', "needs a slug and a name"),
        ('[[template]]\nslug = "Bad Slug"\nname = "X"\n', "must be 1 to 40 lower-case"),
        (
            '[[template]]\nslug = "x"\nname = "X"\ncadence = "weekly"\n'
            '[[template.slot]]\nname = "A"\n',
            "Cadence 'weekly' is not one of",
        ),
        (
            '[[template]]\nslug = "x"\nname = "X"\n',
            "needs at least one [[template.slot]]",
        ),
        (
            '[[template]]\nslug = "x"\nname = "X"\n[[template.slot]]\nname = "A"\n'
            '[[template.slot]]\nname = "A"\n',
            "names a slot twice",
        ),
        ("[[template]\n", "is not valid TOML"),
    ],
)
def test_bad_template_files_change_nothing(db, tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match=message.replace("[", r"\[")):
        templates.load_file(db, path, NOW)
    assert templates.list_templates(db) == []


def test_editing_a_template_keeps_generated_checklists(db):
    templates.save_template(db, "vat", NOW, name="VAT", cadence="quarterly")
    templates.save_slot(db, "vat", "Sales ledger", description="Old words")
    client_id = clients.add_client(
        db, clients.ClientInput("A", "a@example.com"), NOW, region="FR"
    )
    vat = templates.get_template(db, "vat")
    clients.assign(db, [client_id], vat["id"], NOW)
    checklists.generate(db, [checklists.Request(vat, "2026-Q3")], NOW, NOW.date())

    templates.save_slot(db, "vat", "Sales ledger", description="New words")
    templates.save_slot(db, "vat", "Purchase invoices")
    checklists.generate(db, [checklists.Request(vat, "2026-Q4")], NOW, NOW.date())

    old, new = (
        db.execute("SELECT id FROM checklists WHERE period = ?", [p]).fetchone()[0]
        for p in ("2026-Q3", "2026-Q4")
    )
    assert [(i["name"], i["description"]) for i in checklists.items(db, old)] == [
        ("Sales ledger", "Old words")
    ]
    assert [(i["name"], i["description"]) for i in checklists.items(db, new)] == [
        ("Sales ledger", "New words"),
        ("Purchase invoices", ""),
    ]


def test_remove_deletes_unused_and_archives_used(db):
    templates.save_template(db, "a", NOW, name="A")
    assert templates.remove_template(db, "a", NOW) == "deleted"
    templates.save_template(db, "b", NOW, name="B")
    templates.save_slot(db, "b", "Doc")
    client_id = clients.add_client(
        db, clients.ClientInput("C", "c@example.com"), NOW, region="FR"
    )
    b = templates.get_template(db, "b")
    clients.assign(db, [client_id], b["id"], NOW)
    checklists.generate(db, [checklists.Request(b)], NOW, NOW.date())
    assert templates.remove_template(db, "b", NOW) == "archived"
    with pytest.raises(TemplateNotFound):
        templates.get_template(db, "b")
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 1


@pytest.mark.parametrize(
    "cadence, today, period",
    [
        ("monthly", date(2026, 12, 3), "2026-12"),
        ("quarterly", date(2026, 11, 30), "2026-Q4"),
        ("quarterly", date(2026, 1, 1), "2026-Q1"),
        ("yearly", date(2026, 6, 1), "2026"),
        ("once", date(2026, 6, 1), "once"),
    ],
)
def test_current_period(cadence, today, period):
    assert current_period(cadence, today) == period


@pytest.mark.parametrize(
    "text, cadence",
    [
        ("2026-13", "monthly"),
        ("2026-Q5", "quarterly"),
        ("26", "yearly"),
        ("2026-12", "quarterly"),
    ],
)
def test_bad_periods_say_the_expected_form(text, cadence):
    with pytest.raises(InvalidPeriod, match="write it like"):
        check_period(text, cadence)


def test_due_date_is_the_next_due_day():
    assert due_date(10, date(2026, 12, 1)) == date(2026, 12, 10)
    assert due_date(10, date(2026, 12, 10)) == date(2026, 12, 10)
    assert due_date(10, date(2026, 12, 15)) == date(2027, 1, 10)
    assert due_date(31, date(2027, 2, 1)) == date(2027, 2, 28)
    for offset in range(400):
        day = date(2026, 1, 1) + timedelta(days=offset)
        assert 0 <= (due_date(5, day) - day).days <= 31
