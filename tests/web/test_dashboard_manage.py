"""Managing: clients (list, add, edit, archive, approve, templates), the CSV import with
the CLI's importer, templates and their slots, and bulk generation."""

from __future__ import annotations

import email
import email.policy
import io

import pytest

from monthlydocs import clients, portal, templates

from .conftest import NOW
from .dashboard_kit import EMAIL, flashed, staff_fixture, text_of  # noqa: F401 (fixture)

FRENCH_CSV = (
    "Nom;Prénom;Société;Courriel;Téléphone portable;Langue\r\n"
    "Lefèvre;Hélène;Crêperie Lefèvre;helene@creperie.example;06 12 34 56 78;Français\r\n"
    "Straße;Jürgen;;jurgen@strasse.example;+49 151 23456789;Deutsch\r\n"
    "Sans;Courriel;Rien SARL;pas-un-email;;\r\n"
).encode("cp1252")


@pytest.fixture
def app(case, clock):
    """The app as the servers run it, with its sending thread (bulk generation)."""
    from monthlydocs.web import create_app

    flask_app = create_app(case.settings, clock=clock, send_in_background=True)
    flask_app.config["TESTING"] = True
    return flask_app


def _clients(case) -> dict[str, dict]:
    db = case.db()
    try:
        return {row["email"]: row for row in db.query("SELECT * FROM clients")}
    finally:
        db.close()


def _upload_csv(staff, data: bytes, name: str = "clients.csv", **form):
    return staff.http.post("/dashboard/clients/import", data={
        "csrf_token": staff.csrf("/dashboard/clients/import"),
        "file": (io.BytesIO(data), name), **form,
    }, content_type="multipart/form-data")


# -- clients ---------------------------------------------------------------------------


def test_clients_list_by_status_with_search_and_pages(staff, case):
    db = case.db()
    for n in range(55):
        clients.add_client(db, clients.ClientInput(f"Client {n:02d}", f"c{n}@x.example"),
                           NOW, region="FR")
    clients.add_client(db, clients.ClientInput("Nouveau Venu", "new@x.example"), NOW,
                       region="FR", status="pending")
    db.close()
    page = text_of(staff.get("/dashboard/clients"))
    assert "Boulangerie Dupont" in page and "Nouveau Venu" not in page
    assert 'Active <span class="number">56</span>' in page
    assert 'Waiting for approval <span class="number">1</span>' in page
    assert "Client 48" in page and "Client 49" not in page  # 50 a page, by name
    assert "Client 54" in text_of(staff.get("/dashboard/clients?page=2"))
    found = text_of(staff.get("/dashboard/clients?q=boulangerie"))
    assert "Boulangerie Dupont" in found and "Client 01" not in found
    assert "Nouveau Venu" in text_of(staff.get("/dashboard/clients?status=pending"))


def test_add_a_client_with_checks(staff, case):
    refused = staff.post("/dashboard/clients/new", {
        "name": "Garage Martin", "email": "pas un email", "phone": "12",
        "language": "fr"}, csrf_from="/dashboard/clients/new")
    assert refused.status_code == 400
    assert "This email address does not look right." in text_of(refused)
    assert 'value="Garage Martin"' in text_of(refused)  # nothing to type again

    added = staff.post("/dashboard/clients/new", {
        "name": "Garage Martin", "email": "garage@martin.example",
        "phone": "06 12 34 56 78", "language": "fr", "notes": "Payé en espèces"},
        csrf_from="/dashboard/clients/new")
    assert "Client added." in flashed(staff, added)
    row = _clients(case)["garage@martin.example"]
    assert (row["phone"], row["language"], row["status"]) == ("+33612345678", "fr",
                                                              "active")
    db = case.db()
    [event] = db.query("SELECT * FROM events WHERE action = 'client:created'"
                       " AND client_id = ?", [row["id"]])
    db.close()
    assert event["actor"] == EMAIL

    duplicate = staff.post("/dashboard/clients/new", {
        "name": "Autre", "email": "GARAGE@martin.example"},
        csrf_from="/dashboard/clients/new")
    assert duplicate.status_code == 400
    assert "Another client already uses this email address." in text_of(duplicate)


