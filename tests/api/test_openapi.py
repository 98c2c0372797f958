"""The OpenAPI document: in step with the routes, and true of every answer."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from monthlydocs import tokens
from monthlydocs.timeutil import iso
from monthlydocs.web.openapi import spec

from .conftest import NOW

METHODS = {"get", "post", "patch", "put", "delete"}
# Examples per operation: as many as keep the whole module near a minute.
MAX_EXAMPLES = 150


def routes_in_the_app(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] != "api":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method.lower(), path))
    return found


def routes_in_the_document() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, operations in spec()["paths"].items()
        for method in operations
        if method in METHODS
    }


def test_every_route_is_documented_and_every_documented_route_exists(app):
    in_app, documented = routes_in_the_app(app), routes_in_the_document()
    assert len(in_app) >= 20
    assert in_app - documented == set(), "routes missing from openapi.py"
    assert documented - in_app == set(), "documented routes that do not exist"


def test_path_parameters_are_declared(app):
    for path, operations in spec()["paths"].items():
        names = set(re.findall(r"{([a-z_]+)}", path))
        for method, operation in operations.items():
            declared = {
                p["name"] for p in operation.get("parameters", []) if p["in"] == "path"
            }
            assert declared == names, (method, path)


def test_the_document_is_served_to_a_token_holder(api):
    response = api.get("/openapi.json")
    assert response.status_code == 200
    assert response.get_json() == spec()
    assert response.get_json()["openapi"].startswith("3.1")


# Cases are partly generated while pytest collects, before any workspace exists, so the
# token is one the test knows in advance and plants in each workspace.
TOKEN = "mdk_" + "schemathesis-" * 3


@pytest.fixture
def served(app, db):
    """The app as production runs it (errors are answers, not exceptions), with a
    rate limit no generated burst reaches, and a token row for TOKEN."""
    app.config["TESTING"] = False
    app.config["MONTHLYDOCS_API_RATE_LIMIT"] = "100000 per minute"
    db.execute(
        "INSERT INTO api_tokens (name, prefix, token_hash, read_only, created_at)"
        " VALUES ('schemathesis', ?, ?, 0, ?)",
        [TOKEN[: tokens.SHOWN_CHARS], tokens.token_digest(TOKEN), iso(NOW)],
    )
    db.conn.commit()
    return app


# Loaded from the module's own document; the test sends each case to a fresh app.
schema = schemathesis.openapi.from_dict(spec())


# The token goes through Schemathesis's auth, not into every request's headers: a
# negative case that leaves Authorization out must reach the app without it, and be
# refused (with the headers passed to the call, it went in regardless).
@schema.auth(refresh_interval=None, retry_on=[])
class BearerToken:
    def get(self, case, context):
        return TOKEN

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_answer_matches_the_document(case, served):
    # The checks' own probes (a request without the token, ...) go to the app too.
    case.operation.schema.app = served
    response = case.call_and_validate(
        app=served,
        # A schema cannot say which emails, phone numbers or template slugs the core
        # accepts, nor that an Idempotency-Key Hypothesis reuses with another body is
        # refused: a schema-valid body may rightly get a 422 naming the field.
        excluded_checks=[positive_data_acceptance],
    )
    # Else every case would be a 401 that the document allows, and prove nothing.
    if (case.headers or {}).get("Authorization") == f"Bearer {TOKEN}":
        assert response.status_code != 401, "the planted token was refused"
