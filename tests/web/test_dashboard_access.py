"""Who gets in: every route refuses strangers, sign-in and out, cookies, CSRF, limits,
sessions that end, and the language of the pages."""

from __future__ import annotations

import re

import pytest
from werkzeug.routing import IntegerConverter

from monthlydocs.web import create_app

from .conftest import make_case
from .dashboard_kit import (  # noqa: F401 (fixtures)
    EMAIL,
    PASSWORD,
    Staff,
    add_staff,
    anonymous_fixture,
    staff_fixture,
    text_of,
    use_cheap_hasher,
)


def _example_url(rule) -> str:
    values = {
        name: 1 if isinstance(converter, IntegerConverter) else "x"
        for name, converter in rule._converters.items()
    }
    return rule.build(values)[1]


def test_every_dashboard_and_api_route_refuses_an_anonymous_request(app, anonymous):
    """Walks the URL map, so a route added later cannot forget the login."""
    checked = []
    # A valid CSRF token, so that only the missing login can be what refuses a POST.
    token = anonymous.csrf()
    for rule in app.url_map.iter_rules():
        dashboard = rule.endpoint.startswith("dashboard.")
        api = rule.rule.startswith("/api")
        if not (dashboard or api) or rule.endpoint == "dashboard.login":
            continue
        url = _example_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            data = {"csrf_token": token} if method != "GET" else None
            response = anonymous.http.open(url, method=method, data=data)
            checked.append((method, rule.rule))
            if api:
                assert response.status_code == 401, (method, url)
            elif rule.endpoint == "dashboard.live":
                assert response.status_code == 401, (method, url)
                assert response.get_json()["ok"] is False
            else:
                assert response.status_code == 303, (method, url)
                assert response.headers["Location"].startswith("/dashboard/login")
    # The walk found the dashboard (and would find the API once it is there).
    assert ("GET", "/dashboard/") in checked
    assert ("POST", "/dashboard/documents/<int:document_id>/reject") in checked
    assert len([c for c in checked if "/dashboard" in c[1]]) >= 30


def test_json_requests_get_401_instead_of_a_redirect(anonymous):
    response = anonymous.get("/dashboard/", headers={"X-Requested-With": "XMLHttpRequest"})
    assert response.status_code == 401
    assert response.get_json()["ok"] is False


def test_sign_in_goes_back_to_the_page_asked_for_then_sign_out(anonymous, case):
    add_staff(case)
    asked = anonymous.get("/dashboard/clients?status=pending")
    assert asked.headers["Location"] == "/dashboard/login?next=/dashboard/clients?status%3Dpending"
    page = text_of(anonymous.get(asked.headers["Location"]))
    assert 'name="next" value="/dashboard/clients?status=pending"' in page

    signed = anonymous.login(next="/dashboard/clients?status=pending")
    assert signed.status_code == 303
    assert signed.headers["Location"] == "/dashboard/clients?status=pending"
    assert anonymous.get("/dashboard/").status_code == 200
    # Signed in, the login page sends on to the dashboard.
    assert anonymous.get("/dashboard/login").status_code == 303

    out = anonymous.post("/dashboard/logout")
    assert out.status_code == 303 and out.headers["Location"] == "/dashboard/login"
    assert anonymous.get("/dashboard/").status_code == 303


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/dashboard/", "/c/abc", "/dashboard\\@x",
    "javascript:alert(1)",
])
def test_sign_in_never_redirects_off_the_dashboard(anonymous, case, target):
    add_staff(case)
    response = anonymous.login(next=target)
    assert response.headers["Location"] == "/dashboard/"


def test_wrong_password_and_unknown_email_get_the_same_answer(anonymous, case):
    add_staff(case)
    wrong = anonymous.login(password="not the password")
    unknown = anonymous.login(email="nobody@martin.example")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Wrong email or password." in text_of(response)
    assert anonymous.get("/dashboard/").status_code == 303
    assert 'value="nobody@martin.example"' in text_of(unknown)  # kept for retyping