def test_edit_a_client(staff, case):
    url = f"/dashboard/clients/{case.client_id}"
    page = text_of(staff.get(url))
    assert 'value="marie@dupont.example"' in page and "Monthly bookkeeping" in page
    bad = staff.post(url, {"name": "Boulangerie Dupont", "email": "marie@dupont.example",
                           "phone": "123"}, csrf_from=url)
    assert bad.status_code == 400 and "This phone number does not look right" in \
        text_of(bad)
    saved = staff.post(url, {"name": "Boulangerie Dupont & Fille",
                             "email": "marie@dupont.example", "phone": "",
                             "language": "de", "notes": ""}, csrf_from=url)
    assert "Changes saved." in flashed(staff, saved)
    row = _clients(case)["marie@dupont.example"]
    assert (row["name"], row["language"]) == ("Boulangerie Dupont & Fille", "de")


def test_assign_templates_to_a_client_then_archive(staff, case):
    db = case.db()
    templates.save_template(db, "vat", NOW, name="VAT return", cadence="quarterly")
    vat = templates.get_template(db, "vat")
    monthly = templates.get_template(db, "monthly")
    db.close()
    url = f"/dashboard/clients/{case.client_id}"
    saved = staff.post(f"{url}/templates", {"template": [str(vat["id"])]}, csrf_from=url)
    assert "Templates saved." in flashed(staff, saved)
    db = case.db()
    assigned = {r[0] for r in db.execute(
        "SELECT template_id FROM assignments WHERE client_id = ?", [case.client_id])}
    db.close()
    assert assigned == {vat["id"]} and monthly["id"] not in assigned

    archived = staff.post(f"{url}/archive", csrf_from=url)
    assert "archived" in flashed(staff, archived)
    assert _clients(case)["marie@dupont.example"]["status"] == "archived"
    assert case.checklist()["archived_at"] is not None


def test_approve_a_self_registered_client(staff, case):
    db = case.db()
    new_id = portal.register_client(
        db, case.settings, portal.invite_token(db, case.settings.firm.secret_key),
        clients.ClientInput("Nouveau Venu", "new@venu.example", None, "es"), NOW)
    db.close()
    pending = text_of(staff.get("/dashboard/clients?status=pending"))
    assert "Nouveau Venu" in pending and "Approve Nouveau Venu" in pending
    approved = staff.post(f"/dashboard/clients/{new_id}/approve")
    assert "Nouveau Venu approved" in flashed(staff, approved)
    assert _clients(case)["new@venu.example"]["status"] == "active"
    again = staff.post(f"/dashboard/clients/{new_id}/approve")
    assert again.status_code == 400  # not waiting any more


# -- import ----------------------------------------------------------------------------


def test_import_shows_mapping_and_outcome_before_writing(staff, case):
    preview = _upload_csv(staff, FRENCH_CSV, "export excel.csv")
    page = text_of(preview)
    assert preview.status_code == 200
    assert "export excel.csv: Windows-1252, columns separated by semicolon, header on " \
           "line 1." in page
    for column, field in (("Courriel", "email"), ("Société", "company"),
                          ("Téléphone portable", "mobile"), ("Prénom", "first_name")):
        assert (f'<input type="hidden" name="column" value="{column}">\n'
                f'            <input type="hidden" name="shown" value="{field}">') in page
    assert '<span class="number">2</span> New clients' in page
    assert '<span class="number">1</span> Rejected rows' in page
    assert "pas-un-email" in page  # the reason names the cell
    assert "helene@creperie.example" not in _clients(case)  # nothing written yet

    # Say the company column is not to be used, check again, then import.
    checked = staff.post("/dashboard/clients/import", {
        "action": "check", "column": ["Société"], "shown": ["company"],
        "field": ["ignore"]}, csrf_from="/dashboard/clients/import")
    assert '<input type="hidden" name="shown" value="ignore">' in text_of(checked)
    done = staff.post("/dashboard/clients/import", {"action": "import"},
                      csrf_from="/dashboard/clients/import")
    assert "Import done" in text_of(done)
    imported = _clients(case)
    assert imported["helene@creperie.example"]["name"] == "Hélène Lefèvre"  # no company
    assert imported["jurgen@strasse.example"]["language"] == "de"
    db = case.db()
    actors = {r[0] for r in db.execute(
        "SELECT actor FROM events WHERE action = 'client:created'"
        " AND client_id != ?", [case.client_id])}
    db.close()
    assert actors == {EMAIL}
    # The staged file is gone with the session's hold on it.
    assert not list((case.settings.files_dir / ".imports").glob("*/*"))


