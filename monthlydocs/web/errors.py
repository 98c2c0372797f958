"""From the core's exceptions to HTTP: one status table and one message per rule.

The core raises precise exceptions in English for the firm; a client reads the message
chosen here, in their language. The answer is JSON for the portal's script, the portal
page again (with the message) when the link is good, and an error page otherwise.
"""

from __future__ import annotations

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import (
    EmptyUpload,
    ItemLocked,
    LinkNotFound,
    MonthlydocsError,
    UnsupportedFileType,
    UploadTooLarge,
)
from ..portal import InvitesDisabled, ItemNotFound, SlotHasFiles

# Most specific first: the first class the exception is an instance of wins.
STATUS: list[tuple[type[Exception], int]] = [
    (LinkNotFound, 404),
    (ItemNotFound, 404),
    (InvitesDisabled, 404),
    (UploadTooLarge, 413),
    (UnsupportedFileType, 415),
    (EmptyUpload, 400),
    (ItemLocked, 409),
    (SlotHasFiles, 409),
]


def status_for(exc: Exception) -> int:
    from .portal import NoFileChosen

    if isinstance(exc, NoFileChosen):
        return 400
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def message_for(exc: Exception) -> str:
    """What the client reads, in the page's language."""
    from .portal import NoFileChosen

    settings = current_app.extensions["monthlydocs.settings"]
    name = getattr(exc, "filename", "") or _("This file")
    if isinstance(exc, UploadTooLarge | RequestEntityTooLarge):
        if isinstance(exc, RequestEntityTooLarge):
            return _(
                "These files are too big to send at once: the limit is "
                "%(limit)s MB per file. Send them one by one, or make them "
                "smaller.",
                limit=settings.storage.max_upload_mb,
            )
        return _(
            "“%(name)s” is too big: the limit is %(limit)s MB per file. Send a "
            "smaller file, or split it in several parts.",
            name=name,
            limit=settings.storage.max_upload_mb,
        )
    if isinstance(exc, UnsupportedFileType):
        return _(
            "“%(name)s” cannot be accepted: this kind of file is not supported. "
            "Send a PDF, a photo (JPEG, PNG, HEIC, WebP, TIFF), a spreadsheet "
            "(XLSX, XLS, ODS, CSV), a document (DOCX, DOC, ODT, TXT, XML) or a "
            "ZIP.",
            name=name,
        )
    if isinstance(exc, EmptyUpload):
        return _("“%(name)s” is empty. Check the file and send it again.", name=name)
    if isinstance(exc, NoFileChosen):
        return _("Choose a file first, then press Send.")
    if isinstance(exc, ItemLocked):
        return _(
            "%(firm)s has already checked this, so it can no longer be changed. "
            "Contact them if something is wrong.",
            firm=settings.firm.name,
        )
    if isinstance(exc, SlotHasFiles):
        return _(
            "You have sent files for this document. Remove them first if there "
            "is really nothing to send."
        )
    if isinstance(exc, CSRFError):
        return _("This page was open for a long time. Reload it and try again.")
    if isinstance(exc, LinkNotFound | ItemNotFound | InvitesDisabled):
        return _(
            "This link does not work. It may have been replaced by a newer one, "
            "or closed some time after everything was received. Ask %(firm)s "
            "for a new link.",
            firm=settings.firm.name,
        )
    return _("Something went wrong on our side. Please try again in a moment.")


def init_app(app: Flask) -> None:
    app.register_error_handler(MonthlydocsError, _core_error)
    app.register_error_handler(CSRFError, lambda exc: _answer(exc, 400))
    app.register_error_handler(RequestEntityTooLarge, lambda exc: _answer(exc, 413))
    app.register_error_handler(429, _too_many)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(405, _http_error)
    app.register_error_handler(400, _http_error)
    app.register_error_handler(500, _server_error)


def _core_error(exc: MonthlydocsError):
    status = status_for(exc)
    if status == 400 and not hasattr(exc, "code"):
        # Not raised for the client's eyes: log it like any other failure.
        current_app.logger.error("unexpected %s: %s", type(exc).__name__, exc)
    return _answer(exc, status)


def _answer(exc: Exception, status: int):
    """JSON for the script; the portal page with the message; else an error page.

    The page comes back only when the view has already found the link (g.checklist):
    an error before that never looks a token up, so it cannot tell a good token from
    a guessed one, nor escape the failed-lookup limit.
    """
    message = message_for(exc)
    if g.get("checklist") is None:
        return _error_page(message, status)
    checklist, token = g.checklist, g.token
    item_id = (request.view_args or {}).get("item_id")
    from .portal import render_page, slot_json, wants_json

    if wants_json():
        return slot_json(checklist, token, item_id, [("error", message)], status)
    return render_page(checklist, token, status, [("error", message, item_id)])


def _error_page(message: str, status: int):
    from .portal import wants_json

    if status == 404:
        _adopt_language_of_link()
    if wants_json():
        return jsonify(
            {"ok": False, "messages": [{"category": "error", "text": message}]}
        ), status
    template = "link_gone.html" if status == 404 and _is_link_url() else "error.html"
    return render_template(template, message=message, status=status), status


def _is_link_url() -> bool:
    return bool((request.view_args or {}).get("token")) or request.path.startswith(
        ("/c/", "/join/")
    )


def _adopt_language_of_link() -> None:
    # A dead link has no client to take a language from: the browser's choice stands.
    g.pop("client_language", None)


def _not_found(exc: HTTPException):
    if _is_link_url():
        return _answer(LinkNotFound("unknown link"), 404)
    return _error_page(_("This page does not exist."), 404)


def _too_many(exc: HTTPException):
    return _error_page(
        _("Too many attempts from your connection. Please wait a while and try again."),
        429,
    )


def _http_error(exc: HTTPException):
    return _error_page(
        _("This request could not be understood. Go back to the page and try again."),
        exc.code or 400,
    )


def _server_error(exc: Exception):
    return _error_page(message_for(exc), 500)
