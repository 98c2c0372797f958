"""The portal in headless Chromium: French from the browser, an upload through the file
input without a reload, "nothing to send", and "All done" — on a desktop and a phone."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n"
    b"%%EOF\n"
)


def _walk_through(page, case, server, screenshot, name):
    page.goto(f"{server.url}/c/{case.token}")
    assert page.get_attribute("html", "lang") == "fr"
    assert page.locator("h1").inner_text() == "Documents de Boulangerie Dupont"
    assert "0 sur 2 documents traités" in page.locator("#summary").inner_text()
    # The script is loaded from the app itself and marks the page.
    assert "js" in page.get_attribute("html", "class")
    page.evaluate("window.stillTheSamePage = true")

    first, second = case.item_ids[0], case.item_ids[1]
    page.set_input_files(
        f"#file-{first}",
        files=[
            {
                "name": "relevé décembre.pdf",
                "mimeType": "application/pdf",
                "buffer": PDF,
            }
        ],
    )
    slot = page.locator(f"#slot-{first}")
    slot.locator(".badge", has_text="Reçu").wait_for()
    assert "relevé décembre.pdf" in slot.locator(".files").inner_text()
    assert "1 sur 2 documents traités" in page.locator("#summary").inner_text()
    screenshot(page, f"{name}-uploaded")

    other = page.locator(f"#slot-{second}")
    other.locator("summary").click()
    other.locator("textarea").fill("Aucune vente ce mois-ci")
    other.get_by_role("button", name="Confirmer : rien à envoyer").click()
    page.locator(f"#slot-{second} .badge", has_text="Rien à envoyer").wait_for()
    page.get_by_text("C’est terminé, merci !").wait_for()
    assert page.evaluate("window.stillTheSamePage") is True  # no reload at any step
    screenshot(page, f"{name}-all-done")

    checklist = case.checklist()
    assert checklist["completed_at"] is not None
    assert checklist["open_count"] == 1
    assert [d["original_filename"] for d in case.documents()] == ["relevé décembre.pdf"]


def test_desktop_in_french_from_accept_language(browser, served, screenshot):
    case, server = served(language=None)
    context = browser.new_context(
        locale="fr-FR", extra_http_headers={"Accept-Language": "fr-FR,fr;q=0.9"}
    )
    page = context.new_page()
    errors = []
    page.on(
        "console", lambda msg: errors.append(msg.text) if msg.type == "error" else None
    )
    try:
        _walk_through(page, case, server, screenshot, "desktop")
    finally:
        context.close()
    assert errors == []  # CSP violations would show here


def test_phone_viewport(browser, served, screenshot):
    case, server = served(language="fr")
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="en-US",
    )
    page = context.new_page()
    try:
        _walk_through(page, case, server, screenshot, "phone")
        # Nothing wider than the screen, and touch targets of a finger's size.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = page.locator(f"#slot-{case.item_ids[1]} .button").first.bounding_box()
        assert box["height"] >= 44
    finally:
        context.close()


def test_narrow_phone_360_px_wide(browser, served, screenshot):
    # German and a long company name: the longest words the page is likely to hold.
    case, server = served(
        language="de", name="Bäckerei und Konditorei Müller-Lüdenscheidt GmbH & Co. KG"
    )
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    try:
        page.goto(f"{server.url}/c/{case.token}")
        page.locator("#summary").wait_for()
        # Nothing wider than the screen: no sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        for item_id in case.item_ids:
            button = page.locator(f"#slot-{item_id} .pick")
            assert button.is_visible()
            box = button.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360
            assert box["height"] >= 44
        screenshot(page, "phone-360")
    finally:
        context.close()