def test_import_lets_staff_name_the_email_column_the_guess_missed(staff, case):
    data = b"Client;Contact;Tel\nAcme;acme@example.com;06 12 34 56 78\n"
    first = _upload_csv(staff, data)
    assert first.status_code == 400
    page = text_of(first)
    assert "This file cannot be imported." in page and "No email column" in page
    assert '<input type="hidden" name="column" value="Contact">' in page
    fixed = staff.post("/dashboard/clients/import", {
        "action": "check", "column": ["Contact"], "shown": ["ignore"],
        "field": ["email"]}, csrf_from="/dashboard/clients/import")
    assert '<span class="number">1</span> New clients' in text_of(fixed)
    staff.post("/dashboard/clients/import", {"action": "import"},
               csrf_from="/dashboard/clients/import")
    assert _clients(case)["acme@example.com"]["phone"] == "+33612345678"


def test_import_assigns_a_template_and_refuses_a_binary_file(staff, case):
    db = case.db()
    monthly = templates.get_template(db, "monthly")
    db.close()
    _upload_csv(staff, FRENCH_CSV)
    staff.post("/dashboard/clients/import", {"action": "import",
                                             "template": str(monthly["id"])},
               csrf_from="/dashboard/clients/import")
    db = case.db()
    assigned = db.execute("SELECT count(*) FROM assignments WHERE template_id = ?",
                          [monthly["id"]]).fetchone()[0]
    db.close()
    assert assigned == 3  # Boulangerie Dupont and the two imported
    refused = _upload_csv(staff, b"\x00\x01\x02PK\x03\x04" * 50, "photo.csv")
    assert refused.status_code == 400
    assert "This file cannot be imported." in text_of(refused)


def test_import_without_a_file(staff):
    response = staff.post("/dashboard/clients/import", {"action": "check"},
                          csrf_from="/dashboard/clients/import")
    assert response.status_code == 400
    assert "Choose a CSV file first." in text_of(response)


# -- templates -------------------------------------------------------------------------


def _slots(case, slug):
    db = case.db()
    try:
        return [(s["name"], s["description"], s["optional"], s["multiple"])
                for s in templates.slots(db, templates.get_template(db, slug)["id"])]
    finally:
        db.close()


