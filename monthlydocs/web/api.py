"""The JSON API under /api/v1, for practice-management software, CRMs and automations.

Every request carries a bearer token (``monthlydocs token create``); a read-only token
may only read. Each view checks its input, makes one call into the core and shapes the
answer. Errors are ``application/problem+json`` (RFC 9457): ``STATUS`` below is the one
place where the core's exceptions become HTTP statuses, and ``errors`` in a problem names
each field at fault with a JSON pointer (``#/email``) or a query ``parameter``.

Lists are keyset pages (``limit`` and an opaque ``cursor``); POSTs honour an
``Idempotency-Key`` header, whose first answer is stored and replayed for 24 hours.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, g, request, send_file
from werkzeug.exceptions import HTTPException, MethodNotAllowed, default_exceptions
from werkzeug.routing import IntegerConverter

from .. import checklists, clients, paging, review, templates, tokens, webhooks
from ..config import LANGUAGES
from ..db import write_transaction
from ..errors import (
    ChecklistNotFound,
    ClientNotFound,
    DuplicateClient,
    InvalidEmail,
    InvalidLanguage,
    InvalidPeriod,
    InvalidPhone,
    ItemLocked,
    MonthlydocsError,
    TemplateNotFound,
)
from ..events import Event
from ..timeutil import local_date
from . import get_db, get_settings, now

PREFIX = "/api/v1"
PROBLEM_TYPE = "urn:monthlydocs:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"
DEFAULT_RATE_LIMIT = "300 per minute"
RATE_LIMIT_CONFIG = "MONTHLYDOCS_API_RATE_LIMIT"
MAX_ID = 2**63 - 1  # SQLite's largest integer
PAGE_SIZE, MAX_PAGE_SIZE = 50, 200
EVENT_PAGE_SIZE, MAX_EVENT_PAGE_SIZE = 100, 1000
MAX_BULK = 1000
MAX_IDEMPOTENCY_KEY = 255
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Query parameters a token is commonly (and wrongly) sent in.
TOKEN_PARAMETERS = ("access_token", "token", "api_key", "apikey", "key", "bearer")
CLIENT_STATUSES = ("active", "pending", "archived")

bp = Blueprint("api", __name__, url_prefix=PREFIX)

TITLES = {
    "unauthorized": "Authentication required",
    "invalid-token": "Invalid token",
    "token-in-query": "Token sent in the URL",
    "read-only-token": "Read-only token",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "invalid-request": "Invalid request",
    "invalid-json": "Invalid JSON",
    "unsupported-media-type": "Unsupported media type",
    "validation": "Invalid field",
    "unprocessable": "Request refused",
    "conflict": "Conflict",
    "idempotency-key-reused": "Idempotency key reused",
    "idempotency-key-in-progress": "Idempotency key in use",
    "rate-limited": "Too many requests",
    "too-large": "Request too large",
    "server-error": "Server error",
}

# The core's exceptions as HTTP: the first class the exception is an instance of wins.
STATUS: list[tuple[type[Exception], int, str]] = [
    (tokens.InvalidToken, 401, "invalid-token"),
    (ClientNotFound, 404, "not-found"),
    (TemplateNotFound, 404, "not-found"),
    (ChecklistNotFound, 404, "not-found"),
    (review.DocumentNotFound, 404, "not-found"),
    (DuplicateClient, 409, "conflict"),
    (ItemLocked, 409, "conflict"),
    (tokens.IdempotencyKeyInProgress, 409, "idempotency-key-in-progress"),
    (tokens.IdempotencyKeyReused, 422, "idempotency-key-reused"),
    (MonthlydocsError, 422, "unprocessable"),
]
# Core exceptions that always concern one field of the request body.
FIELD_OF: dict[type[Exception], str] = {
    InvalidEmail: "email",
    DuplicateClient: "email",
    InvalidPhone: "phone",
    InvalidLanguage: "language",
    InvalidPeriod: "period",
}


class Problem(Exception):
    """An error answer; ``errors`` items name a ``pointer``, ``parameter`` or ``header``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.errors = errors or []
        self.headers = headers or {}


class IdConverter(IntegerConverter):
    """Positive ids SQLite can hold; anything else does not match the route (404)."""

    def __init__(self, url_map, *args, **kwargs):
        super().__init__(url_map, min=1, max=MAX_ID)


def init_app(app: Flask) -> None:
    """Register the API on the app: after CSRFProtect and the portal's limiter."""
    settings = app.extensions["monthlydocs.settings"]
    api_settings = settings.values.get("api") or {}
    app.config[RATE_LIMIT_CONFIG] = api_settings.get("rate_limit", DEFAULT_RATE_LIMIT)
    app.url_map.converters["id"] = IdConverter
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        # Bearer tokens are not sent by browsers on their own: no CSRF to guard against.
        csrf.exempt(bp)
    limiter = app.extensions.get("monthlydocs.limiter")
    if limiter is not None:
        limiter.shared_limit(
            lambda: current_app.config[RATE_LIMIT_CONFIG],
            scope="api",
            key_func=_rate_key,
        )(bp)
    app.before_request(_unrouted)
    app.register_blueprint(bp)


