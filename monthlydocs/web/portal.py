"""The client portal: the page behind a link, its actions, and the invite page.

Every action is a plain form POST answered with a redirect to the page (no JavaScript
needed). ``portal.js`` sends the same forms with XMLHttpRequest and the header
``X-Requested-With``; those get JSON holding the re-rendered slot and summary, which
the script swaps in without a reload.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import format_date, format_decimal, get_locale, ngettext, refresh
from flask_babel import gettext as _

from .. import portal, storage
from ..clients import get_client
from ..config import LANGUAGES
from ..errors import LinkNotFound, UploadError
from . import get_db, get_settings, now

bp = Blueprint("portal", __name__)

LANGUAGE_NAMES = {
    "en": "English",
    "fr": "Français",
    "de": "Deutsch",
    "es": "Español",
    "id": "Bahasa Indonesia",
}
# Endpoints whose URL holds a token: unknown tokens there count against the rate limit.
LINK_ENDPOINTS = (
    "portal.page",
    "portal.upload",
    "portal.not_applicable",
    "portal.undo",
    "portal.remove",
    "portal.join",
)


# Forms posted to a link check their CSRF token only once the link is known to be good
# (see _checklist and join): an unknown link then gets the same 404, counted by the
# failed-lookup limit, with or without a token, so a missing token tells a guesser
# nothing. Every other POST is checked by CSRFProtect before its view, as usual.
CSRF_AFTER_LOOKUP = (
    "portal.upload",
    "portal.not_applicable",
    "portal.undo",
    "portal.remove",
    "portal.join",
)


class NoFileChosen(UploadError):
    code = "no_file"


def defer_csrf(app) -> None:
    """Leave the CSRF check of the link forms to the views, after the link lookup."""
    csrf = app.extensions["csrf"]
    for endpoint in CSRF_AFTER_LOOKUP:
        view = app.view_functions[endpoint]
        csrf.exempt(f"{view.__module__}.{view.__name__}")


def _check_csrf() -> None:
    """CSRFProtect's check, for a POST whose link was found (raises CSRFError)."""
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        current_app.extensions["csrf"].protect()


def init_limits(app, settings) -> None:
    """Rate limits, per client address: failed link lookups, and registrations."""
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri="memory://",
        headers_enabled=False,
    )
    app.extensions["monthlydocs.limiter"] = limiter
    failed_links = limiter.shared_limit(
        settings.portal.failed_link_limit,
        scope="links",
        deduct_when=lambda response: response.status_code == 404,
    )
    registrations = limiter.limit(
        settings.portal.registration_limit,
        methods=["POST"],
        deduct_when=lambda response: response.status_code in (200, 303),
    )
    for endpoint in LINK_ENDPOINTS:
        app.view_functions[endpoint] = failed_links(app.view_functions[endpoint])
    app.view_functions["portal.join"] = registrations(app.view_functions["portal.join"])


def wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    settings = get_settings()
    return {
        "firm": settings.firm,
        "has_logo": bool(settings.portal.logo),
        "languages": LANGUAGE_NAMES,
        "language_url": _language_url,
        "file_size": file_size,
        "format_day": lambda text: format_date(date.fromisoformat(text), "long"),
    }


def _language_url(code: str) -> str:
    args = {k: v for k, v in request.args.items() if k != "lang"}
    endpoint = request.endpoint if request.endpoint and request.url_rule else None
    if request.method != "GET":
        # The answer to a form: the language links lead to the link's page.
        token = (request.view_args or {}).get("token")
        if token and request.blueprint == "portal":
            target = "portal.join" if endpoint == "portal.join" else "portal.page"
            return url_for(target, token=token, lang=code)
        return url_for("portal.home", lang=code)
    if endpoint is None:
        return url_for("portal.home", lang=code)
    return url_for(endpoint, **(request.view_args or {}), **args, lang=code)


def file_size(size: int) -> str:
    if size < 1024 * 1024:
        return _("%(size)s kB", size=format_decimal(max(1, round(size / 1024))))
    return _("%(size)s MB", size=format_decimal(round(size / 1024 / 1024, 1)))