def test_create_a_template_and_edit_its_slots(staff, case):
    created = staff.post("/dashboard/templates/new", {
        "slug": "payroll", "name": "Payroll", "description": "Monthly payslips",
        "cadence": "monthly", "due_day": "5"}, csrf_from="/dashboard/templates/new")
    assert created.headers["Location"] == "/dashboard/templates/payroll#slots"
    url = "/dashboard/templates/payroll"
    for name, optional in (("Payslips", ""), ("Timesheets", "on"), ("Bonus", "")):
        form = {"name": name, "description": f"{name} of the month", "multiple": "on"}
        if optional:
            form["optional"] = optional
        staff.post(f"{url}/slots/add", form, csrf_from=url)
    assert _slots(case, "payroll") == [
        ("Payslips", "Payslips of the month", 0, 1),
        ("Timesheets", "Timesheets of the month", 1, 1),
        ("Bonus", "Bonus of the month", 0, 1)]

    staff.post(f"{url}/slots/move", {"name": "Bonus", "direction": "up"}, csrf_from=url)
    assert [s[0] for s in _slots(case, "payroll")] == ["Payslips", "Bonus", "Timesheets"]

    db = case.db()
    ids = {s["name"]: s["id"] for s in templates.slots(
        db, templates.get_template(db, "payroll")["id"])}
    db.close()
    form = {f"slot-{i}-present": "1" for i in ids.values()}
    form[f"slot-{ids['Payslips']}-description"] = "Every payslip, signed"
    form[f"slot-{ids['Payslips']}-optional"] = "on"
    staff.post(f"{url}/slots", form, csrf_from=url)
    assert _slots(case, "payroll")[0] == ("Payslips", "Every payslip, signed", 1, 0)

    staff.post(f"{url}/slots/remove", {"name": "Timesheets"}, csrf_from=url)
    assert [s[0] for s in _slots(case, "payroll")] == ["Payslips", "Bonus"]

    again = staff.post("/dashboard/templates/new", {
        "slug": "payroll", "name": "Other", "cadence": "monthly", "due_day": "5"},
        csrf_from="/dashboard/templates/new")
    assert again.status_code == 400 and "already exists" in text_of(again)
    bad = staff.post(f"{url}/slots/add", {"name": "  "}, csrf_from=url)
    assert "Give the document a name." in flashed(staff, bad)


def _slot_events(case, slug):
    import json

    db = case.db()
    try:
        return [(row["action"], row["actor"], json.loads(row["data"]))
                for row in db.query("SELECT * FROM events WHERE action LIKE"
                                    " 'template:slot%' ORDER BY id")
                if json.loads(row["data"])["slug"] == slug]
    finally:
        db.close()


def test_slot_edits_are_audited_under_the_staff_email(staff, case):
    url = "/dashboard/templates/monthly"
    before = {name for name, *_ in _slots(case, "monthly")}
    staff.post(f"{url}/slots/add", {"name": "Payslips", "multiple": "on"},
               csrf_from=url)
    staff.post(f"{url}/slots/move", {"name": "Payslips", "direction": "up"},
               csrf_from=url)
    db = case.db()
    ids = {s["name"]: s for s in templates.slots(
        db, templates.get_template(db, "monthly")["id"])}
    db.close()
    # The table's form sends every slot; only the one whose fields differ is recorded.
    form = {f"slot-{s['id']}-present": "1" for s in ids.values()}
    for s in ids.values():
        form[f"slot-{s['id']}-description"] = s["description"]
        for option in ("optional", "multiple"):
            if s[option]:
                form[f"slot-{s['id']}-{option}"] = "on"
    form[f"slot-{ids['Payslips']['id']}-description"] = "Signed ones"
    staff.post(f"{url}/slots", form, csrf_from=url)
    staff.post(f"{url}/slots/remove", {"name": "Payslips"}, csrf_from=url)

    events = _slot_events(case, "monthly")
    assert [action for action, _actor, _data in events] == [
        "template:slot_added", "template:slot_changed", "template:slot_changed",
        "template:slot_removed"]
    assert {actor for _action, actor, _data in events} == {EMAIL}
    assert {data["slot"] for _action, _actor, data in events} == {"Payslips"}
    added, moved, described, _removed = (data for *_, data in events)
    assert added["changes"]["multiple"] is True
    assert moved["changes"] == {"position": len(before)}
    assert described["changes"] == {"description": "Signed ones"}