def _rate_key() -> str:
    """A live token has a bucket of its own; anything else counts against the address.

    The limiter runs before the views, so the token is looked up here (once per
    request). Keying on whatever token is presented would give each made-up token a
    fresh bucket, and guessing would never be slowed down.
    """
    row = _known_token()
    if row is not None:
        return f"token:{row['id']}"
    return "address:" + (request.remote_addr or "")


def _known_token() -> dict[str, Any] | None:
    """The live token row the request presents, or None: looked up once per request."""
    if "api_token_row" not in g:
        token, row = _bearer(), None
        if token is not None:
            try:
                row = tokens.authenticate(get_db(), token, now())
            except tokens.InvalidToken:
                row = None
        g.api_token_row = row
    return g.api_token_row


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# -- answers -----------------------------------------------------------------------------


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None):
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status, headers, mimetype="application/json")


def _problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.code,
        "title": TITLES[problem.code],
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return Response(
        json.dumps(body, ensure_ascii=False),
        problem.status,
        problem.headers,
        mimetype=PROBLEM_MEDIA_TYPE,
    )


@bp.errorhandler(Problem)
def _on_problem(problem: Problem):
    return _problem_response(problem)


@bp.errorhandler(MonthlydocsError)
def _on_core_error(exc: MonthlydocsError):
    return _problem_response(problem_for(exc))


def problem_for(exc: Exception, pointer: str = "#") -> Problem:
    """The problem a core exception becomes; field errors are placed under ``pointer``."""
    status, code = next(
        ((status, code) for kind, status, code in STATUS if isinstance(exc, kind)),
        (500, "server-error"),
    )
    field = next((f for kind, f in FIELD_OF.items() if isinstance(exc, kind)), None)
    errors = [{"pointer": f"{pointer}/{field}", "detail": str(exc)}] if field else []
    if field and status == 422:
        code = "validation"
    return Problem(status, code, str(exc), errors=errors)


def _on_http_error(exc: HTTPException):
    code = exc.code or 500
    if code == 429:
        return _problem_response(_rate_limited())
    if code == 500:
        # Flask has logged the exception with its traceback already.
        return _problem_response(
            Problem(
                500,
                "server-error",
                "Something went wrong on our side and was logged: retry later, "
                "with the same Idempotency-Key.",
            )
        )
    return _problem_response(_http_problem(exc))


for _code in default_exceptions:
    # Code-specific handlers, so that the app's HTML error pages never answer the API.
    bp.register_error_handler(_code, _on_http_error)


def _http_problem(exc: HTTPException) -> Problem:
    code = exc.code or 400
    headers = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    kind = {
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
        415: "unsupported-media-type",
    }.get(code, "invalid-request")
    detail = {
        404: f"Nothing at {request.path}: see {PREFIX}/openapi.json for the routes",
        405: f"{request.method} is not allowed here; allowed: {headers.get('Allow')}",
        413: "The request body is too large",
    }.get(code, exc.description or "The request could not be understood")
    return Problem(code, kind, detail, headers=headers)


def _rate_limited() -> Problem:
    headers = {}
    limiter = current_app.extensions.get("monthlydocs.limiter")
    current = limiter.current_limit if limiter is not None else None
    if current is not None:
        headers["Retry-After"] = str(max(1, int(current.reset_at - time.time())))
    # Unknown and missing tokens share their address's bucket (see _rate_key).
    who = (
        "This token"
        if g.get("api_token_row")
        else "This address, without a valid token,"
    )
    return Problem(
        429,
        "rate-limited",
        f"{who} sent more than {current_app.config[RATE_LIMIT_CONFIG]} requests: "
        "wait until Retry-After seconds have passed",
        headers=headers,
    )


def _unrouted():
    """Unknown paths and methods under /api/ get problems, not the portal's pages."""
    exc = request.routing_exception
    if exc is None or not request.path.startswith("/api/"):
        return None
    if isinstance(exc, HTTPException) and exc.code in (404, 405):
        return _problem_response(_http_problem(exc))
    return None


# -- authentication, idempotency ------------------------------------------------------------


@bp.before_request
def _authenticate():
    _refuse_token_in_query()
    _refuse_unknown_parameters()
    header = request.headers.get("Authorization")
    challenge = 'Bearer realm="monthlydocs"'
    if not header:
        raise Problem(
            401,
            "unauthorized",
            "Send an API token in the Authorization header: 'Authorization: Bearer "
            "mdk_...'. Create one with `monthlydocs token create --name NAME`.",
            headers={"WWW-Authenticate": challenge},
        )
    token = _bearer()
    if token is None:
        raise Problem(
            401,
            "unauthorized",
            "The Authorization header must read 'Bearer <token>'",
            headers={"WWW-Authenticate": challenge},
        )
    row = _known_token()
    if row is None:
        raise Problem(
            401,
            "invalid-token",
            "This token is unknown or was revoked: see `monthlydocs token list`",
            headers={"WWW-Authenticate": challenge + ', error="invalid_token"'},
        )
    g.api_token = row
    if request.method not in SAFE_METHODS and row["read_only"]:
        raise Problem(
            403,
            "read-only-token",
            f"The token {row['name']!r} is read-only: {request.method} needs a token "
            "created without --read-only",
        )
    return _begin_idempotency(row)