def test_session_cookie_is_http_only_and_same_site(anonymous, case):
    add_staff(case)
    response = anonymous.login()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("monthlydocs_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http://127.0.0.1: a Secure cookie would be lost


def test_session_cookie_is_secure_behind_https(tmp_path, clock):
    case = make_case(tmp_path / "https", portal={"base_url": "https://docs.example"})
    app = create_app(case.settings, clock=clock)
    use_cheap_hasher(app)
    add_staff(case)
    response = Staff(app.test_client()).login()
    assert "Secure" in response.headers["Set-Cookie"]


def test_every_form_needs_its_csrf_token(anonymous, staff, case):
    add_staff(case, email="bob@martin.example")
    refused = anonymous.http.post("/dashboard/login", data={
        "email": "bob@martin.example", "password": PASSWORD})
    assert refused.status_code == 400
    assert anonymous.get("/dashboard/").status_code == 303

    forged = staff.http.post(f"/dashboard/checklists/{case.checklist_id}/rotate")
    assert forged.status_code == 400
    assert case.checklist()["token"] == case.token
    page = text_of(staff.get(f"/dashboard/checklists/{case.checklist_id}"))
    forms = re.findall(r'<form method="post"[^>]*>\s*<input type="hidden" '
                       r'name="csrf_token"', page)
    assert len(forms) == page.count('<form method="post"') >= 5


def test_failed_sign_ins_are_limited_per_address(anonymous, case):
    add_staff(case)
    for _ in range(10):
        assert anonymous.login(password="guess").status_code == 401
    assert anonymous.login(password="guess").status_code == 429
    # Even the right password waits: the address is blocked for the minute.
    assert anonymous.login().status_code == 429


def test_a_successful_sign_in_does_not_count(app, case):
    use_cheap_hasher(app)
    add_staff(case)
    for _ in range(12):
        browser = Staff(app.test_client())
        assert browser.login().status_code == 303


def test_a_session_ends_after_a_working_day(staff, clock):
    assert staff.get("/dashboard/").status_code == 200
    clock.advance(hours=11, minutes=59)
    assert staff.get("/dashboard/").status_code == 200
    clock.advance(minutes=2)
    assert staff.get("/dashboard/").status_code == 303


def test_removing_the_user_or_changing_the_password_ends_their_sessions(staff, case):
    from monthlydocs.users import remove_user

    assert staff.get("/dashboard/").status_code == 200
    db = case.db()
    db.execute("UPDATE users SET password_hash = password_hash || 'x' WHERE email = ?",
               [EMAIL])
    db.close()
    assert staff.get("/dashboard/").status_code == 303

    db = case.db()
    remove_user(db, EMAIL)
    db.close()
    assert staff.get("/dashboard/").status_code == 303


def test_pages_follow_the_browser_language_then_the_users_own(app, case):
    use_cheap_hasher(app)
    login = app.test_client().get("/dashboard/login",
                                  headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert "Beim Dashboard anmelden" in text_of(login)

    add_staff(case)
    browser = Staff(app.test_client())
    browser.login()
    french = browser.get("/dashboard/", headers={"Accept-Language": "fr-FR"})
    assert '<html lang="fr">' in text_of(french)
    assert "Vue d’ensemble" in text_of(french)

    add_staff(case, email="sari@martin.example", language="id")
    indonesian = Staff(app.test_client())
    indonesian.login(email="sari@martin.example")
    page = indonesian.get("/dashboard/", headers={"Accept-Language": "fr-FR"})
    assert '<html lang="id">' in text_of(page)
    assert "Ringkasan" in text_of(page)


def test_the_portal_language_choice_does_not_follow_staff_into_the_dashboard(app, case):
    use_cheap_hasher(app)
    add_staff(case)
    browser = Staff(app.test_client())
    browser.login()
    # Looking at a client's page in German leaves the portal's language cookie behind.
    browser.get("/?lang=de")
    assert browser.http.get_cookie("lang").value == "de"
    page = browser.get("/dashboard/?lang=de", headers={"Accept-Language": "es-ES"})
    assert '<html lang="es">' in text_of(page)
    assert browser.http.get_cookie("lang").value == "de"  # the portal keeps its own


def test_staff_choose_their_own_language_on_the_dashboard(app, case):
    use_cheap_hasher(app)
    add_staff(case)
    browser = Staff(app.test_client())
    browser.login()
    french = {"Accept-Language": "fr-FR"}
    page = text_of(browser.get("/dashboard/clients", headers=french))
    assert '<html lang="fr">' in page and 'name="language"' in page

    chosen = browser.post("/dashboard/language",
                          {"language": "de", "next": "/dashboard/clients"},
                          csrf_from="/dashboard/clients", headers=french)
    assert chosen.status_code == 303
    assert chosen.headers["Location"] == "/dashboard/clients"
    german = text_of(browser.get("/dashboard/clients", headers=french))
    assert '<html lang="de">' in german and "Sprache gespeichert." in german
    assert '<option value="de" selected>' in german

    # "Same as the browser" clears the setting; elsewhere is refused.
    browser.post("/dashboard/language", {"language": "", "next": "//evil.example/"},
                 headers=french)
    assert '<html lang="fr">' in text_of(browser.get("/dashboard/", headers=french))
    db = case.db()
    try:
        assert db.execute("SELECT language FROM users").fetchone() == (None,)
    finally:
        db.close()
    refused = browser.post("/dashboard/language", {"language": "klingon"},
                           headers=french)
    assert refused.status_code == 400
    assert "Choisissez une langue dans la liste." in text_of(refused)
