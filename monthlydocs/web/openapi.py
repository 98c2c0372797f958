"""The OpenAPI 3.1 document of the API, served at /api/v1/openapi.json.

Written by hand, next to the code it describes: a test walks the app's URL map and fails
when a route and this document disagree, and Schemathesis checks every answer against
the schemas below. Response objects forbid undocumented members, so a field added to an
answer without being added here fails the suite.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from ..checklists import STATES
from ..config import LANGUAGES
from ..periods import CADENCES
from ..webhooks import EVENT_NAMES
from . import api

P = api.PREFIX
JSON = "application/json"

TEXT = {"type": "string"}
NULLABLE_TEXT = {"type": ["string", "null"]}
STAMP = {"type": "string", "format": "date-time"}
NULLABLE_STAMP = {"type": ["string", "null"], "format": "date-time"}
DAY = {"type": "string", "format": "date"}
COUNT = {"type": "integer", "minimum": 0}
ID = {"type": "integer", "minimum": 1, "maximum": api.MAX_ID}
BOOL = {"type": "boolean"}
SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _closed(
    properties: dict[str, Any], required: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """An object with every member documented; all required unless told otherwise."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


def _page_of(name: str) -> dict[str, Any]:
    return _closed(
        {
            "data": {"type": "array", "items": _ref(name)},
            "next_cursor": {
                **NULLABLE_TEXT,
                "description": "Pass as ?cursor= to get the next page; null on the last.",
            },
        }
    )


def _text(max_length: int, *, nullable: bool = False, blank: bool = True) -> dict:
    schema: dict[str, Any] = {
        "type": ["string", "null"] if nullable else "string",
        "maxLength": max_length,
    }
    if not blank:
        schema["pattern"] = r"\S"
    return schema


# -- schemas ------------------------------------------------------------------------------

CLIENT = _closed(
    {
        "id": ID,
        "name": TEXT,
        "email": TEXT,
        "phone": {**NULLABLE_TEXT, "description": "E.164, like +33612345678"},
        "language": NULLABLE_TEXT,
        "notes": NULLABLE_TEXT,
        "status": {"type": "string", "enum": list(api.CLIENT_STATUSES)},
        "templates": {"type": "array", "items": TEXT},
        "reminders_paused": BOOL,
        "created_at": STAMP,
        "updated_at": STAMP,
    }
)

_CLIENT_INPUT = {
    "name": _text(200, blank=False),
    "email": {**_text(254, blank=False), "description": "Unique among clients"},
    "phone": {
        **_text(40, nullable=True),
        "description": "With its country code; without one it is read in the firm's "
        "country (firm.country). Null or empty clears it.",
    },
    "language": {
        **_text(40, nullable=True),
        "description": f"One of {', '.join(LANGUAGES)} (names like 'Français' are "
        "understood too). Null: the firm's default language.",
    },
    "notes": _text(2000, nullable=True),
    "templates": {
        "type": "array",
        "items": TEXT,
        "maxItems": 50,
        "description": "Slugs of the templates assigned to the client; on PATCH the "
        "list replaces the current one.",
    },
}
CLIENT_CREATE = _closed(_CLIENT_INPUT, ["name", "email"])
CLIENT_UPDATE = _closed(_CLIENT_INPUT, [])
CLIENT_BULK = _closed(
    {
        "clients": {
            "type": "array",
            "items": _ref("ClientCreate"),
            "minItems": 1,
            "maxItems": api.MAX_BULK,
        },
        "skip_existing": {
            **BOOL,
            "description": "Leave clients whose email is already known alone instead "
            "of refusing the batch.",
        },
    },
    ["clients"],
)
BULK_RESULT = _closed(
    {
        "created": {"type": "array", "items": _ref("Client")},
        "skipped": {
            "type": "array",
            "items": _closed({"index": COUNT, "id": ID, "email": TEXT}),
        },
    }
)