def _refuse_token_in_query() -> None:
    for name, value in request.args.items(multi=True):
        if name.lower() in TOKEN_PARAMETERS or value.startswith(tokens.TOKEN_PREFIX):
            raise Problem(
                400,
                "token-in-query",
                "Tokens must not travel in the URL, where proxies and servers log "
                "them: send 'Authorization: Bearer <token>' instead, and revoke this "
                "token (`monthlydocs token revoke`) since it may have been logged.",
                errors=[{"parameter": name, "detail": "looks like a token"}],
            )


def _refuse_unknown_parameters() -> None:
    # A misspelt filter (?stauts=archived) must not silently list everything.
    from .openapi import query_parameters

    method = "GET" if request.method == "HEAD" else request.method
    known = query_parameters(request.url_rule.rule, method)
    for name in request.args:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise _bad_parameter(name, f"is not a parameter here (known: {listed})")


def _begin_idempotency(token: dict[str, Any]):
    key = request.headers.get("Idempotency-Key")
    if key is None or request.method != "POST":
        return None
    printable = all(" " <= char <= "~" for char in key)
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not printable:
        raise Problem(
            400,
            "invalid-request",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII "
            "characters, like a UUID",
            errors=[{"header": "Idempotency-Key", "detail": "invalid"}],
        )
    digest = tokens.request_digest(
        request.method, request.full_path.rstrip("?"), request.get_data()
    )
    stored = tokens.begin_idempotent(get_db(), token["id"], key, digest, now())
    if stored is not None:
        response = Response(
            stored.body, stored.status, content_type=stored.content_type
        )
        response.headers["Idempotent-Replayed"] = "true"
        if stored.location:
            response.headers["Location"] = stored.location
        return response
    g.idempotency_key = key
    return None


@bp.after_request
def _finish_idempotency(response: Response) -> Response:
    key = g.pop("idempotency_key", None)
    if key is None:
        return response
    db, token_id = get_db(), g.api_token["id"]
    if response.status_code >= 500:
        tokens.abandon_idempotent(db, token_id, key)
    else:
        tokens.finish_idempotent(
            db,
            token_id,
            key,
            tokens.StoredResponse(
                response.status_code,
                response.content_type or "application/json",
                response.get_data(),
                response.headers.get("Location"),
            ),
        )
    return response


# -- reading requests -------------------------------------------------------------------------

_MISSING: Any = object()


def _body() -> dict[str, Any]:
    if not request.is_json:
        raise Problem(
            415,
            "unsupported-media-type",
            "Send a JSON object with 'Content-Type: application/json'",
        )
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "invalid-json", "The body is not valid JSON")
    if not isinstance(data, dict):
        raise Problem(
            422,
            "validation",
            "The body must be a JSON object",
            errors=[{"pointer": "#", "detail": "must be an object"}],
        )
    return data


class Fields:
    """Reads and type-checks a JSON object's members, collecting every error."""

    def __init__(self, data: dict[str, Any], pointer: str = "#"):
        self.data, self.pointer = data, pointer
        self.errors: list[dict[str, str]] = []

    def error(self, name: str, detail: str) -> None:
        self.errors.append({"pointer": f"{self.pointer}/{name}", "detail": detail})

    def only(self, *names: str) -> None:
        for name in self.data:
            if name not in names:
                self.error(name, f"unknown field; expected one of {', '.join(names)}")

    def _get(self, name: str, required: bool, nullable: bool) -> Any:
        if name not in self.data:
            if required:
                self.error(name, "is required")
            return _MISSING
        value = self.data[name]
        if value is None and not nullable:
            self.error(name, "cannot be null")
            return _MISSING
        return value

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        nullable: bool = False,
        max_length: int = 200,
        blank: bool = False,
    ) -> Any:
        value = self._get(name, required, nullable)
        if value is _MISSING or value is None:
            return value
        if not isinstance(value, str):
            self.error(name, "must be a string")
            return _MISSING
        if len(value) > max_length:
            self.error(name, f"must be at most {max_length} characters")
            return _MISSING
        if not blank and not value.strip():
            self.error(name, "cannot be blank")
            return _MISSING
        return value

    def boolean(self, name: str) -> Any:
        value = self._get(name, False, False)
        if value is not _MISSING and not isinstance(value, bool):
            self.error(name, "must be true or false")
            return _MISSING
        return value

    def integer(self, name: str, minimum: int, maximum: int) -> Any:
        value = self._get(name, False, False)
        if value is _MISSING:
            return value
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(name, "must be a whole number")
            return _MISSING
        if not minimum <= value <= maximum:
            self.error(name, f"must be between {minimum} and {maximum}")
            return _MISSING
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> Any:
        value = self.text(name)
        if isinstance(value, str) and value not in choices:
            self.error(name, f"must be one of {', '.join(choices)}")
            return _MISSING
        return value

    def day(self, name: str) -> Any:
        value = self.text(name, nullable=True, max_length=10)
        if not isinstance(value, str):
            return value
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.error(name, "must be a date like 2026-12-10")
            return _MISSING

    def array(self, name: str, *, required: bool = False, most: int = 1000) -> Any:
        value = self._get(name, required, False)
        if value is _MISSING:
            return value
        if not isinstance(value, list):
            self.error(name, "must be an array")
            return _MISSING
        if len(value) > most:
            self.error(name, f"must hold at most {most} items")
            return _MISSING
        return value

    def check(self) -> None:
        if self.errors:
            raise Problem(
                422,
                "validation",
                "; ".join(f"{e['pointer']} {e['detail']}" for e in self.errors[:5]),
                errors=self.errors,
            )


