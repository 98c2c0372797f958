"""Each resource through the Flask test client, against a real workspace on disk."""

from __future__ import annotations

import hashlib
import json

from monthlydocs import checklists, clients

from .conftest import NOW, PDF, assert_problem, upload

# -- clients ------------------------------------------------------------------------------


def test_create_get_and_list_a_client(api):
    response = api.post(
        "/clients",
        json={
            "name": "  Café   Lumière ",
            "email": "Lea@Lumiere.example",
            "phone": "06 12 34 56 78",
            "language": "Français",
            "templates": ["monthly"],
        },
    )
    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"] == f"/api/v1/clients/{created['id']}"
    assert created == {
        "id": created["id"],
        "name": "Café Lumière",
        "email": "Lea@lumiere.example",
        "phone": "+33612345678",
        "language": "fr",
        "notes": None,
        "status": "active",
        "templates": ["monthly"],
        "reminders_paused": False,
        "created_at": "2026-12-01T09:00:00Z",
        "updated_at": "2026-12-01T09:00:00Z",
    }
    assert api.get(f"/clients/{created['id']}").get_json() == created
    listed = api.get("/clients").get_json()["data"]
    assert [c["name"] for c in listed] == [
        "Boulangerie Dupont",
        "Garage Martin",
        "Café Lumière",
    ]


def test_client_fields_at_fault_are_named(api):
    cases = [
        ({"email": "a@b.example"}, "#/name", "is required"),
        ({"name": " ", "email": "a@b.example"}, "#/name", "cannot be blank"),
        ({"name": "A", "email": "nope"}, "#/email", "must have an @-sign"),
        ({"name": "A", "email": "a@b.example", "phone": "12"}, "#/phone", "country"),
        ({"name": "A", "email": "a@b.example", "language": "xx"}, "#/language", "use"),
        ({"name": 3, "email": "a@b.example"}, "#/name", "must be a string"),
        ({"name": "A", "email": "a@b.example", "colour": 1}, "#/colour", "unknown"),
        (
            {"name": "A", "email": "a@b.example", "templates": ["vat"]},
            "#/templates/0",
            "vat",
        ),
    ]
    for body, pointer, text in cases:
        response = api.post("/clients", json=body)
        assert_problem(response, 422, "validation", **{pointer: text})
    assert len(api.get("/clients").get_json()["data"]) == 2


def test_a_duplicate_email_is_a_conflict_on_the_email(api):
    response = api.post(
        "/clients", json={"name": "Other", "email": "MARIE@dupont.example"}
    )
    problem = assert_problem(response, 409, "conflict", **{"#/email": "already exists"})
    assert "Boulangerie Dupont" in problem["detail"]


def test_update_a_client_and_clear_a_field_with_null(api, seed):
    path = f"/clients/{seed.client_ids[0]}"
    changed = api.patch(
        path, json={"phone": "+33 6 11 22 33 44", "notes": "VIP", "templates": []}
    )
    assert changed.status_code == 200
    assert changed.get_json()["phone"] == "+33611223344"
    assert changed.get_json()["templates"] == []
    cleared = api.patch(path, json={"phone": None, "name": "Boulangerie Dupont & Fils"})
    body = cleared.get_json()
    assert body["phone"] is None and body["notes"] == "VIP"
    assert body["name"] == "Boulangerie Dupont & Fils"
    assert_problem(
        api.patch(path, json={"name": None}), 422, "validation", **{"#/name": "null"}
    )
    assert_problem(
        api.patch(path, json={"email": "paul@martin.example"}),
        409,
        "conflict",
        **{"#/email": "already uses"},
    )
    assert_problem(api.patch("/clients/999", json={}), 404, "not-found")


def test_archive_a_client(api, seed, db):
    response = api.post(f"/clients/{seed.client_ids[1]}/archive")
    assert response.status_code == 200
    assert response.get_json()["status"] == "archived"
    assert [c["id"] for c in api.get("/clients").get_json()["data"]] == [
        seed.client_ids[0]
    ]
    archived = api.get("/clients?status=archived").get_json()["data"]
    assert [c["id"] for c in archived] == [seed.client_ids[1]]
    checklist = checklists.get_checklist(db, seed.checklist_ids[1])
    assert checklist["archived_at"] == "2026-12-01T09:00:00Z"