TRANSLATIONS = _closed(
    {language: _ref("Translation") for language in LANGUAGES},
    [],
    description="The wording clients read in their language (the base text where a "
    "language or a key is missing); staff see the base text.",
)
TRANSLATIONS_INPUT = _closed(
    {language: _ref("TranslationInput") for language in LANGUAGES},
    [],
    description="Replaces the stored translations; a blank text is left out.",
)
TRANSLATION = _closed({"name": TEXT, "description": TEXT}, [])
TRANSLATION_INPUT = _closed(
    {"name": _text(200), "description": _text(2000)},
    [],
)
SLOT = _closed(
    {
        "name": TEXT,
        "description": TEXT,
        "optional": BOOL,
        "multiple": BOOL,
        "position": {"type": "integer"},
        "translations": _ref("Translations"),
    }
)
SLOT_INPUT = _closed(
    {
        "name": _text(200, blank=False),
        "description": {**_text(200), "default": ""},
        "optional": {**BOOL, "default": False},
        "multiple": {**BOOL, "default": True, "description": "Several files allowed"},
        "translations": {
            **_ref("TranslationsInput"),
            "description": "Left out: a slot of that name keeps its translations.",
        },
    },
    ["name"],
)
TEMPLATE = _closed(
    {
        "id": ID,
        "slug": TEXT,
        "name": TEXT,
        "description": TEXT,
        "cadence": {"type": "string", "enum": list(CADENCES)},
        "due_day": {"type": "integer", "minimum": 1, "maximum": 31},
        "slots": {"type": "array", "items": _ref("Slot")},
        "translations": _ref("Translations"),
        "created_at": STAMP,
        "updated_at": STAMP,
    }
)
_TEMPLATE_INPUT = {
    "name": _text(200, blank=False),
    "description": _text(2000),
    "cadence": {"type": "string", "enum": list(CADENCES), "default": "monthly"},
    "due_day": {"type": "integer", "minimum": 1, "maximum": 31, "default": 10},
    "slots": {
        "type": "array",
        "items": _ref("SlotInput"),
        "maxItems": 100,
        "description": "The whole list, in order: slots not named are removed.",
    },
    "translations": _ref("TranslationsInput"),
}
TEMPLATE_CREATE = _closed({"slug": SLUG, **_TEMPLATE_INPUT}, ["slug", "name"])
TEMPLATE_UPDATE = _closed(_TEMPLATE_INPUT, [])

