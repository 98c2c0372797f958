"""The page behind a link: what it shows, visits counted, languages, dead links."""

from __future__ import annotations

import re

from monthlydocs import links

from .conftest import make_case, text_of


def test_page_shows_firm_client_period_due_slots_and_progress(portal):
    response = portal.open(**{"Accept-Language": "en"})
    page = text_of(response)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    for text in (
        "Cabinet Martin",
        "Boulangerie Dupont",
        "Monthly bookkeeping",
        "Bank statements",
        "Every account, the whole month",
        "Sales invoices",
        "Expense receipts",
        "Facultatif",
    ):
        assert text in page
    # The client is French on record: French wins over the browser's English.
    assert '<html lang="fr">' in page
    assert "décembre 2026" in page
    assert "10 décembre 2026" in page
    assert "0 sur 2 documents" in page


def test_opens_are_counted_and_the_first_is_an_event(portal, case, clock):
    portal.open()
    first = case.checklist()
    assert first["open_count"] == 1
    assert first["first_opened_at"] == first["last_opened_at"] == "2026-12-01T09:00:00Z"
    clock.advance(hours=5)
    portal.open()
    second = case.checklist()
    assert second["open_count"] == 2
    assert second["first_opened_at"] == "2026-12-01T09:00:00Z"
    assert second["last_opened_at"] == "2026-12-01T14:00:00Z"
    assert len(case.events("checklist:opened")) == 1


def test_page_after_an_action_is_not_a_new_visit(portal, case):
    portal.not_applicable(case.item_ids[2])  # csrf() opens the page once
    assert case.checklist()["open_count"] == 1
    followed = portal.http.get(portal.url)
    assert "C’est noté : rien à envoyer pour celui-ci." in text_of(followed)
    assert case.checklist()["open_count"] == 1


def test_language_order(tmp_path):
    from monthlydocs.web import create_app

    with_language = make_case(tmp_path / "a", language="de")
    without = make_case(tmp_path / "b", language=None)

    def lang(case, url_suffix="", **headers):
        client = create_app(case.settings).test_client()
        page = text_of(client.get(f"/c/{case.token}{url_suffix}", headers=headers))
        return re.search(r'<html lang="(\w+)">', page).group(1), client

    # Client's language on record beats Accept-Language.
    assert lang(with_language, **{"Accept-Language": "es-ES"})[0] == "de"
    # No language on record: the browser decides; nothing usable: the firm default.
    assert lang(without, **{"Accept-Language": "es-ES,es;q=0.9"})[0] == "es"
    assert lang(without, **{"Accept-Language": "ja"})[0] == "en"
    assert lang(without)[0] == "en"
    # ?lang= beats everything and is remembered in a cookie.
    chosen, client = lang(with_language, "?lang=id")
    assert chosen == "id"
    page = text_of(client.get(f"/c/{with_language.token}"))
    assert '<html lang="id">' in page
    assert "Dokumen untuk" in page


def test_each_language_speaks_its_own_words(tmp_path):
    from monthlydocs.web import create_app

    case = make_case(tmp_path / "ws", language=None)
    client = create_app(case.settings).test_client()
    expected = {
        "en": ("Documents for", "To send", "December 2026"),
        "fr": ("Documents de", "À envoyer", "décembre 2026"),
        "de": ("Unterlagen für", "Zu senden", "Dezember 2026"),
        "es": ("Documentos de", "Por enviar", "diciembre de 2026"),
        "id": ("Dokumen untuk", "Perlu dikirim", "Desember 2026"),
    }
    for code, words in expected.items():
        page = text_of(client.get(f"/c/{case.token}?lang={code}"))
        for word in words:
            assert word in page, (code, word)


def test_unknown_rotated_and_expired_links_get_the_same_404(portal, case, clock, app):
    random_token = links.new_token()[0]
    unknown = portal.http.get(f"/c/{random_token}", headers={"Accept-Language": "fr"})
    assert unknown.status_code == 404
    assert "Ce lien ne fonctionne pas" in text_of(unknown)

    db = case.db()
    old = case.token
    links.rotate(db, case.checklist_id, clock())
    rotated = portal.http.get(f"/c/{old}", headers={"Accept-Language": "fr"})
    assert rotated.status_code == 404

    # Completed, then the grace period passes: the link is closed the same way.
    new_token = db.execute("SELECT token FROM checklists").fetchone()[0]
    db.execute("UPDATE checklists SET completed_at = '2026-12-02T10:00:00Z'")
    db.conn.commit()
    db.close()
    clock.advance(days=31, hours=1)  # completed on the 2nd at 10:00, + 30 days
    expired = portal.http.get(f"/c/{new_token}", headers={"Accept-Language": "fr"})
    assert expired.status_code == 404
    # The same page whatever the reason (only the token in its own links differs).
    pages = [
        text_of(r).replace(token, "TOKEN")
        for r, token in ((unknown, random_token), (rotated, old), (expired, new_token))
    ]
    assert pages[0] == pages[1] == pages[2]


def test_link_stays_open_during_the_grace_period(portal, case, clock):
    db = case.db()
    db.execute("UPDATE checklists SET archived_at = '2026-12-01T09:00:00Z'")
    db.conn.commit()
    db.close()
    clock.advance(days=29)
    assert portal.open().status_code == 200
    clock.advance(days=1)
    assert portal.open().status_code == 404


def test_home_page_and_unknown_pages(portal):
    home = portal.http.get("/", headers={"Accept-Language": "de"})
    assert home.status_code == 200
    assert "Dokumentenportal von Cabinet Martin" in text_of(home)
    missing = portal.http.get("/nothing-here")
    assert missing.status_code == 404


def test_firm_logo_is_served_when_configured(tmp_path):
    from monthlydocs.web import create_app

    from .conftest import PNG

    case = make_case(tmp_path / "ws", portal={"logo": "logo.png"})
    (tmp_path / "ws" / "logo.png").write_bytes(PNG)
    client = create_app(case.settings).test_client()
    page = text_of(client.get(f"/c/{case.token}"))
    assert 'src="/logo"' in page
    logo = client.get("/logo")
    assert logo.status_code == 200 and logo.mimetype == "image/png"
    assert logo.data == PNG
