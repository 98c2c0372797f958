"""Headers, rate limits, token masking in logs, self-registration and approval."""

from __future__ import annotations

import logging
from urllib.parse import quote

from monthlydocs import portal as core
from monthlydocs.web.security import install_log_masking, mask_tokens

from .conftest import PDF, make_case, text_of


def test_security_headers_on_pages_errors_and_static(portal):
    for response in (
        portal.open(),
        portal.http.get("/c/unknown-token-123"),
        portal.http.get("/static/portal.css"),
    ):
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"
    assert portal.open().headers["Cache-Control"] == "no-store"


def test_pages_use_no_inline_script_style_or_third_party(portal, case):
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    page = text_of(portal.http.get(portal.url))
    assert "<script>" not in page and " style=" not in page and "onclick" not in page
    assert "http://" not in page.replace("http://localhost", "")
    assert "https://" not in page


def test_failed_lookups_are_rate_limited_per_address(tmp_path):
    from monthlydocs.web import create_app

    case = make_case(tmp_path / "ws", portal={"failed_link_limit": "3 per hour"})
    client = create_app(case.settings).test_client()
    # Working links are not counted.
    for _ in range(5):
        assert client.get(f"/c/{case.token}").status_code == 200
    for attempt in range(3):
        assert client.get(f"/c/guess{attempt:04d}xyz").status_code == 404
    blocked = client.get("/c/guess9999xyz", headers={"Accept-Language": "fr"})
    assert blocked.status_code == 429
    assert "Trop de tentatives" in text_of(blocked)
    # Even the right link waits now: guessing must not pay.
    assert client.get(f"/c/{case.token}").status_code == 429
    # Another address is not affected.
    other = client.get(f"/c/{case.token}", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 200


def test_token_is_masked_in_every_log_line(portal, case, caplog):
    install_log_masking()
    token = case.token
    caplog.set_level(logging.INFO)
    portal.open()
    portal.http.get(f"/c/{token}/nothing")
    logging.getLogger("werkzeug").info(
        '127.0.0.1 - - "GET /c/%s HTTP/1.1" 200 -', token
    )
    logging.getLogger("waitress").error("Exception while serving /c/%s", token)
    logging.getLogger("monthlydocs.web").error("Exception on /c/" + token + " [GET]")
    text = caplog.text
    access = [r for r in caplog.records if r.name == "monthlydocs.access"]
    assert access and f"/c/{token[:4]}…" in access[0].getMessage()
    assert token not in text
    assert text.count(f"/c/{token[:4]}…") >= 4
    assert mask_tokens(f"/join/{token}?x=1") == f"/join/{token[:4]}…?x=1"


def test_mask_filter_on_a_handler_catches_any_logger(tmp_path):
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install_log_masking(handler)
    logger = logging.getLogger("some.library.nobody.filtered")
    logger.addHandler(handler)
    try:
        logger.warning("GET %s", "/c/abcdefghijklmnopqrstuvwxyz012345")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().strip() == "GET /c/abcd…"


def test_self_registration_then_approval(tmp_path, cli_runner_for):
    from monthlydocs.web import create_app

    case = make_case(tmp_path / "ws")
    db = case.db()
    token = core.invite_token(db, case.settings.firm.secret_key)
    client = create_app(case.settings).test_client()
    form_page = client.get(f"/join/{token}", headers={"Accept-Language": "es"})
    assert form_page.status_code == 200
    html = text_of(form_page)
    assert "Únase a Cabinet Martin" in html
    assert '<option value="es" lang="es" selected>' in html
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    bad = client.post(
        f"/join/{token}",
        data={
            "csrf_token": csrf,
            "name": "Taller Ruiz",
            "email": "not-an-email",
            "phone": "",
            "language": "es",
        },
    )
    assert bad.status_code == 400
    assert "no parece correcta" in text_of(bad)
    done = client.post(
        f"/join/{token}",
        data={
            "csrf_token": csrf,
            "name": "Taller Ruiz",
            "email": "ana@ruiz.example",
            "phone": "+34 612 34 56 78",
            "language": "es",
        },
    )
    assert done.status_code == 200
    assert "¡Gracias!" in text_of(done)
    row = db.execute(
        "SELECT id, status, phone, language FROM clients"
        " WHERE email = 'ana@ruiz.example'"
    ).fetchone()
    assert row[1:] == ("pending", "+34612345678", "es")

    # Registering a known email again gives the same thanks and changes nothing.
    again = client.post(
        f"/join/{token}",
        data={
            "csrf_token": csrf,
            "name": "Someone",
            "email": "marie@dupont.example",
            "phone": "",
            "language": "fr",
        },
    )
    assert again.status_code == 200 and "Merci !" in text_of(again)
    assert db.execute("SELECT count(*) FROM clients").fetchone()[0] == 2

    cli = cli_runner_for(case)
    listed = cli("client", "list", "--pending")
    assert "Taller Ruiz" in listed.output and "Boulangerie" not in listed.output
    approved = cli("client", "approve", "Taller Ruiz", "--template", "monthly")
    assert approved.exit_code == 0, approved.output
    assert "Approved #" in approved.output
    assert (
        db.execute("SELECT status FROM clients WHERE id = ?", [row[0]]).fetchone()[0]
        == "active"
    )
    assert len(case.events("client:approved")) == 1
    twice = cli("client", "approve", "Taller Ruiz")
    assert twice.exit_code == 1 and "not waiting for approval" in twice.output
    db.close()


def test_invite_link_rotation_and_rate_limit(tmp_path, cli_runner_for):
    from monthlydocs.web import create_app

    case = make_case(tmp_path / "ws", portal={"registration_limit": "2 per hour"})
    cli = cli_runner_for(case)
    printed = cli("invite").output.splitlines()
    # The link alone on the first line, for scripts; then its WhatsApp share form.
    first = printed[0]
    assert first.startswith("http://127.0.0.1:8000/join/") and " " not in first
    assert len(printed) == 2 and printed[1].startswith("WhatsApp: https://wa.me/?text=")
    assert quote(first, safe="") in printed[1]
    assert cli("invite").output.splitlines() == printed  # stable until rotated
    whatsapp = cli("invite", "--whatsapp").output.splitlines()
    assert whatsapp == [printed[1].removeprefix("WhatsApp: ")]
    rotated = cli("invite", "--rotate").output.splitlines()[0]
    assert rotated.startswith("http://127.0.0.1:8000/join/") and rotated != first

    client = create_app(case.settings).test_client()
    old_path, new_path = (
        first[len("http://127.0.0.1:8000") :],
        rotated[len("http://127.0.0.1:8000") :],
    )
    assert client.get(old_path).status_code == 404
    page = client.get(new_path)
    assert page.status_code == 200
    csrf = text_of(page).split('name="csrf_token" value="')[1].split('"')[0]
    for number in range(2):
        response = client.post(
            new_path,
            data={
                "csrf_token": csrf,
                "name": f"Client {number}",
                "email": f"c{number}@example.com",
                "language": "en",
            },
        )
        assert response.status_code == 200
    blocked = client.post(
        new_path,
        data={
            "csrf_token": csrf,
            "name": "Client 3",
            "email": "c3@example.com",
            "language": "en",
        },
    )
    assert blocked.status_code == 429


def test_invites_can_be_turned_off(tmp_path):
    from monthlydocs.web import create_app

    case = make_case(tmp_path / "ws", portal={"self_registration": False})
    db = case.db()
    token = core.invite_token(db, case.settings.firm.secret_key)
    db.close()
    assert (
        create_app(case.settings).test_client().get(f"/join/{token}").status_code == 404
    )


def test_api_tokens_are_masked_in_logs():
    line = "GET /api/v1/clients?token=mdk_AbCdEfGhIjKlMnOpQrStUvWxYz012345 400"
    masked = mask_tokens(line)
    assert "AbCdEfGhIjKl" not in masked and "mdk_AbCd…" in masked


def test_unknown_link_answers_alike_with_or_without_a_csrf_token(portal, case):
    bad = "B" * 32
    item = case.item_ids[0]
    for headers in (
        {},
        {"Accept-Language": "de"},
        {"X-Requested-With": "XMLHttpRequest"},
    ):
        shown = portal.http.get(f"/c/{bad}", headers=headers)
        assert shown.status_code == 404
        for action in (
            f"/items/{item}/upload",
            f"/items/{item}/not-applicable",
            f"/items/{item}/undo",
            "/documents/1/remove",
        ):
            posted = portal.http.post(f"/c/{bad}{action}", headers=headers)
            assert posted.status_code == 404, action
            assert posted.get_data() == shown.get_data(), action
    # The same for the invite link.
    shown = portal.http.get(f"/join/{bad}")
    posted = portal.http.post(f"/join/{bad}", data={"name": "X"})
    assert (posted.status_code, posted.get_data()) == (404, shown.get_data())


def test_posts_without_a_csrf_token_count_against_the_failed_lookup_limit(tmp_path):
    from monthlydocs.web import create_app

    case = make_case(tmp_path / "ws", portal={"failed_link_limit": "3 per hour"})
    client = create_app(case.settings).test_client()
    item = case.item_ids[0]
    for attempt in range(3):
        posted = client.post(f"/c/guess{attempt:04d}xyz/items/{item}/not-applicable")
        assert posted.status_code == 404
    blocked = client.post(f"/c/guess9999xyz/items/{item}/upload")
    assert blocked.status_code == 429
    assert client.post("/join/guess9999xyz").status_code == 429
    assert client.get(f"/c/{case.token}").status_code == 429


def test_every_form_on_a_good_link_needs_its_csrf_token(portal, case, app):
    """Each portal POST, the ones that check their token after the lookup included."""
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    document_id = case.documents()[0]["id"]
    db = case.db()
    invite = core.invite_token(db, case.settings.firm.secret_key)
    db.close()
    values = {
        "token": case.token,
        "item_id": case.item_ids[1],
        "document_id": document_id,
    }
    posts = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("portal.") and "POST" in rule.methods
    ]
    assert {rule.endpoint for rule in posts} >= {
        "portal.upload",
        "portal.not_applicable",
        "portal.undo",
        "portal.remove",
        "portal.join",
    }
    for rule in posts:
        arguments = {name: values[name] for name in rule.arguments}
        if rule.endpoint == "portal.join":
            arguments["token"] = invite
        path = rule.build(arguments)[1]
        for form in ({}, {"csrf_token": "forged"}):
            response = portal.http.post(
                path,
                data={
                    **form,
                    "reason": "x",
                    "name": "X",
                    "email": "x@example.com",
                    "language": "en",
                },
            )
            assert response.status_code == 400, (rule.endpoint, form)
    # Nothing changed: the file is still there, no slot was marked, nobody registered.
    assert len(case.documents()) == 1
    assert [item["state"] for item in case.items()] == [
        "received",
        "to_send",
        "to_send",
    ]
    db = case.db()
    assert db.execute("SELECT count(*) FROM clients").fetchone()[0] == 1
    db.close()


def test_good_link_without_a_csrf_token_gets_its_page_with_a_message(portal, case):
    response = portal.http.post(
        f"{portal.url}/items/{case.item_ids[1]}/not-applicable",
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 400
    page = text_of(response)
    assert "Documents de Boulangerie Dupont" in page  # the client's language, French
    assert "Cette page est restée ouverte longtemps" in page
    assert f'href="/c/{case.token}?lang=de"' in page  # language links stay on the page