_CHECKLIST = {
    "id": ID,
    "client_id": ID,
    "client": {**TEXT, "description": "The client's name"},
    "template": {**TEXT, "description": "The template's slug"},
    "template_name": TEXT,
    "period": {**TEXT, "examples": ["2026-12", "2026-Q4", "2026", "once"]},
    "due_on": DAY,
    "state": {"type": "string", "enum": list(STATES)},
    "created_at": STAMP,
    "link_sent_at": NULLABLE_STAMP,
    "first_opened_at": NULLABLE_STAMP,
    "last_opened_at": NULLABLE_STAMP,
    "open_count": COUNT,
    "completed_at": NULLABLE_STAMP,
    "archived_at": NULLABLE_STAMP,
    "progress": _closed({"required": COUNT, "received": COUNT, "items": COUNT}),
}
CHECKLIST = _closed(_CHECKLIST)
ITEM = _closed(
    {
        "id": ID,
        "name": TEXT,
        "description": TEXT,
        "optional": BOOL,
        "multiple": BOOL,
        "position": {"type": "integer"},
        "state": {
            "type": "string",
            "enum": ["to_send", "received", "not_applicable", "rejected", "approved"],
        },
        "note": NULLABLE_TEXT,
        "documents": {"type": "array", "items": _ref("Document")},
    }
)
CHECKLIST_DETAIL = _closed(
    {
        **_CHECKLIST,
        "link": {**TEXT, "description": "The client's portal link (a secret)"},
        "items": {"type": "array", "items": _ref("Item")},
    }
)
GENERATE = _closed(
    {
        "template": {**SLUG, "description": "The template's slug"},
        "period": {
            **_text(20, nullable=True, blank=False),
            "description": "Like 2026-12 (monthly), 2026-Q4, 2026, once; null: the "
            "current period",
        },
        "due_on": {
            "type": ["string", "null"],
            "format": "date",
            "description": "Null: the template's due day after today",
        },
        "clients": {
            "type": ["array", "null"],
            "items": ID,
            "maxItems": 10_000,
            "description": "Only these clients (active, with the template assigned); "
            "null: every one",
        },
        "send": {
            **BOOL,
            "default": True,
            "description": "Queue the link emails; the next `remind` run sends them",
        },
    },
    ["template"],
)
GENERATED = _closed(
    {
        "template": TEXT,
        "period": TEXT,
        "due_on": DAY,
        "created": COUNT,
        "already": {**COUNT, "description": "Clients who had this period already"},
        "messages_queued": COUNT,
        "checklist_ids": {"type": "array", "items": ID},
    }
)
REMINDER = _closed({"checklist_id": ID, "queued": BOOL})
DOCUMENT = _closed(
    {
        "id": ID,
        "checklist_id": ID,
        "client_id": ID,
        "item_id": ID,
        "slot": TEXT,
        "filename": TEXT,
        "size": COUNT,
        "sha256": TEXT,
        "content_type": TEXT,
        "uploaded_at": STAMP,
        "review_state": {"type": "string", "enum": ["pending", "approved", "rejected"]},
        "review_note": NULLABLE_TEXT,
        "reviewer": NULLABLE_TEXT,
        "reviewed_at": NULLABLE_STAMP,
        "file_url": TEXT,
    }
)
REJECT = _closed(
    {"note": {**_text(1000, blank=False), "description": "Read by the client"}}
)
EVENT = _closed(
    {
        "id": ID,
        "type": {
            **TEXT,
            "description": "subject.action, like document.uploaded. Webhooks use the "
            f"same shape; their types are {', '.join(EVENT_NAMES)}.",
        },
        "occurred_at": STAMP,
        "actor": TEXT,
        "client_id": {"type": ["integer", "null"]},
        "subject": _closed({"type": TEXT, "id": {"type": ["integer", "null"]}}),
        "data": {"type": "object"},
    }
)
PROBLEM = _closed(
    {
        "type": {**TEXT, "description": "urn:monthlydocs:problem:<code>"},
        "title": TEXT,
        "status": {"type": "integer"},
        "detail": TEXT,
        "instance": TEXT,
        "errors": {
            "type": "array",
            "items": _closed(
                {
                    "pointer": {**TEXT, "description": "JSON pointer into the body"},
                    "parameter": {**TEXT, "description": "Query parameter"},
                    "header": TEXT,
                    "detail": TEXT,
                },
                ["detail"],
            ),
        },
    },
    ["type", "title", "status", "detail"],
)

SCHEMAS = {
    "Client": CLIENT,
    "ClientCreate": CLIENT_CREATE,
    "ClientUpdate": CLIENT_UPDATE,
    "ClientBulk": CLIENT_BULK,
    "ClientBulkResult": BULK_RESULT,
    "ClientPage": _page_of("Client"),
    "Slot": SLOT,
    "SlotInput": SLOT_INPUT,
    "Translation": TRANSLATION,
    "TranslationInput": TRANSLATION_INPUT,
    "Translations": TRANSLATIONS,
    "TranslationsInput": TRANSLATIONS_INPUT,
    "Template": TEMPLATE,
    "TemplateCreate": TEMPLATE_CREATE,
    "TemplateUpdate": TEMPLATE_UPDATE,
    "TemplatePage": _page_of("Template"),
    "Checklist": CHECKLIST,
    "ChecklistDetail": CHECKLIST_DETAIL,
    "ChecklistPage": _page_of("Checklist"),
    "Item": ITEM,
    "Generate": GENERATE,
    "Generated": GENERATED,
    "Reminder": REMINDER,
    "Document": DOCUMENT,
    "Reject": REJECT,
    "Event": EVENT,
    "EventPage": _page_of("Event"),
    "Problem": PROBLEM,
}

# -- parameters and responses ---------------------------------------------------------------


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _path(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


LIMIT = _query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": api.MAX_PAGE_SIZE},
    f"Rows per page (default {api.PAGE_SIZE})",
)
CURSOR = _query("cursor", TEXT, "next_cursor of the previous page")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string", "pattern": "^[ -~]{1,255}$"},
    "description": "A unique key (a UUID) per request: resending the same request "
    "with the same key within 24 hours replays the first answer instead of acting "
    "twice. The same key with another request is refused (422).",
}