# -- pages ---------------------------------------------------------------------------


@bp.get("/")
def home():
    return render_template("portal/home.html")


@bp.get("/logo")
def logo():
    settings = get_settings()
    if not settings.portal.logo:
        abort(404)
    path = settings.resolve(settings.portal.logo)
    if not path.is_file():
        abort(404)
    mimetype = {
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".webp": "image/webp",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
    }.get(path.suffix.lower(), "application/octet-stream")
    return send_file(path, mimetype=mimetype, max_age=3600)


@bp.get("/c/<token>")
def page(token: str):
    # Messages left by one of the page's own forms; such a view is not a new visit.
    flashed = get_flashed_messages(with_categories=True)
    db, settings = get_db(), get_settings()
    grace = settings.portal.link_grace_days
    if flashed:
        checklist = portal.find_checklist(db, token, now(), grace)
    else:
        checklist = portal.open_checklist(db, token, now(), grace)
    messages = []
    for category, text in flashed:
        kind, _sep, item = category.partition(":")
        messages.append((kind, text, int(item) if item.isdigit() else None))
    return render_page(checklist, token, messages=messages)


Message = tuple[str, str, int | None]  # (ok | info | error, text, item id or None)


def render_page(
    checklist, token: str, status: int = 200, messages: list[Message] | None = None
):
    view = portal.page(get_db(), checklist)
    if g.get("client_language") != view.client["language"]:
        g.client_language = view.client["language"]
        refresh()
    known = {slot.id for slot in view.slots}
    slot_messages: dict[int, list[tuple[str, str]]] = {}
    page_messages = []
    for category, text, item_id in messages or []:
        if item_id in known:
            slot_messages.setdefault(item_id, []).append((category, text))
        else:
            page_messages.append((category, text))
    return render_template(
        "portal/page.html",
        view=view,
        token=token,
        page_messages=page_messages,
        slot_messages=slot_messages,
        **_page_context(view),
    ), status


def _page_context(view: portal.PortalPage) -> dict[str, Any]:
    from ..i18n import period_label

    settings = get_settings()
    return {
        "period_label": period_label(view.checklist["period"], str(get_locale())),
        "max_upload_mb": settings.storage.max_upload_mb,
        "max_upload_bytes": storage.max_bytes(settings.storage.max_upload_mb),
        "accept": storage.ACCEPT_HINT,
    }


def _checklist(token: str) -> dict[str, Any]:
    """The checklist of an action's link, then the form's CSRF check.

    In that order: an unknown link is a 404 (counted against the address) whatever the
    form holds; a good link with a bad CSRF token gets its page back with a message.
    """
    settings = get_settings()
    checklist = portal.find_checklist(
        get_db(), token, now(), settings.portal.link_grace_days
    )
    g.client_language = get_client(get_db(), checklist["client_id"])["language"]
    g.checklist, g.token = checklist, token
    refresh()  # the language may have been settled before the client was known
    _check_csrf()
    return checklist


def done(
    checklist,
    token: str,
    item_id: int | None,
    messages: list[tuple[str, str]],
    status: int = 200,
):
    """The answer to an action: JSON for the script, else flash and redirect."""
    if wants_json():
        return slot_json(checklist, token, item_id, messages, status)
    if status >= 400:
        return render_page(
            checklist, token, status, [(c, t, item_id) for c, t in messages]
        )
    for category, text in messages:
        flash(text, f"{category}:{item_id}")
    return redirect(url_for("portal.page", token=token, _anchor=f"slot-{item_id}"), 303)


def slot_json(checklist, token, item_id, messages, status=200):
    view = portal.page(get_db(), _reload(checklist))
    context = {"view": view, "token": token, **_page_context(view)}
    by_id = {s.id: s for s in view.slots}
    body = {
        "ok": status < 400,
        "messages": [{"category": c, "text": t} for c, t in messages],
        "summary": render_template("portal/_summary.html", **context),
    }
    if item_id in by_id:
        body["slot"] = render_template(
            "portal/_slot.html",
            slot=by_id[item_id],
            slot_messages={item_id: list(messages)},
            **context,
        )
    return jsonify(body), status


