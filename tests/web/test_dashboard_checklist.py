"""One checklist: items and files, previews served safely, approve, reject with a note
(the client is emailed in their language), not applicable, reminder, link, timeline."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import use_smtp
from monthlydocs.config import load_settings
from monthlydocs.web import create_app

from .conftest import EXE, PDF, PNG, PortalClient, make_case
from .dashboard_kit import (  # noqa: F401 (fixtures)
    EMAIL,
    Staff,
    add_staff,
    flashed,
    staff_fixture,
    text_of,
    use_cheap_hasher,
)

XML = b'<?xml version="1.0"?><invoice><total>12.00</total></invoice>\n'


@pytest.fixture
def app(case, clock):
    """The app as the servers run it: what a request queues, a thread of its own sends
    once the answer is out."""
    flask_app = create_app(case.settings, clock=clock, send_in_background=True)
    flask_app.config["TESTING"] = True
    return flask_app


def _sent(staff) -> None:
    """Wait for the sending round the last request started (no sleeping: the sender
    says when it is idle)."""
    sender = staff.http.application.extensions["monthlydocs.sender"]
    assert sender.idle.wait(20), "the sending thread did not finish"


def _emails(case, staff) -> list[email.message.EmailMessage]:
    _sent(staff)
    folder = case.settings.outbox_dir
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ] if folder.is_dir() else []


def _page(staff, case) -> str:
    return text_of(staff.get(f"/dashboard/checklists/{case.checklist_id}"))


def _timeline(staff, case) -> list[str]:
    """Each line of the timeline as text, without its time: "What by whom"."""
    page = _page(staff, case)
    part = page[page.index('<ol class="timeline">'):]
    part = part[:part.index("</ol>")]
    lines = re.findall(r"<li[^>]*>(.*?)</li>", part, re.S)
    return [" ".join(re.sub(r"<time.*?</time>|<[^>]+>", " ", line).split())
            for line in lines]


def test_the_page_shows_items_files_and_their_facts(staff, case, portal):
    portal.upload(case.item_ids[0], ("relevé décembre.pdf", PDF), ("photo.png", PNG))
    page = _page(staff, case)
    assert "<h1>" in page and "Boulangerie Dupont" in page
    for slot in ("Bank statements", "Sales invoices", "Expense receipts"):
        assert slot in page
    assert "relevé décembre.pdf" in page and "photo.png" in page
    assert hashlib.sha256(PDF).hexdigest() in page
    assert "Dec 1, 2026" in page or "12/1/26" in page  # upload time, firm's zone
    assert "To review" in page and "1 of 2 required documents done" in page
    # Previews: an <img> for the photo, a lazy frame for the PDF.
    documents = case.documents()
    assert f'<img src="/dashboard/documents/{documents[1]["id"]}/file"' in page
    assert f'<iframe src="/dashboard/documents/{documents[0]["id"]}/file"' in page


def test_the_page_lets_frames_from_the_app_only(staff, case):
    policy = staff.get(f"/dashboard/checklists/{case.checklist_id}").headers[
        "Content-Security-Policy"]
    assert "frame-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "frame-src" not in staff.get("/dashboard/").headers["Content-Security-Policy"]


def test_pdf_and_images_are_shown_inline_with_their_own_type(staff, case, portal):
    portal.upload(case.item_ids[0], ("relevé.pdf", PDF), ("photo.png", PNG))
    pdf, png = case.documents()
    shown = staff.get(f"/dashboard/documents/{pdf['id']}/file")
    assert shown.status_code == 200 and shown.data == PDF
    assert shown.headers["Content-Type"] == "application/pdf"
    assert shown.headers["Content-Disposition"].startswith("inline")
    assert "filename*=UTF-8''relev%C3%A9.pdf" in shown.headers["Content-Disposition"]
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'self'" in shown.headers["Content-Security-Policy"]
    assert shown.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "no-store" in shown.headers["Cache-Control"]

    image = staff.get(f"/dashboard/documents/{png['id']}/file")
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["Content-Disposition"].startswith("inline")

    downloaded = staff.get(f"/dashboard/documents/{pdf['id']}/file?download=1")
    assert downloaded.headers["Content-Disposition"].startswith("attachment")
    assert downloaded.data == PDF


def test_other_files_are_downloaded_and_markup_never_served_as_itself(staff, case,
                                                                      portal):
    portal.upload(case.item_ids[1], ("facture.xml", XML))
    [document] = case.documents()
    assert document["content_type"] == "application/xml"
    response = staff.get(f"/dashboard/documents/{document['id']}/file")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    # Even a row that claims HTML (written by an older version, say) is a download.
    db = case.db()
    db.execute("UPDATE documents SET content_type = 'text/html' WHERE id = ?",
               [document["id"]])
    db.close()
    response = staff.get(f"/dashboard/documents/{document['id']}/file")
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")


def test_refused_upload_kinds_never_reach_the_page(portal, case):
    assert portal.upload(case.item_ids[0], ("virus.exe", EXE)).status_code == 415


def test_unknown_document_or_checklist_is_404(staff):
    assert staff.get("/dashboard/documents/999/file").status_code == 404
    page = staff.get("/dashboard/checklists/999")
    assert page.status_code == 404
    assert "This checklist no longer exists." in text_of(page)


def test_approve_records_who(staff, case, portal):
    portal.upload(case.item_ids[0], ("relevé.pdf", PDF))
    [document] = case.documents()
    response = staff.post(f"/dashboard/documents/{document['id']}/approve")
    assert response.headers["Location"].endswith(f"#item-{case.item_ids[0]}")
    assert "“relevé.pdf” approved." in flashed(staff, response)
    assert case.items()[0]["state"] == "approved"
    [event] = case.events("document:approved")
    assert event["actor"] == EMAIL
    assert _timeline(staff, case)[0] == f"Approved: relevé.pdf by {EMAIL}"


def test_reject_emails_the_note_in_the_clients_language(staff, case, portal):
    portal.upload(case.item_ids[0], ("relevé.pdf", PDF))
    [document] = case.documents()
    response = staff.post(f"/dashboard/documents/{document['id']}/reject",
                          {"note": "  La page 2   manque "})
    page = flashed(staff, response)
    assert "your note is on its way to the client by email" in page
    item = case.items()[0]
    assert (item["state"], item["note"]) == ("rejected", "La page 2 manque")
    assert "To send again" in page
    assert "Note sent to the client: La page 2 manque" in page
    [event] = case.events("document:rejected")
    assert event["actor"] == EMAIL

    [message] = _emails(case, staff)
    assert message["To"].addresses[0].addr_spec == "marie@dupont.example"
    assert message["Content-Language"] == "fr"
    assert message["Subject"].startswith("Merci de renvoyer")
    plain = message.get_body("plain").get_content()
    assert "La page 2 manque" in plain and f"/c/{case.token}" in plain
    assert "Rejection email to marie@dupont.example: sent" in _timeline(staff, case)


def test_reject_needs_a_note(staff, case, portal):
    portal.upload(case.item_ids[0], ("relevé.pdf", PDF))
    [document] = case.documents()
    response = staff.post(f"/dashboard/documents/{document['id']}/reject",
                          {"note": "   "})
    assert "Write a note telling the client" in flashed(staff, response)
    assert case.documents()[0]["review_state"] == "pending"
    assert _emails(case, staff) == []


def test_the_client_sends_again_then_the_firm_approves(staff, case, portal):
    portal.upload(case.item_ids[0], ("flou.pdf", PDF))
    [first] = case.documents()
    staff.post(f"/dashboard/documents/{first['id']}/reject", {"note": "Illisible"})
    portal.upload(case.item_ids[0], ("net.pdf", PDF + b"\n% lisible"))
    second = case.documents()[1]
    assert case.items()[0]["state"] == "received"
    staff.post(f"/dashboard/documents/{second['id']}/approve")
    assert case.items()[0]["state"] == "approved"


def test_mark_an_item_not_applicable(staff, case):
    item = case.item_ids[1]
    response = staff.post(f"/dashboard/items/{item}/not-applicable",
                          {"reason": "Pas de ventes en décembre"})
    assert "Marked as not applicable." in flashed(staff, response)
    row = case.items()[1]
    assert (row["state"], row["note"]) == ("not_applicable", "Pas de ventes en décembre")
    [event] = case.events("item:not_applicable")
    assert event["actor"] == EMAIL
    page = _page(staff, case)
    assert "Reason: Pas de ventes en décembre" in page
    assert f"Marked not applicable: Pas de ventes en décembre by {EMAIL}" in \
        _timeline(staff, case)
    assert staff.post("/dashboard/items/999/not-applicable").status_code == 404


def test_send_a_reminder_now(staff, case):
    response = staff.post(f"/dashboard/checklists/{case.checklist_id}/remind")
    assert "Reminder on its way." in flashed(staff, response)
    [message] = _emails(case, staff)
    assert message["To"].addresses[0].addr_spec == "marie@dupont.example"
    assert message["Content-Language"] == "fr"
    [asked] = case.events("reminder:requested")
    assert asked["actor"] == EMAIL
    lines = _timeline(staff, case)
    assert "Reminder 1 by email: sent" in lines
    assert f"Reminder asked for by {EMAIL}" in lines


def test_no_reminder_for_a_complete_checklist(staff, case):
    for item in case.item_ids:
        staff.post(f"/dashboard/items/{item}/not-applicable")
    assert case.checklist()["completed_at"]
    assert "Send a reminder now" not in _page(staff, case)
    response = staff.post(f"/dashboard/checklists/{case.checklist_id}/remind")
    assert response.status_code == 400
    assert "Nothing to remind" in text_of(response)
    assert _emails(case, staff) == []


def test_copy_link_whatsapp_and_rotate(staff, case, portal):
    page = _page(staff, case)
    link = f"http://127.0.0.1:8000/c/{case.token}"
    assert f'<input type="text" id="portal-link" value="{link}" readonly>' in page
    assert 'data-copy="portal-link"' in page
    whatsapp = page.split('href="https://wa.me/')[1].split('"')[0]
    text = parse_qs(urlparse("https://wa.me/" + whatsapp.replace("&amp;", "&")).query)
    assert text["text"] == [f"Bonjour Boulangerie Dupont, voici votre lien pour "
                            f"envoyer vos documents : {link}"]

    response = staff.post(f"/dashboard/checklists/{case.checklist_id}/rotate")
    assert "the old one no longer works" in flashed(staff, response)
    assert case.checklist()["token"] != case.token
    assert portal.open().status_code == 404
    [event] = case.events("checklist:link_rotated")
    assert event["actor"] == EMAIL


@pytest.mark.parametrize(("language", "subject"), [
    ("de", "Bitte senden Sie eine Unterlage"),
    ("es", "Envíe de nuevo un documento"),
    ("id", "Mohon kirim ulang"),
    ("en", "Please send a document again"),
])
def test_rejection_email_in_every_language(staff, case, portal, language, subject):
    db = case.db()
    db.execute("UPDATE clients SET language = ? WHERE id = ?", [language, case.client_id])
    db.close()
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    [document] = case.documents()
    staff.post(f"/dashboard/documents/{document['id']}/reject", {"note": "Seite 2"})
    [message] = _emails(case, staff)
    assert message["Content-Language"] == language
    assert message["Subject"].startswith(subject)
    assert "Seite 2" in message.get_body("plain").get_content()


def test_timeline_tells_the_story_latest_first(staff, case, portal, clock):
    staff.post(f"/dashboard/checklists/{case.checklist_id}/remind")
    _sent(staff)
    clock.advance(hours=1)
    portal.open()
    clock.advance(minutes=5)
    portal.upload(case.item_ids[0], ("relevé.pdf", PDF))
    assert _timeline(staff, case) == [
        "Received: relevé.pdf by the client",
        "The client opened the link by the client",
        "Reminder 1 by email: sent",
        "Reminder asked for by anne@martin.example",
        "Checklist created from the command line",
    ]


def test_a_failed_email_is_shown_on_the_timeline(tmp_path, clock, free_port):
    """SMTP down: the rejection stands, and the timeline says why the email failed."""
    case = make_case(tmp_path / "down")
    use_smtp(case.settings.path, free_port)  # nothing listens there
    case.settings = load_settings(case.settings.path, environ={})
    app = create_app(case.settings, clock=clock, send_in_background=True)
    use_cheap_hasher(app)
    add_staff(case)
    staff = Staff(app.test_client())
    staff.login()
    PortalClient(app.test_client(), case).upload(case.item_ids[0], ("a.pdf", PDF))
    [document] = case.documents()
    response = staff.post(f"/dashboard/documents/{document['id']}/reject",
                          {"note": "Illisible"})
    assert response.status_code == 303
    _sent(staff)
    assert case.items()[0]["state"] == "rejected"
    [line] = [t for t in _timeline(staff, case) if t.startswith("Rejection email")]
    assert line.startswith("Rejection email to marie@dupont.example: failed: ")


def test_the_request_only_queues_what_the_sending_thread_sends(tmp_path, clock):
    """Without the app's sending thread, nothing is sent while staff wait: the email
    and the reminder stay queued (for the thread, or the next `remind`)."""
    case = make_case(tmp_path / "quiet")
    app = create_app(case.settings, clock=clock)  # no sending thread
    use_cheap_hasher(app)
    add_staff(case)
    staff = Staff(app.test_client())
    staff.login()
    PortalClient(app.test_client(), case).upload(case.item_ids[0], ("a.pdf", PDF))
    [document] = case.documents()
    rejected = staff.post(f"/dashboard/documents/{document['id']}/reject",
                          {"note": "Illisible"})
    assert "on its way to the client" in flashed(staff, rejected)
    reminded = staff.post(f"/dashboard/checklists/{case.checklist_id}/remind")
    assert "Reminder on its way." in flashed(staff, reminded)
    db = case.db()
    try:
        queued = list(db.query("SELECT kind, state FROM messages ORDER BY id"))
    finally:
        db.close()
    assert [(m["kind"], m["state"]) for m in queued][-2:] == [
        ("rejection", "pending"), ("reminder", "pending")]
    folder = case.settings.outbox_dir
    assert not folder.is_dir() or not list(folder.glob("*.eml"))


def test_no_reminder_past_the_last_step(staff, case):
    steps = len(case.settings.reminders.days)
    url = f"/dashboard/checklists/{case.checklist_id}/remind"
    for _ in range(steps):
        assert "Reminder on its way." in flashed(staff, staff.post(url))
    last = flashed(staff, staff.post(url))
    assert "Every reminder of the sequence has been sent already" in last
    assert len(_emails(case, staff)) == steps