ERRORS = {
    400: "The request or a query parameter is malformed",
    401: "No token, an unknown token or a revoked one",
    403: "The token is read-only",
    404: "No such resource",
    409: "Conflicts with the current state (a duplicate, a request in progress)",
    415: "The body is not JSON",
    422: "The body is well-formed but a field is wrong: see errors",
    429: "Too many requests for this token: see Retry-After",
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {api.PROBLEM_MEDIA_TYPE: {"schema": _ref("Problem")}},
    }


def _operation(
    summary: str,
    responses: dict[int, tuple[str, str | None]],
    *,
    errors: tuple[int, ...] = (),
    parameters: list[dict[str, Any]] | None = None,
    body: str | None = None,
    creates: bool = False,
) -> dict[str, Any]:
    """An operation: success responses as {status: (description, schema name)}."""
    answers: dict[str, Any] = {}
    for status, (description, schema) in responses.items():
        answer: dict[str, Any] = {"description": description}
        if schema:
            answer["content"] = {JSON: {"schema": _ref(schema)}}
        answers[str(status)] = answer
    for status in sorted({400, 401, 429, *errors}):
        answers[str(status)] = _problem(ERRORS[status])
    answers["default"] = _problem("Any other error")
    operation: dict[str, Any] = {"summary": summary, "responses": answers}
    parameters = list(parameters or [])
    if creates:
        parameters.append(IDEMPOTENCY_KEY)
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": _ref(body)}},
        }
    return operation


WRITE = (403, 415, 422)