def _int_arg(name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise _bad_parameter(
            name, f"must be a whole number from {minimum} to {maximum}"
        )
    return value


def _choice_arg(name: str, choices: tuple[str, ...]) -> str | None:
    value = request.args.get(name)
    if value is not None and value not in choices:
        raise _bad_parameter(name, f"must be one of {', '.join(choices)}")
    return value


def _bad_parameter(name: str, detail: str) -> Problem:
    return Problem(
        400,
        "invalid-request",
        f"Query parameter {name!r} {detail}",
        errors=[{"parameter": name, "detail": detail}],
    )


def _after(kind: str) -> int:
    """The id a page starts after, from its opaque ``cursor``."""
    raw = request.args.get("cursor")
    if not raw:
        return 0
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        cursor_kind, _, after = decoded.partition(":")
        value = int(after)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        cursor_kind, value = "", -1
    if cursor_kind != kind or not 0 <= value <= MAX_ID:
        raise _bad_parameter(
            "cursor", "is not a cursor this list gave; start again without it"
        )
    return value


def _cursor(kind: str, after: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def _page(kind: str, page: paging.Page, shape: Callable[[dict], Any]):
    next_cursor = None
    headers = {}
    if page.next_after is not None:
        next_cursor = _cursor(kind, page.next_after)
        args = {**request.args.to_dict(), "cursor": next_cursor}
        headers["Link"] = f'<{request.path}?{urlencode(args)}>; rel="next"'
    return _json(
        {"data": [shape(row) for row in page.rows], "next_cursor": next_cursor},
        headers=headers,
    )


def _actor() -> str:
    return f"api:{g.api_token['name']}"


def _today() -> date:
    return local_date(now(), get_settings().firm.timezone)


# -- shapes -----------------------------------------------------------------------------------


def client_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "language": row["language"],
        "notes": row["notes"],
        "status": row["status"],
        "templates": row["templates"],
        "reminders_paused": row.get("reminders_paused_at") is not None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def template_json(db, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "slug": row["slug"],
        "name": row["name"],
        "description": row["description"],
        "cadence": row["cadence"],
        "due_day": row["due_day"],
        "slots": [
            {
                "name": slot["name"],
                "description": slot["description"],
                "optional": bool(slot["optional"]),
                "multiple": bool(slot["multiple"]),
                "position": slot["position"],
                "translations": templates.translations_of(slot),
            }
            for slot in templates.slots(db, row["id"])
        ],
        "translations": templates.translations_of(row),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


CHECKLIST_KEYS = (
    "id client_id client template template_name period due_on state created_at "
    "link_sent_at first_opened_at last_opened_at open_count completed_at archived_at"
).split()


def checklist_json(row: dict[str, Any]) -> dict[str, Any]:
    shaped = {key: row[key] for key in CHECKLIST_KEYS}
    shaped["progress"] = {
        "required": row["required"] or 0,
        "received": row["received"] or 0,
        "items": row["item_count"],
    }
    return shaped


def document_json(row: dict[str, Any], **context: Any) -> dict[str, Any]:
    row = {**row, **context}
    return {
        "id": row["id"],
        "checklist_id": row["checklist_id"],
        "client_id": row["client_id"],
        "item_id": row["item_id"],
        "slot": row["slot"],
        "filename": row["original_filename"],
        "size": row["size"],
        "sha256": row["sha256"],
        "content_type": row["content_type"],
        "uploaded_at": row["uploaded_at"],
        "review_state": row["review_state"],
        "review_note": row["review_note"],
        "reviewer": row["reviewer"],
        "reviewed_at": row["reviewed_at"],
        "file_url": f"{PREFIX}/documents/{row['id']}/file",
    }


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    return webhooks.event_body(row, row["action"].replace(":", "."))


# -- the specification ---------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document():
    from .openapi import spec

    return _json(spec())


# -- clients ------------------------------------------------------------------------------


@bp.get("/clients")
def list_clients():
    db = get_db()
    template = request.args.get("template")
    template_id = _template_param(db, template) if template else None
    search = request.args.get("q")
    if search is not None and len(search) > 200:
        raise _bad_parameter("q", "must be at most 200 characters")
    page = paging.clients_page(
        db,
        after=_after("clients"),
        limit=_int_arg("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE),
        status=_choice_arg("status", CLIENT_STATUSES),
        search=search or None,
        template_id=template_id,
    )
    return _page("clients", page, client_json)


def _template_param(db, slug: str) -> int:
    try:
        return templates.get_template(db, slug)["id"]
    except TemplateNotFound as exc:
        raise _bad_parameter("template", str(exc)) from None


@bp.get("/clients/<id:client_id>")
def get_client(client_id: int):
    return _json(client_json(_client_row(get_db(), client_id)))


def _client_row(db, client_id: int) -> dict[str, Any]:
    row = paging.client(db, client_id)
    if row is None:
        raise ClientNotFound(f"No client #{client_id}")
    return row


CLIENT_FIELDS = ("name", "email", "phone", "language", "notes", "templates")


def _client_fields(fields: Fields, creating: bool) -> dict[str, Any]:
    fields.only(*CLIENT_FIELDS)
    values = {
        "name": fields.text("name", required=creating),
        "email": fields.text("email", required=creating, max_length=254),
        "phone": fields.text("phone", nullable=True, max_length=40, blank=True),
        "language": fields.text("language", nullable=True, max_length=40, blank=True),
        "notes": fields.text("notes", nullable=True, max_length=2000, blank=True),
        "templates": fields.array("templates", most=50),
    }
    slugs = values["templates"]
    if slugs is not _MISSING:
        for index, slug in enumerate(slugs):
            if not isinstance(slug, str):
                fields.error(f"templates/{index}", "must be a template slug")
    return values


def _template_ids(db, slugs: list[str], pointer: str) -> list[int]:
    ids, errors = [], []
    for index, slug in enumerate(slugs):
        try:
            ids.append(templates.get_template(db, slug)["id"])
        except TemplateNotFound as exc:
            errors.append(
                {"pointer": f"{pointer}/templates/{index}", "detail": str(exc)}
            )
    if errors:
        raise Problem(422, "validation", errors[0]["detail"], errors=errors)
    return ids


@bp.post("/clients")
def create_client():
    fields = Fields(_body())
    values = _client_fields(fields, creating=True)
    fields.check()
    db, moment, settings = get_db(), now(), get_settings()
    with write_transaction(db):
        template_ids = _template_ids(db, _given(values.pop("templates"), []), "#")
        client_id = _add_client(db, values, moment, settings, template_ids, "#")
    row = _client_row(db, client_id)
    return _json(client_json(row), 201, {"Location": f"{PREFIX}/clients/{client_id}"})


def _given(value: Any, default: Any = None) -> Any:
    return default if value is _MISSING else value


def _add_client(db, values, moment, settings, template_ids, pointer) -> int:
    data = clients.ClientInput(**{k: _given(v) for k, v in values.items()})
    try:
        client_id = clients.add_client(
            db, data, moment, region=settings.firm.country, actor=_actor()
        )
    except MonthlydocsError as exc:
        raise problem_for(exc, pointer) from None
    for template_id in template_ids:
        clients.assign(db, [client_id], template_id, moment, actor=_actor())
    return client_id


@bp.post("/clients/bulk")
def create_clients():
    fields = Fields(_body())
    fields.only("clients", "skip_existing")
    items = fields.array("clients", required=True, most=MAX_BULK)
    skip_existing = _given(fields.boolean("skip_existing"), False)
    if items is not _MISSING and not items:
        fields.error("clients", "must hold at least one client")
    fields.check()

    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            fields.error(f"clients/{index}", "must be an object")
            continue
        item_fields = Fields(item, f"#/clients/{index}")
        rows.append((index, _client_fields(item_fields, creating=True)))
        fields.errors += item_fields.errors
    fields.check()

    db, moment, settings = get_db(), now(), get_settings()
    created, skipped, errors = [], [], []
    with write_transaction(db):
        seen: dict[str, int] = {}
        for index, values in rows:
            pointer = f"#/clients/{index}"
            try:
                email = clients.normalize_email(values["email"])
            except InvalidEmail as exc:
                errors.append({"pointer": f"{pointer}/email", "detail": str(exc)})
                continue
            if email.lower() in seen:
                errors.append(
                    {
                        "pointer": f"{pointer}/email",
                        "detail": f"{email} is also at #/clients/{seen[email.lower()]}",
                    }
                )
                continue
            seen[email.lower()] = index
            existing = clients.by_email(db, email)
            if existing and skip_existing:
                skipped.append({"index": index, "id": existing["id"], "email": email})
                continue
            try:
                ids = _template_ids(db, _given(values.pop("templates"), []), pointer)
                created.append(_add_client(db, values, moment, settings, ids, pointer))
            except Problem as problem:
                errors += problem.errors or [
                    {"pointer": pointer, "detail": problem.detail}
                ]
        if errors:
            # Nothing is kept unless every client can be: fix and send the batch again.
            raise Problem(
                422,
                "validation",
                f"{len(errors)} problem(s) in the batch; no client was added",
                errors=errors,
            )
    return _json(
        {
            "created": [client_json(_client_row(db, cid)) for cid in created],
            "skipped": skipped,
        },
        201 if created else 200,
    )


@bp.patch("/clients/<id:client_id>")
def update_client(client_id: int):
    fields = Fields(_body())
    values = _client_fields(fields, creating=False)
    fields.check()
    db, moment, settings = get_db(), now(), get_settings()
    with write_transaction(db):
        current = _client_row(db, client_id)
        slugs = values.pop("templates")
        # null clears an optional field; the core reads None as "not given".
        changes = {
            key: "" if value is None else value
            for key, value in values.items()
            if value is not _MISSING
        }
        try:
            clients.update_client(
                db,
                client_id,
                changes,
                moment,
                region=settings.firm.country,
                actor=_actor(),
            )
        except MonthlydocsError as exc:
            raise problem_for(exc) from None
        if slugs is not _MISSING:
            _reassign(db, current, _template_ids(db, slugs, "#"), moment)
    return _json(client_json(_client_row(db, client_id)))


def _reassign(db, current: dict[str, Any], template_ids: list[int], moment) -> None:
    assigned = {templates.get_template(db, slug)["id"] for slug in current["templates"]}
    for template_id in set(template_ids) - assigned:
        clients.assign(db, [current["id"]], template_id, moment, actor=_actor())
    for template_id in assigned - set(template_ids):
        clients.unassign(db, [current["id"]], template_id, moment, actor=_actor())


@bp.post("/clients/<id:client_id>/archive")
def archive_client(client_id: int):
    db = get_db()
    _client_row(db, client_id)
    clients.archive_client(db, client_id, now(), actor=_actor())
    return _json(client_json(_client_row(db, client_id)))


# -- templates ---------------------------------------------------------------------------


@bp.get("/templates")
def list_templates():
    db = get_db()
    after = _after("templates")
    limit = _int_arg("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    # A firm has tens of templates, not thousands: paged here, by id like the rest.
    rows = sorted(
        (row for row in templates.list_templates(db) if row["id"] > after),
        key=lambda row: row["id"],
    )
    next_after = rows[limit - 1]["id"] if len(rows) > limit else None
    page = paging.Page(rows[:limit], next_after)
    return _page("templates", page, lambda row: template_json(db, row))


@bp.get("/templates/<slug>")
def get_template(slug: str):
    db = get_db()
    return _json(template_json(db, templates.get_template(db, slug)))


TEMPLATE_FIELDS = (
    "slug",
    "name",
    "description",
    "cadence",
    "due_day",
    "slots",
    "translations",
)


def _template_fields(fields: Fields, creating: bool) -> dict[str, Any]:
    fields.only(*(TEMPLATE_FIELDS if creating else TEMPLATE_FIELDS[1:]))
    values = {
        "name": fields.text("name", required=creating),
        "description": fields.text("description", max_length=2000, blank=True),
        "cadence": fields.choice("cadence", templates.CADENCES),
        "due_day": fields.integer("due_day", 1, 31),
        "slots": _slots(fields),
        "translations": _translations(fields),
    }
    if creating:
        slug = fields.text("slug", required=True, max_length=40)
        if isinstance(slug, str) and not templates.SLUG_RE.match(slug):
            fields.error("slug", "must be 1 to 40 lower-case letters, digits, - or _")
        values["slug"] = slug
    return values


def _translations(fields: Fields) -> Any:
    """{language: {"name", "description"}} for the clients' languages, or _MISSING."""
    value = fields._get("translations", False, False)
    if value is _MISSING:
        return value
    if not isinstance(value, dict):
        fields.error("translations", "must be an object")
        return _MISSING
    clean = {}
    for language, texts in value.items():
        if language not in LANGUAGES:
            fields.error(
                f"translations/{language}", f"must be one of {', '.join(LANGUAGES)}"
            )
            continue
        if not isinstance(texts, dict):
            fields.error(f"translations/{language}", "must be an object")
            continue
        entry = Fields(texts, f"{fields.pointer}/translations/{language}")
        entry.only("name", "description")
        clean[language] = {
            key: text
            for key, text in (
                ("name", entry.text("name", blank=True)),
                ("description", entry.text("description", max_length=2000, blank=True)),
            )
            if text is not _MISSING
        }
        fields.errors += entry.errors
    return clean


def _slots(fields: Fields) -> Any:
    items = fields.array("slots", most=100)
    if items is _MISSING:
        return items
    slots, names = [], set()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            fields.error(f"slots/{index}", "must be an object")
            continue
        slot = Fields(item, f"{fields.pointer}/slots/{index}")
        slot.only("name", "description", "optional", "multiple", "translations")
        name = slot.text("name", required=True)
        if isinstance(name, str):
            name = " ".join(name.split())
            if name in names:
                slot.error("name", "names a slot twice")
            names.add(name)
        wanted = {
            "name": name,
            "description": _given(slot.text("description", blank=True), ""),
            "optional": _given(slot.boolean("optional"), False),
            "multiple": _given(slot.boolean("multiple"), True),
        }
        # Left out, a slot keeps the translations it has (an older integration that
        # does not know them loses nothing); given, they replace them.
        translations = _translations(slot)
        if translations is not _MISSING:
            wanted["translations"] = translations
        slots.append(wanted)
        fields.errors += slot.errors
    return slots


@bp.post("/templates")
def create_template():
    fields = Fields(_body())
    values = _template_fields(fields, creating=True)
    fields.check()
    db, moment = get_db(), now()
    slug = values.pop("slug")
    with write_transaction(db):
        if any(row["slug"] == slug for row in templates.list_templates(db)):
            raise Problem(
                409,
                "conflict",
                f"A template {slug!r} already exists: change it with PATCH "
                f"{PREFIX}/templates/{slug}",
                errors=[{"pointer": "#/slug", "detail": "already exists"}],
            )
        _save_template(db, slug, values, moment)
    row = templates.get_template(db, slug)
    return _json(
        template_json(db, row), 201, {"Location": f"{PREFIX}/templates/{slug}"}
    )


def _save_template(db, slug: str, values: dict[str, Any], moment) -> None:
    slots = values.pop("slots")
    templates.save_template(
        db,
        slug,
        moment,
        actor=_actor(),
        **{key: _given(value) for key, value in values.items()},
    )
    if slots is not _MISSING:
        templates.replace_slots(db, slug, slots, moment, actor=_actor())


@bp.patch("/templates/<slug>")
def update_template(slug: str):
    fields = Fields(_body())
    values = _template_fields(fields, creating=False)
    fields.check()
    db, moment = get_db(), now()
    with write_transaction(db):
        row = templates.get_template(db, slug)
        _save_template(db, row["slug"], values, moment)
    return _json(template_json(db, templates.get_template(db, row["slug"])))


# -- checklists ----------------------------------------------------------------------------


@bp.get("/checklists")
def list_checklists():
    db = get_db()
    template = request.args.get("template")
    period = request.args.get("period")
    if period is not None and len(period) > 20:
        raise _bad_parameter("period", "must be a period like 2026-12, 2026-Q4 or 2026")
    page = paging.checklists_page(
        db,
        _today(),
        after=_after("checklists"),
        limit=_int_arg("limit", PAGE_SIZE, 1, MAX_PAGE_SIZE),
        period=period or None,
        template_id=_template_param(db, template) if template else None,
        state=_choice_arg("state", checklists.STATES),
        client_id=_int_arg("client", None, 1, MAX_ID),
    )
    return _page("checklists", page, checklist_json)


@bp.post("/checklists")
def generate_checklists():
    fields = Fields(_body())
    fields.only("template", "period", "due_on", "clients", "send")
    slug = fields.text("template", required=True, max_length=40)
    period = fields.text("period", nullable=True, max_length=20)
    due_on = fields.day("due_on")
    client_ids = fields.array("clients", most=10_000)
    send = _given(fields.boolean("send"), True)
    if client_ids not in (_MISSING, None):
        for index, value in enumerate(client_ids):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fields.error(f"clients/{index}", "must be a client id")
    fields.check()

    db, moment, settings = get_db(), now(), get_settings()
    try:
        template = templates.get_template(db, slug)
    except TemplateNotFound as exc:
        raise Problem(
            422,
            "validation",
            str(exc),
            errors=[{"pointer": "#/template", "detail": str(exc)}],
        ) from None
    if client_ids not in (_MISSING, None):
        _check_targets(db, fields, client_ids, template)
    try:
        result = checklists.generate(
            db,
            [checklists.Request(template, _given(period), _given(due_on))],
            moment,
            local_date(moment, settings.firm.timezone),
            client_ids=_given(client_ids),
            send=send,
            default_language=settings.firm.default_language,
            actor=_actor(),
        )
    except MonthlydocsError as exc:
        raise problem_for(exc) from None
    outcome = result.outcomes[0]
    created = sorted(i for ids in result.created_by_client.values() for i in ids)
    return _json(
        {
            "template": outcome.slug,
            "period": outcome.period,
            "due_on": outcome.due_on.isoformat(),
            "created": outcome.created,
            "already": outcome.already,
            "messages_queued": result.messages_queued,
            "checklist_ids": created,
        },
        201 if created else 200,
    )


def _check_targets(db, fields: Fields, client_ids: list[int], template) -> None:
    """Each named client must exist, be active and have the template assigned."""
    for index, client_id in enumerate(client_ids):
        row = paging.client(db, client_id)
        if row is None:
            fields.error(f"clients/{index}", f"No client #{client_id}")
        elif row["status"] != "active":
            fields.error(f"clients/{index}", f"Client #{client_id} is {row['status']}")
        elif template["slug"] not in row["templates"]:
            fields.error(
                f"clients/{index}",
                f"Client #{client_id} is not assigned {template['slug']!r}: add it to "
                f"their templates with PATCH {PREFIX}/clients/{client_id}",
            )
    fields.check()


@bp.get("/checklists/<id:checklist_id>")
def get_checklist(checklist_id: int):
    from .. import links, portal

    db = get_db()
    row = paging.checklist(db, checklist_id, _today())
    if row is None:
        raise ChecklistNotFound(f"No checklist #{checklist_id}")
    shaped = checklist_json(row)
    token = checklists.get_checklist(db, checklist_id)["token"]
    shaped["link"] = links.link_for(get_settings().portal.base_url, token)
    shaped["items"] = [
        {
            "id": slot.item["id"],
            "name": slot.item["name"],
            "description": slot.item["description"],
            "optional": bool(slot.item["optional"]),
            "multiple": bool(slot.item["multiple"]),
            "position": slot.item["position"],
            "state": slot.item["state"],
            "note": slot.item["note"],
            "documents": [
                document_json(
                    document,
                    checklist_id=checklist_id,
                    client_id=row["client_id"],
                    slot=slot.item["name"],
                )
                for document in slot.documents
            ],
        }
        for slot in portal.page(db, row).slots
    ]
    return _json(shaped)


@bp.post("/checklists/<id:checklist_id>/reminders")
def send_reminder(checklist_id: int):
    from .. import reminders

    db, settings = get_db(), get_settings()
    checklist = checklists.get_checklist(db, checklist_id)
    why = _why_no_reminder(checklist)
    if why:
        raise Problem(409, "conflict", f"Checklist #{checklist_id} {why}: no reminder")
    client = clients.get_client(db, checklist["client_id"])
    steps = reminders.queue_manual(db, settings, now(), client, [checklist_id])
    # Sent by the app's sending thread right after this answer (web/background.py), or
    # by the next `remind` if the app runs without one.
    return _json({"checklist_id": checklist_id, "queued": steps > 0}, 202)


def _why_no_reminder(checklist: dict[str, Any]) -> str | None:
    if checklist["completed_at"]:
        return "is complete"
    if checklist["archived_at"]:
        return "is archived"
    if not checklist["link_sent_at"]:
        return "has not had its link sent yet"
    return None


# -- documents --------------------------------------------------------------------------


@bp.get("/documents/<id:document_id>")
def get_document(document_id: int):
    return _json(document_json(review.get_document(get_db(), document_id)))


@bp.get("/documents/<id:document_id>/file")
def download_document(document_id: int):
    document = review.get_document(get_db(), document_id)
    root = Path(get_settings().files_dir).resolve()
    path = (root / document["stored_path"]).resolve()
    if root not in path.parents or not path.is_file():
        current_app.logger.error("document #%s has no file on disk", document_id)
        raise Problem(
            404,
            "not-found",
            f"The file of document #{document_id} is missing from the file store",
        )
    return send_file(
        path,
        mimetype=document["content_type"],
        as_attachment=True,
        download_name=document["original_filename"],
        etag=document["sha256"],
        max_age=0,
    )


@bp.post("/documents/<id:document_id>/approve")
def approve_document(document_id: int):
    row = review.approve(get_db(), document_id, _actor(), now())
    return _json(document_json(row))


@bp.post("/documents/<id:document_id>/reject")
def reject_document(document_id: int):
    fields = Fields(_body())
    fields.only("note")
    note = fields.text("note", required=True, max_length=review.MAX_NOTE)
    fields.check()
    row = review.reject(get_db(), get_settings(), document_id, note, _actor(), now())
    return _json(document_json(row))


# -- events ---------------------------------------------------------------------------------

EVENT_TYPES = tuple(str(event).replace(":", ".") for event in Event)


@bp.get("/events")
def list_events():
    after = _int_arg("after", 0, 0, MAX_ID)
    if "cursor" in request.args:
        after = _after("events")
    kinds = [k for k in (request.args.get("type") or "").split(",") if k]
    unknown = [kind for kind in kinds if kind not in EVENT_TYPES]
    if unknown:
        raise _bad_parameter("type", f"has unknown event type(s) {', '.join(unknown)}")
    page = paging.events_page(
        get_db(),
        after=after,
        limit=_int_arg("limit", EVENT_PAGE_SIZE, 1, MAX_EVENT_PAGE_SIZE),
        actions=[kind.replace(".", ":") for kind in kinds] or None,
        client_id=_int_arg("client", None, 1, MAX_ID),
    )
    return _page("events", page, event_json)
