"""Who may call the API: bearer tokens, stored hashed, revocable, read-only or not."""

from __future__ import annotations

import re

import pytest

from monthlydocs import tokens

from .conftest import NOW, assert_problem


def api_routes(app):
    """(method, path with ids filled in) for every API route, from the URL map."""
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<id:[a-z_]+>", "1", rule.rule).replace("<slug>", "monthly")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, path


def test_every_api_route_refuses_a_request_without_a_token(api):
    anonymous = api.as_token(None)
    routes = list(api_routes(api.http.application))
    assert len(routes) >= 20
    for method, path in routes:
        response = anonymous.request(method, path, json={})
        problem = assert_problem(response, 401, "unauthorized")
        assert "Authorization: Bearer" in problem["detail"], path
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="monthlydocs"'


def test_a_read_only_token_reads_but_every_write_is_refused(api, read_only_token, db):
    reader = api.as_token(read_only_token)
    routes = list(api_routes(api.http.application))
    writes = [(m, p) for m, p in routes if m != "GET"]
    assert len(writes) >= 10
    events_before = db.execute("SELECT count(*) FROM events").fetchone()[0]
    for method, path in writes:
        response = reader.request(method, path, json={"name": "x"})
        problem = assert_problem(response, 403, "read-only-token")
        assert "'reporting' is read-only" in problem["detail"]
    assert db.execute("SELECT count(*) FROM events").fetchone()[0] == events_before
    for method, path in routes:
        if method == "GET":
            assert reader.get(path).status_code in (200, 404), path
    assert reader.get("/clients").status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "mdk_abc", "Token mdk_abc"],
)
def test_an_authorization_header_that_is_not_a_bearer_token_is_refused(api, header):
    response = api.as_token(None).get("/clients", headers={"Authorization": header})
    problem = assert_problem(response, 401, "unauthorized")
    assert "Bearer <token>" in problem["detail"]


def test_an_unknown_token_is_refused(api):
    response = api.as_token("mdk_" + "x" * 43).get("/clients")
    problem = assert_problem(response, 401, "invalid-token")
    assert "unknown or was revoked" in problem["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_a_revoked_token_is_refused_at_once(api, db, token):
    assert api.get("/clients").status_code == 200
    tokens.revoke_token(db, "crm-sync", NOW)
    assert_problem(api.get("/clients"), 401, "invalid-token")
    assert_problem(api.post("/clients", json={}), 401, "invalid-token")


@pytest.mark.parametrize(
    "query",
    ["access_token={token}", "token={token}", "api_key=whatever", "q={token}"],
)
def test_a_token_in_the_query_string_is_refused_even_with_a_good_header(api, query):
    url = "/clients?" + query.format(token=api.token)
    problem = assert_problem(api.get(url), 400, "token-in-query")
    assert "revoke this token" in problem["detail"]
    # Without a header too: the URL is refused before anything else.
    assert_problem(api.as_token(None).get(url), 400, "token-in-query")


def test_tokens_are_stored_as_digests_and_shown_once(db):
    token_id, token = tokens.create_token(db, "zapier", NOW)
    assert token.startswith("mdk_") and len(token) > 40
    stored = db.execute("SELECT * FROM api_tokens WHERE id = ?", [token_id]).fetchone()
    assert token not in [str(value) for value in stored]
    row = db.execute(
        "SELECT token_hash, prefix FROM api_tokens WHERE id = ?", [token_id]
    ).fetchone()
    assert row[0] == tokens.token_digest(token)
    assert row[1] == token[:8]


def test_token_names_are_unique_among_live_tokens(db):
    tokens.create_token(db, "crm", NOW)
    with pytest.raises(tokens.MonthlydocsError, match="already exists"):
        tokens.create_token(db, "CRM", NOW)
    tokens.revoke_token(db, "crm", NOW)
    tokens.create_token(db, "crm", NOW)  # the name is free again
    with pytest.raises(tokens.MonthlydocsError, match="needs a name"):
        tokens.create_token(db, "  ", NOW)


def test_last_used_is_recorded_at_most_once_a_minute(api, db, clock):
    def last_used():
        return db.execute(
            "SELECT last_used_at FROM api_tokens WHERE name = 'crm-sync'"
        ).fetchone()[0]

    assert last_used() is None
    api.get("/clients")
    assert last_used() == "2026-12-01T09:00:00Z"
    clock.advance(seconds=30)
    api.get("/clients")
    assert last_used() == "2026-12-01T09:00:00Z"
    clock.advance(seconds=30)
    api.get("/clients")
    assert last_used() == "2026-12-01T09:01:00Z"


def test_writes_are_recorded_with_the_tokens_name(api, db):
    response = api.post(
        "/clients", json={"name": "Café Lumière", "email": "lea@lumiere.example"}
    )
    assert response.status_code == 201
    actor = db.execute(
        "SELECT actor FROM events WHERE action = 'client:created' ORDER BY id DESC"
    ).fetchone()[0]
    assert actor == "api:crm-sync"


def test_the_rate_limit_is_per_token(settings, seed, clock, db):
    from monthlydocs.web import create_app

    settings.values["api"] = {"rate_limit": "3 per hour"}
    app = create_app(settings, clock=clock)
    first = tokens.create_token(db, "first", NOW)[1]
    second = tokens.create_token(db, "second", NOW)[1]
    http = app.test_client()

    def get(token):
        return http.get("/api/v1/clients", headers={"Authorization": f"Bearer {token}"})

    assert [get(first).status_code for _ in range(3)] == [200, 200, 200]
    response = get(first)
    problem = assert_problem(response, 429, "rate-limited")
    assert "3 per hour" in problem["detail"]
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    assert get(second).status_code == 200


def test_made_up_tokens_share_their_address_bucket(settings, seed, clock, db):
    import secrets

    from monthlydocs.web import create_app

    settings.values["api"] = {"rate_limit": "3 per hour"}
    app = create_app(settings, clock=clock)
    good = tokens.create_token(db, "good", NOW)[1]
    http = app.test_client()

    def get(token=None, address="192.0.2.1"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return http.get(
            "/api/v1/clients",
            headers=headers,
            environ_base={"REMOTE_ADDR": address},
        )

    guesses = [get("mdk_" + secrets.token_urlsafe(32)).status_code for _ in range(8)]
    assert guesses == [401, 401, 401] + [429] * 5
    problem = assert_problem(get(), 429, "rate-limited")  # no token: same bucket
    assert "without a valid token" in problem["detail"]
    # A revoked token is no better than a made-up one.
    revoked = tokens.create_token(db, "old", NOW)[1]
    tokens.revoke_token(db, "old", NOW)
    assert get(revoked).status_code == 429
    # The guesses cost the real token nothing, even from the same address...
    assert [get(good).status_code for _ in range(3)] == [200, 200, 200]
    assert get(good).status_code == 429
    # ...and another address still gets its own answers.
    assert get("mdk_nope", address="192.0.2.2").status_code == 401