def _paths() -> dict[str, Any]:
    client_id = [_path("client_id", ID)]
    slug = [_path("slug", {"type": "string", "maxLength": 40})]
    checklist_id = [_path("checklist_id", ID)]
    document_id = [_path("document_id", ID)]
    return {
        f"{P}/openapi.json": {
            "get": _operation(
                "This document",
                {200: ("OpenAPI 3.1", None)},
            )
        },
        f"{P}/clients": {
            "get": _operation(
                "List clients",
                {200: ("A page of clients, by id", "ClientPage")},
                parameters=[
                    _query(
                        "status",
                        {"type": "string", "enum": list(api.CLIENT_STATUSES)},
                        "Only clients in this state (default: all but archived)",
                    ),
                    _query(
                        "q",
                        {"type": "string", "maxLength": 200},
                        "Part of name or email",
                    ),
                    _query("template", TEXT, "Only clients assigned this template"),
                    LIMIT,
                    CURSOR,
                ],
            ),
            "post": _operation(
                "Create a client",
                {201: ("Created", "Client")},
                errors=(*WRITE, 409),
                body="ClientCreate",
                creates=True,
            ),
        },
        f"{P}/clients/bulk": {
            "post": _operation(
                "Create many clients, all or none",
                {
                    201: ("Some were created", "ClientBulkResult"),
                    200: ("All were skipped as existing", "ClientBulkResult"),
                },
                errors=(*WRITE, 409),
                body="ClientBulk",
                creates=True,
            )
        },
        f"{P}/clients/{{client_id}}": {
            "get": _operation(
                "Get a client",
                {200: ("The client", "Client")},
                errors=(404,),
                parameters=client_id,
            ),
            "patch": _operation(
                "Change a client",
                {200: ("The client as it is now", "Client")},
                errors=(*WRITE, 404, 409),
                parameters=client_id,
                body="ClientUpdate",
            ),
        },
        f"{P}/clients/{{client_id}}/archive": {
            "post": _operation(
                "Archive a client: no new checklists or messages, history kept",
                {200: ("The archived client", "Client")},
                errors=(403, 404, 409),
                parameters=client_id,
                creates=True,
            )
        },
        f"{P}/templates": {
            "get": _operation(
                "List document templates",
                {200: ("A page of templates, by id", "TemplatePage")},
                parameters=[LIMIT, CURSOR],
            ),
            "post": _operation(
                "Create a template with its slots",
                {201: ("Created", "Template")},
                errors=(*WRITE, 409),
                body="TemplateCreate",
                creates=True,
            ),
        },
        f"{P}/templates/{{slug}}": {
            "get": _operation(
                "Get a template",
                {200: ("The template", "Template")},
                errors=(404,),
                parameters=slug,
            ),
            "patch": _operation(
                "Change a template; checklists already made keep their slots",
                {200: ("The template as it is now", "Template")},
                errors=(*WRITE, 404),
                parameters=slug,
                body="TemplateUpdate",
            ),
        },
        f"{P}/checklists": {
            "get": _operation(
                "List checklists",
                {200: ("A page of checklists, by id", "ChecklistPage")},
                parameters=[
                    _query(
                        "period", {"type": "string", "maxLength": 20}, "Like 2026-12"
                    ),
                    _query("template", TEXT, "Template slug"),
                    _query(
                        "state",
                        {"type": "string", "enum": list(STATES)},
                        "State today, as the dashboard shows it",
                    ),
                    _query("client", ID, "Client id"),
                    LIMIT,
                    CURSOR,
                ],
            ),
            "post": _operation(
                "Generate a template's checklists for a period",
                {
                    201: ("Checklists were created", "Generated"),
                    200: ("Every client had one already", "Generated"),
                },
                errors=WRITE,
                body="Generate",
                creates=True,
            ),
        },
        f"{P}/checklists/{{checklist_id}}": {
            "get": _operation(
                "Get a checklist with its items and documents",
                {200: ("The checklist", "ChecklistDetail")},
                errors=(404,),
                parameters=checklist_id,
            )
        },
        f"{P}/checklists/{{checklist_id}}/reminders": {
            "post": _operation(
                "Remind the client now (the next step of their sequence)",
                {
                    202: (
                        "Accepted: sent right away by the app (or the next `remind`)",
                        "Reminder",
                    )
                },
                errors=(403, 404, 409),
                parameters=checklist_id,
                creates=True,
            )
        },
        f"{P}/documents/{{document_id}}": {
            "get": _operation(
                "Get a document's details",
                {200: ("The document", "Document")},
                errors=(404,),
                parameters=document_id,
            )
        },
        f"{P}/documents/{{document_id}}/file": {
            "get": {
                **_operation(
                    "Download the file as the client sent it",
                    {},
                    errors=(404,),
                    parameters=document_id,
                ),
            }
        },
        f"{P}/documents/{{document_id}}/approve": {
            "post": _operation(
                "Approve a document",
                {200: ("The document", "Document")},
                errors=(403, 404, 409),
                parameters=document_id,
                creates=True,
            )
        },
        f"{P}/documents/{{document_id}}/reject": {
            "post": _operation(
                "Reject a document; the client is emailed the note",
                {200: ("The document", "Document")},
                errors=(*WRITE, 404, 409),
                parameters=document_id,
                body="Reject",
                creates=True,
            )
        },
        f"{P}/events": {
            "get": _operation(
                "The audit trail, oldest first: everything after event N",
                {200: ("A page of events", "EventPage")},
                parameters=[
                    _query(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": api.MAX_ID},
                        "Events with an id above this one (default 0)",
                    ),
                    _query(
                        "type",
                        TEXT,
                        "Comma-separated event types, like document.uploaded",
                    ),
                    _query("client", ID, "Client id"),
                    _query(
                        "limit",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": api.MAX_EVENT_PAGE_SIZE,
                        },
                        f"Events per page (default {api.EVENT_PAGE_SIZE})",
                    ),
                    CURSOR,
                ],
            )
        },
    }


@cache
def spec() -> dict[str, Any]:
    paths = _paths()
    download = paths[f"{P}/documents/{{document_id}}/file"]["get"]
    download["responses"]["200"] = {
        "description": "The file, with its detected Content-Type and a "
        "Content-Disposition naming it",
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "monthlydocs",
            "version": "1",
            "description": "Clients, templates, checklists, documents and the audit "
            "trail of a monthlydocs workspace. Errors are application/problem+json "
            "(RFC 9457); lists are pages with a cursor; POSTs honour Idempotency-Key.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `monthlydocs token create`",
                }
            },
        },
    }


@cache
def query_parameters(rule: str, method: str) -> frozenset[str]:
    """The query parameters documented for a Flask rule and method."""
    path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)
    operation = spec()["paths"].get(path, {}).get(method.lower(), {})
    return frozenset(
        p["name"] for p in operation.get("parameters", []) if p["in"] == "query"
    )