def _reload(checklist):
    from ..checklists import get_checklist

    return get_checklist(get_db(), checklist["id"])


@bp.post("/c/<token>/items/<int:item_id>/upload")
def upload(token: str, item_id: int):
    checklist = _checklist(token)
    chosen = [part for part in request.files.getlist("files") if part.filename]
    if not chosen:
        raise NoFileChosen("no file in the form")
    messages: list[tuple[str, str]] = []
    stored = 0
    first_error: UploadError | None = None
    for part in chosen:
        try:
            result = portal.upload(
                get_db(), get_settings(), checklist, item_id, part.stream, now()
            )
        except UploadError as exc:
            from .errors import message_for

            first_error = first_error or exc
            messages.append(("error", message_for(exc)))
            continue
        if result.duplicate:
            messages.append(
                (
                    "info",
                    _(
                        "“%(name)s” was already sent: it is kept only once.",
                        name=result.document["original_filename"],
                    ),
                )
            )
        else:
            stored += 1
    if stored:
        messages.insert(
            0,
            (
                "ok",
                ngettext(
                    "%(num)d file received, thank you.",
                    "%(num)d files received, thank you.",
                    stored,
                ),
            ),
        )
    if first_error is not None and not stored:
        from .errors import status_for

        return done(checklist, token, item_id, messages, status_for(first_error))
    return done(checklist, token, item_id, messages)


@bp.post("/c/<token>/items/<int:item_id>/not-applicable")
def not_applicable(token: str, item_id: int):
    checklist = _checklist(token)
    portal.mark_not_applicable(
        get_db(), checklist, item_id, request.form.get("reason"), now()
    )
    return done(
        checklist, token, item_id, [("ok", _("Noted: nothing to send for this one."))]
    )


@bp.post("/c/<token>/items/<int:item_id>/undo")
def undo(token: str, item_id: int):
    checklist = _checklist(token)
    portal.undo_not_applicable(get_db(), checklist, item_id, now())
    return done(
        checklist,
        token,
        item_id,
        [("ok", _("Undone: this document is on your list again."))],
    )


@bp.post("/c/<token>/documents/<int:document_id>/remove")
def remove(token: str, document_id: int):
    checklist = _checklist(token)
    document = portal.remove_document(
        get_db(), get_settings(), checklist, document_id, now()
    )
    return done(
        checklist,
        token,
        document["item_id"],
        [("ok", _("“%(name)s” removed.", name=document["original_filename"]))],
    )


# -- self-registration ---------------------------------------------------------------


@bp.route("/join/<token>", methods=["GET", "POST"])
def join(token: str):
    from ..clients import ClientInput
    from ..errors import InvalidEmail, InvalidLanguage, InvalidPhone, MonthlydocsError

    db, settings = get_db(), get_settings()
    portal.check_invite(db, settings, token)
    _check_csrf()  # only now: see CSRF_AFTER_LOOKUP
    form = {
        key: request.form.get(key, "").strip()
        for key in ("name", "email", "phone", "language")
    }
    if request.method == "GET":
        form["language"] = str(get_locale())
        return render_template("portal/join.html", form=form, errors={})
    errors: dict[str, str] = {}
    if form["language"] in LANGUAGES:
        g.lang_chosen = form["language"]
        refresh()
    else:
        errors["language"] = _("Choose a language from the list.")
    try:
        if not errors:
            portal.register_client(
                db,
                settings,
                token,
                ClientInput(
                    form["name"], form["email"], form["phone"] or None, form["language"]
                ),
                now(),
            )
    except InvalidEmail:
        errors["email"] = _(
            "This email address does not look right. Check it and try again."
        )
    except InvalidPhone:
        errors["phone"] = _(
            "This phone number does not look right. Write it with "
            "its country code, for example +33 6 12 34 56 78."
        )
    except InvalidLanguage:
        errors["language"] = _("Choose a language from the list.")
    except LinkNotFound:
        raise
    except MonthlydocsError:
        errors["name"] = _("Please write your name or your company's name.")
    if errors:
        return render_template("portal/join.html", form=form, errors=errors), 400
    return render_template("portal/joined.html")