def test_list_clients_filters(api, seed):
    def names(query):
        response = api.get("/clients?" + query)
        assert response.status_code == 200, response.get_json()
        return [c["name"] for c in response.get_json()["data"]]

    api.post("/clients", json={"name": "Zoé 100%_sure", "email": "zoe@sure.example"})
    assert names("q=garage") == ["Garage Martin"]
    assert names("q=DUPONT.example") == ["Boulangerie Dupont"]
    assert names("q=100%25_") == ["Zoé 100%_sure"]  # LIKE wildcards are literal
    assert names("q=0%25") == ["Zoé 100%_sure"]
    assert names("q=%25") == ["Zoé 100%_sure"]
    assert names("template=monthly") == ["Boulangerie Dupont", "Garage Martin"]
    assert names("status=pending") == []
    assert_problem(
        api.get("/clients?template=vat"), 400, "invalid-request", template="No template"
    )
    assert_problem(
        api.get("/clients?status=gone"), 400, "invalid-request", status="one of"
    )


def test_bulk_create_is_all_or_nothing_and_names_each_row(api):
    rows = [
        {"name": "Alpha", "email": "a@alpha.example"},
        {"name": "Beta", "email": "not an email"},
        {"name": "Gamma", "email": "A@alpha.example"},
        {"name": "Delta", "email": "marie@dupont.example"},
        {"name": "Epsilon", "email": "e@eps.example", "templates": ["vat"]},
    ]
    response = api.post("/clients/bulk", json={"clients": rows})
    assert_problem(
        response,
        422,
        "validation",
        **{
            "#/clients/1/email": "@-sign",
            "#/clients/2/email": "also at #/clients/0",
            "#/clients/3/email": "already exists",
            "#/clients/4/templates/0": "No template 'vat'",
        },
    )
    assert len(api.get("/clients").get_json()["data"]) == 2  # nothing was added

    good = [rows[0], rows[3], {"name": "Beta", "email": "b@beta.example"}]
    response = api.post("/clients/bulk", json={"clients": good, "skip_existing": True})
    assert response.status_code == 201
    body = response.get_json()
    assert [c["name"] for c in body["created"]] == ["Alpha", "Beta"]
    assert body["skipped"] == [{"index": 1, "id": 1, "email": "marie@dupont.example"}]


def test_bulk_refuses_empty_and_oversized_batches(api):
    assert_problem(
        api.post("/clients/bulk", json={"clients": []}),
        422,
        "validation",
        **{"#/clients": "at least one"},
    )
    many = [{"name": f"C{n}", "email": f"c{n}@x.example"} for n in range(1001)]
    assert_problem(
        api.post("/clients/bulk", json={"clients": many}),
        422,
        "validation",
        **{"#/clients": "at most 1000"},
    )
    assert_problem(
        api.post("/clients/bulk", json={"clients": ["x"]}),
        422,
        "validation",
        **{"#/clients/0": "must be an object"},
    )


# -- templates -----------------------------------------------------------------------------