def test_template_fields_and_clients(staff, case):
    url = "/dashboard/templates/monthly"
    saved = staff.post(url, {"name": "Monthly books", "description": "",
                             "cadence": "monthly", "due_day": "15"}, csrf_from=url)
    assert "Template saved." in flashed(staff, saved)
    db = case.db()
    row = templates.get_template(db, "monthly")
    other = clients.add_client(db, clients.ClientInput("Zoé", "zoe@x.example"), NOW,
                               region="FR")
    db.close()
    assert (row["name"], row["due_day"]) == ("Monthly books", 15)
    page = text_of(staff.get(url))
    assert "2 active clients" in page
    staff.post(f"{url}/clients", {"listed": [str(case.client_id), str(other)],
                                  "client": [str(other)]}, csrf_from=url)
    db = case.db()
    assigned = {r[0] for r in db.execute(
        "SELECT client_id FROM assignments WHERE template_id = ?", [row["id"]])}
    db.close()
    assert assigned == {other}
    assert staff.get("/dashboard/templates/nope").status_code == 404


# -- bulk generation -------------------------------------------------------------------


def test_generate_shows_what_will_happen_then_creates_and_sends(staff, case, clock):
    db = case.db()
    monthly = templates.get_template(db, "monthly")
    ids = [clients.add_client(db, clients.ClientInput(name, mail, language=lang), NOW,
                              region="FR")
           for name, mail, lang in (("Alpha", "a@x.example", "de"),
                                    ("Beta", "b@x.example", "es"))]
    clients.assign(db, ids, monthly["id"], NOW)
    db.close()
    clock.advance(days=31)  # January: Boulangerie Dupont has December only
    staff.login()  # a month later, the session of the first of December is over

    form_page = text_of(staff.get("/dashboard/generate?template=monthly"))
    assert 'value="2027-01"' in form_page and 'value="2027-01-10"' in form_page
    chosen = [str(case.client_id), str(ids[0])]
    preview = staff.post("/dashboard/generate", {
        "template": "monthly", "period": "2027-01", "due": "2027-01-12",
        "client": chosen, "action": "preview"}, csrf_from="/dashboard/generate")
    page = text_of(preview)
    assert "2 new checklists; each client gets an email with the link:" in page
    assert "Alpha" in page and "Beta" not in page.split("What will happen")[1]
    db = case.db()
    assert db.execute("SELECT count(*) FROM checklists").fetchone()[0] == 1
    db.close()

    confirmed = staff.post("/dashboard/generate", {
        "template": "monthly", "period": "2027-01", "due": "2027-01-12",
        "client": chosen, "action": "confirm"}, csrf_from="/dashboard/generate")
    assert confirmed.headers["Location"].startswith(
        "/dashboard/?period=2027-01&template=")
    assert "2 checklists created (0 already there); 2 emails on their way." in \
        flashed(staff, confirmed)
    # Sent by the app's sending thread, not while the page waited.
    assert staff.http.application.extensions["monthlydocs.sender"].idle.wait(20)
    db = case.db()
    rows = list(db.query("SELECT client_id, due_on, link_sent_at FROM checklists"
                         " WHERE period = '2027-01' ORDER BY client_id"))
    actors = {r[0] for r in db.execute(
        "SELECT actor FROM events WHERE action = 'checklist:created'"
        " AND at > '2026-12-02'")}
    db.close()
    assert [(r["client_id"], r["due_on"]) for r in rows] == [
        (case.client_id, "2027-01-12"), (ids[0], "2027-01-12")]
    assert all(r["link_sent_at"] for r in rows)
    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
             for p in sorted(case.settings.outbox_dir.glob("*.eml"))]
    assert sorted(m["Content-Language"] for m in mails) == ["de", "fr"]
    assert actors == {EMAIL}  # the audit trail knows who generated them


def test_generate_refuses_bad_input(staff, case):
    nobody = staff.post("/dashboard/generate", {"template": "monthly",
                                                "period": "2026-12", "action": "preview"},
                        csrf_from="/dashboard/generate")
    assert nobody.status_code == 400 and "Choose at least one client." in text_of(nobody)
    wrong = staff.post("/dashboard/generate", {
        "template": "monthly", "period": "2026-Q4", "client": [str(case.client_id)],
        "action": "preview"}, csrf_from="/dashboard/generate")
    assert wrong.status_code == 400
    assert "This period does not fit the template" in text_of(wrong)
    assert staff.get("/dashboard/generate?template=nope").status_code == 404
