"""Every error is application/problem+json (RFC 9457), never the portal's HTML."""

from __future__ import annotations

from .conftest import assert_problem


def test_a_problem_has_the_rfc_9457_members(api):
    response = api.get("/clients/999")
    problem = assert_problem(response, 404, "not-found")
    assert problem == {
        "type": "urn:monthlydocs:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": "No client #999",
        "instance": "/api/v1/clients/999",
    }


def test_unknown_paths_and_methods_under_the_api(api):
    problem = assert_problem(api.get("/invoices"), 404, "not-found")
    assert "openapi.json" in problem["detail"]
    assert_problem(api.get("/api/v2/clients"), 404, "not-found")
    assert_problem(api.as_token(None).get("/api/v1/nothing/here"), 404, "not-found")
    # Ids that are not positive or too large for SQLite match no route.
    for bad in ("0", "-3", str(2**63), "abc"):
        assert_problem(api.get(f"/clients/{bad}"), 404, "not-found")

    response = api.request("DELETE", "/clients/1")
    problem = assert_problem(response, 405, "method-not-allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "PATCH"} <= allowed and "DELETE" not in allowed
    assert "DELETE is not allowed" in problem["detail"]


def test_bodies_that_are_not_a_json_object(api):
    assert_problem(
        api.post(
            "/clients", data="name=A", content_type="application/x-www-form-urlencoded"
        ),
        415,
        "unsupported-media-type",
    )
    assert_problem(
        api.post("/clients", data="{not json", content_type="application/json"),
        400,
        "invalid-json",
    )
    assert_problem(
        api.post("/clients", json=["a", "b"]), 422, "validation", **{"#": "object"}
    )


def test_every_field_error_is_reported_at_once(api):
    problem = assert_problem(
        api.post("/clients", json={"name": 1, "email": None, "extra": True}),
        422,
        "validation",
        **{"#/name": "string", "#/email": "null", "#/extra": "unknown field"},
    )
    assert len(problem["errors"]) == 3


def test_the_api_needs_no_csrf_token_but_the_portal_still_does(api, seed, db):
    assert (
        api.post("/clients", json={"name": "A", "email": "a@a.example"}).status_code
        == 201
    )
    token = db.execute("SELECT token FROM checklists LIMIT 1").fetchone()[0]
    portal = api.http.post(f"/c/{token}/items/1/not-applicable", data={"reason": "x"})
    assert portal.status_code == 400
    assert portal.mimetype == "text/html"


def test_the_portal_keeps_its_html_pages(api):
    response = api.http.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"