def test_create_and_update_a_template_with_its_slots(api, db):
    body = {
        "slug": "vat",
        "name": "VAT return",
        "cadence": "quarterly",
        "due_day": 20,
        "slots": [
            {"name": "Sales ledger", "description": "Export from the till"},
            {"name": "Purchase invoices", "optional": True, "multiple": False},
        ],
    }
    response = api.post("/templates", json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert response.headers["Location"] == "/api/v1/templates/vat"
    assert created["cadence"] == "quarterly" and created["due_day"] == 20
    assert [(s["name"], s["optional"], s["multiple"]) for s in created["slots"]] == [
        ("Sales ledger", False, True),
        ("Purchase invoices", True, False),
    ]
    assert_problem(
        api.post("/templates", json=body), 409, "conflict", **{"#/slug": "exists"}
    )

    changed = api.patch(
        "/templates/vat",
        json={
            "name": "VAT",
            "slots": [{"name": "Purchase invoices"}, {"name": "Bank statements"}],
        },
    ).get_json()
    assert changed["name"] == "VAT" and changed["cadence"] == "quarterly"
    assert [(s["name"], s["position"]) for s in changed["slots"]] == [
        ("Purchase invoices", 1),
        ("Bank statements", 2),
    ]
    assert api.get("/templates/vat").get_json() == changed
    slugs = [t["slug"] for t in api.get("/templates").get_json()["data"]]
    assert slugs == ["monthly", "vat"]


def test_slot_changes_through_the_api_are_audited_with_the_token_name(api, db):
    api.patch("/templates/monthly", json={"description": "no slot change"})
    assert api.get("/events?type=template.slots_replaced").get_json()["data"] == []
    response = api.patch(
        "/templates/monthly",
        json={"slots": [{"name": "Receipts"}, {"name": "Payslips"}]},
    )
    assert response.status_code == 200
    [event] = api.get("/events?type=template.slots_replaced").get_json()["data"]
    assert event["actor"] == "api:crm-sync"
    assert event["subject"] == {"type": "template", "id": response.get_json()["id"]}
    assert event["data"] == {"slug": "monthly", "slots": ["Receipts", "Payslips"]}
    # One event for the whole list, not one per slot.
    assert (
        db.execute(
            "SELECT count(*) FROM events WHERE action LIKE 'template:slot%'"
        ).fetchone()[0]
        == 1
    )


def test_template_fields_at_fault_are_named(api):
    cases = [
        ({"slug": "Bad Slug", "name": "x"}, "#/slug", "lower-case"),
        ({"slug": "ok", "name": "x", "cadence": "weekly"}, "#/cadence", "monthly"),
        ({"slug": "ok", "name": "x", "due_day": 32}, "#/due_day", "between 1 and 31"),
        ({"slug": "ok", "name": "x", "due_day": True}, "#/due_day", "whole number"),
        ({"slug": "ok", "name": "x", "slots": [{}]}, "#/slots/0/name", "required"),
        (
            {"slug": "ok", "name": "x", "slots": [{"name": "A"}, {"name": " A "}]},
            "#/slots/1/name",
            "twice",
        ),
        ({"slug": "ok"}, "#/name", "required"),
    ]
    for body, pointer, text in cases:
        assert_problem(
            api.post("/templates", json=body), 422, "validation", **{pointer: text}
        )
    assert_problem(api.get("/templates/nope"), 404, "not-found")
    assert_problem(api.patch("/templates/nope", json={}), 404, "not-found")


# -- checklists ---------------------------------------------------------------------------


def test_generate_a_period_for_a_template(api, db, seed):
    response = api.post(
        "/checklists", json={"template": "monthly", "period": "2027-01", "send": False}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["period"] == "2027-01" and body["created"] == 2
    assert body["due_on"] == "2026-12-10" and body["messages_queued"] == 0
    assert len(body["checklist_ids"]) == 2
    again = api.post("/checklists", json={"template": "monthly", "period": "2027-01"})
    assert again.status_code == 200
    assert again.get_json()["created"] == 0 and again.get_json()["already"] == 2

    sent = api.post(
        "/checklists",
        json={
            "template": "monthly",
            "period": "2027-02",
            "due_on": "2027-02-15",
            "clients": [seed.client_ids[1]],
        },
    ).get_json()
    assert sent["created"] == 1 and sent["messages_queued"] == 1
    row = checklists.get_checklist(db, sent["checklist_ids"][0])
    assert row["client_id"] == seed.client_ids[1] and row["due_on"] == "2027-02-15"


def test_generate_names_the_field_at_fault(api, seed, db):
    other = clients.add_client(
        db, clients.ClientInput("Unassigned", "u@x.example"), NOW, region="FR"
    )
    cases = [
        ({}, "#/template", "required"),
        ({"template": "vat"}, "#/template", "No template"),
        ({"template": "monthly", "period": "2026-13"}, "#/period", "like 2026-12"),
        ({"template": "monthly", "due_on": "10/12/2026"}, "#/due_on", "date"),
        ({"template": "monthly", "clients": [999]}, "#/clients/0", "No client"),
        ({"template": "monthly", "clients": [other]}, "#/clients/0", "not assigned"),
        ({"template": "monthly", "clients": ["1"]}, "#/clients/0", "client id"),
        ({"template": "monthly", "send": "yes"}, "#/send", "true or false"),
    ]
    for body, pointer, text in cases:
        assert_problem(
            api.post("/checklists", json=body), 422, "validation", **{pointer: text}
        )


def test_list_checklists_with_filters(api, seed, db):
    def ids(query=""):
        response = api.get("/checklists?" + query)
        assert response.status_code == 200, response.get_json()
        return [c["id"] for c in response.get_json()["data"]]

    assert ids() == seed.checklist_ids
    first = api.get("/checklists").get_json()["data"][0]
    assert first["client"] == "Boulangerie Dupont" and first["template"] == "monthly"
    assert first["state"] == "partial"
    assert first["progress"] == {"required": 2, "received": 1, "items": 3}
    assert ids("state=partial") == [seed.checklist_ids[0]]
    assert ids("state=not_opened") == [seed.checklist_ids[1]]
    assert ids(f"client={seed.client_ids[1]}") == [seed.checklist_ids[1]]
    assert ids("period=2026-12&template=monthly") == seed.checklist_ids
    assert ids("period=2026-11") == []
    assert_problem(
        api.get("/checklists?state=done"), 400, "invalid-request", state="one of"
    )
    assert_problem(
        api.get("/checklists?client=0"), 400, "invalid-request", client="from 1"
    )


def test_get_a_checklist_with_items_and_documents(api, seed, settings):
    response = api.get(f"/checklists/{seed.checklist_ids[0]}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["link"].startswith(settings.portal.base_url + "/c/")
    assert [item["name"] for item in body["items"]] == [
        "Bank statements",
        "Sales invoices",
        "Receipts",
    ]
    first = body["items"][0]
    assert first["state"] == "received"
    [document] = first["documents"]
    assert document["id"] == seed.document_id
    assert document["filename"] == "relevé.pdf"
    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert document["file_url"] == f"/api/v1/documents/{seed.document_id}/file"
    assert body["items"][1]["documents"] == []
    assert_problem(api.get("/checklists/999"), 404, "not-found")


def test_send_a_reminder(api, seed, db):
    checklist_id = seed.checklist_ids[0]
    problem = assert_problem(
        api.post(f"/checklists/{checklist_id}/reminders"), 409, "conflict"
    )
    assert "link sent" in problem["detail"]
    db.execute(
        "UPDATE checklists SET link_sent_at = ? WHERE id = ?",
        ["2026-11-28T09:00:00Z", checklist_id],
    )
    response = api.post(f"/checklists/{checklist_id}/reminders")
    assert response.status_code == 202
    assert response.get_json() == {"checklist_id": checklist_id, "queued": True}
    [message] = db.query("SELECT * FROM messages WHERE kind = 'reminder'")
    assert json.loads(message["checklist_ids"]) == [checklist_id]
    assert message["state"] == "pending"
    assert_problem(api.post("/checklists/999/reminders"), 404, "not-found")


# -- documents -----------------------------------------------------------------------------


def test_download_a_document_with_its_type_and_name(api, seed):
    response = api.get(f"/documents/{seed.document_id}/file")
    assert response.status_code == 200
    assert response.data == PDF
    assert response.mimetype == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''relev%C3%A9.pdf" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert_problem(api.get("/documents/999/file"), 404, "not-found")


def test_a_document_missing_on_disk_is_a_clear_404(api, seed, settings, db):
    stored = db.execute(
        "SELECT stored_path FROM documents WHERE id = ?", [seed.document_id]
    ).fetchone()[0]
    (settings.files_dir / stored).unlink()
    problem = assert_problem(
        api.get(f"/documents/{seed.document_id}/file"), 404, "not-found"
    )
    assert "missing from the file store" in problem["detail"]


def test_approve_and_reject_documents(api, seed, db, settings):
    approved = api.post(f"/documents/{seed.document_id}/approve")
    assert approved.status_code == 200
    body = approved.get_json()
    assert body["review_state"] == "approved" and body["reviewer"] == "api:crm-sync"
    assert body["slot"] == "Bank statements" and body["client_id"] == seed.client_ids[0]

    second = upload(
        db,
        settings,
        seed.checklist_ids[0],
        seed.item_ids[1],
        "b.pdf",
        NOW,
        content=PDF + b"%second",
    )
    assert_problem(
        api.post(f"/documents/{second}/reject", json={"note": "  "}),
        422,
        "validation",
        **{"#/note": "blank"},
    )
    assert_problem(
        api.post(f"/documents/{second}/reject", json={}),
        422,
        "validation",
        **{"#/note": "required"},
    )
    rejected = api.post(
        f"/documents/{second}/reject", json={"note": "Page 2 is missing"}
    ).get_json()
    assert rejected["review_state"] == "rejected"
    assert rejected["review_note"] == "Page 2 is missing"
    assert (
        db.execute("SELECT count(*) FROM messages WHERE kind = 'rejection'").fetchone()[
            0
        ]
        == 1
    )
    assert api.get(f"/documents/{second}").get_json() == rejected
    assert_problem(api.post("/documents/999/approve"), 404, "not-found")


# -- events ---------------------------------------------------------------------------------


def test_the_event_feed_from_event_n(api, seed, db):
    everything = api.get("/events?limit=1000").get_json()
    assert everything["next_cursor"] is None
    types = [e["type"] for e in everything["data"]]
    assert types[:2] == ["template.saved", "client.created"]
    assert "document.uploaded" in types
    last = everything["data"][-1]["id"]

    assert api.get(f"/events?after={last}").get_json() == {
        "data": [],
        "next_cursor": None,
    }
    api.post(f"/documents/{seed.document_id}/approve")
    fresh = api.get(f"/events?after={last}").get_json()["data"]
    assert [e["type"] for e in fresh] == ["document.approved"]
    assert fresh[0]["actor"] == "api:crm-sync"
    assert fresh[0]["subject"] == {"type": "document", "id": seed.document_id}

    uploads = api.get("/events?type=document.uploaded,document.approved").get_json()
    assert [e["type"] for e in uploads["data"]] == [
        "document.uploaded",
        "document.approved",
    ]
    assert uploads["data"][0]["data"]["content_type"] == "application/pdf"
    mine = api.get(f"/events?client={seed.client_ids[1]}").get_json()["data"]
    assert {e["client_id"] for e in mine} == {seed.client_ids[1]}
    assert_problem(
        api.get("/events?type=document.eaten"), 400, "invalid-request", type="unknown"
    )
    assert_problem(api.get("/events?after=-1"), 400, "invalid-request", after="from 0")
