"""The dashboard in headless Chromium, against waitress and a real SMTP server: sign in;
a client uploads from a second browser and the upload shows up without a reload; reject
with a note that reaches the client's mailbox; the client sends again; approve; export
the ZIP and check it against its manifest. Then the same pages on a tablet, by keyboard.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

import pytest
from web.conftest import make_case
from web.dashboard_kit import EMAIL, PASSWORD, add_staff, use_cheap_hasher

from conftest import use_smtp

from .conftest import Server

pytestmark = pytest.mark.browser

PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
       b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n"
       b"%%EOF\n")


@pytest.fixture
def firm(tmp_path, smtp_server):
    """A workspace whose emails go to the SMTP sink, served by waitress."""
    from monthlydocs.config import load_settings
    from monthlydocs.web import create_app

    case = make_case(tmp_path / "ws", language="fr")
    use_smtp(case.settings.path, smtp_server.port)
    case.settings = load_settings(case.settings.path, environ={})
    add_staff(case)
    app = create_app(case.settings, send_in_background=True)  # as `serve` runs it
    case.extra["sender"] = app.extensions["monthlydocs.sender"]
    use_cheap_hasher(app)
    server = Server(app)
    yield case, server
    server.close()


def _sign_in(page, server):
    page.goto(f"{server.url}/dashboard/")
    assert "/dashboard/login" in page.url
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()


def _client_uploads(page, case, server, name, content):
    page.goto(f"{server.url}/c/{case.token}")
    item = case.item_ids[0]
    page.set_input_files(f"#file-{item}", files=[
        {"name": name, "mimeType": "application/pdf", "buffer": content}])
    page.locator(f"#slot-{item} .files", has_text=name).wait_for()


def test_live_upload_review_and_export(browser, firm, smtp_server, screenshot):
    case, server = firm
    staff_context = browser.new_context(locale="en-US", accept_downloads=True)
    client_context = browser.new_context(locale="fr-FR")
    errors = []
    try:
        page = staff_context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, server)
        row = page.locator(f"#row-{case.checklist_id}")
        assert "0 of 2" in row.inner_text()
        page.evaluate("window.stillTheSamePage = true")

        # The client uploads from their own browser; the dashboard hears of it.
        client = client_context.new_page()
        _client_uploads(client, case, server, "relevé décembre.pdf", PDF)
        notice = page.locator("#live .notice", has_text="New upload from Boulangerie "
                              "Dupont: relevé décembre.pdf")
        notice.wait_for(timeout=10_000)
        page.locator(f"#row-{case.checklist_id}", has_text="1 of 2").wait_for()
        assert page.evaluate("window.stillTheSamePage") is True  # no reload
        screenshot(page, "dashboard-overview")

        # Reject with a note: the client is emailed it, in French.
        notice.get_by_role("link").click()
        page.get_by_role("heading", name="Boulangerie Dupont").wait_for()
        page.locator("details.reject summary").first.click()
        page.get_by_label("Note for the client").fill("Il manque la page 2")
        page.get_by_role("button", name="Reject and email the client").click()
        page.get_by_text("your note is on its way to the client by email").wait_for()
        assert case.extra["sender"].idle.wait(20)  # the app's thread sent it
        [message] = smtp_server.parsed()
        assert message["To"].addresses[0].addr_spec == "marie@dupont.example"
        assert message["Content-Language"] == "fr"
        assert "Il manque la page 2" in message.get_body("plain").get_content()

        # The client reads the note and sends the file again; the firm approves it.
        client.reload()
        client.get_by_text("Il manque la page 2").first.wait_for()
        _client_uploads(client, case, server, "relevé complet.pdf", PDF + b"% p2\n")
        page.reload()
        page.get_by_role("button", name="Approve relevé complet.pdf").click()
        page.get_by_text("“relevé complet.pdf” approved.").wait_for()
        assert case.items()[0]["state"] == "approved"
        screenshot(page, "dashboard-checklist")

        # Export: the download is the ZIP its manifest describes.
        page.get_by_role("link", name="Export").click()
        page.get_by_role("button", name="See what will be exported").click()
        with page.expect_download() as download:
            page.get_by_role("link", name="Download the ZIP file").click()
        data = open(download.value.path(), "rb").read()
    finally:
        staff_context.close()
        client_context.close()
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    manifest = list(csv.DictReader(io.StringIO(
        archive.read("manifest.csv").decode("utf-8-sig"))))
    assert sorted(r["file"] for r in manifest) == sorted(
        n for n in archive.namelist() if n != "manifest.csv")
    assert {r["review_state"] for r in manifest} == {"rejected", "approved"}
    for row in manifest:
        content = archive.read(row["file"])
        assert hashlib.sha256(content).hexdigest() == row["sha256"]
        assert len(content) == int(row["size"])
    assert errors == []  # a CSP violation or a script error would show here


def test_tablet_and_keyboard(browser, firm, screenshot):
    case, server = firm
    context = browser.new_context(viewport={"width": 768, "height": 1024},
                                  has_touch=True, locale="de-DE")
    try:
        page = context.new_page()
        page.goto(f"{server.url}/dashboard/login")
        # Keyboard only: the skip link first, then the form's fields in order.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.locator("#email").focus()
        page.keyboard.type(EMAIL)
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.get_by_role("heading", name="Übersicht").wait_for()
        # Nothing wider than the screen but the table, which scrolls in its box;
        # the state column comes second so it shows without scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 768
        state = page.locator(f"#row-{case.checklist_id} td").first.bounding_box()
        assert state["x"] + state["width"] <= 768
        page.goto(f"{server.url}/dashboard/checklists/{case.checklist_id}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 768
        screenshot(page, "dashboard-checklist-tablet")
    finally:
        context.close()
