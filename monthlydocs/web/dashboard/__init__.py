"""The staff dashboard: a blueprint at /dashboard, behind a login.

Each module adds its views to ``bp``: ``auth`` (login, logout), ``home`` (the overview
and its live feed), ``checklist`` (one checklist: review, reminders, link), ``clients``
(clients and CSV import), ``doc_templates`` (templates and their slots), ``generating``
(bulk generation), ``exporting`` (the ZIP download) and ``integrations`` (webhooks and
their delivery logs). Every view but the login page requires a signed-in staff user
(checked once, in ``_require_staff``); a test walks the URL map to prove that no route
escapes it. Every view is one call of the core; the staff member's email is the actor
the audit trail records.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, refresh
from flask_babel import gettext as _

from ...errors import MonthlydocsError
from .. import get_db, get_settings, now

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

# A session lasts a working day, then the staff member signs in again.
SESSION_HOURS = 12
# Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"dashboard.login"})
# Failed sign-ins allowed per address, and per account from any address.
LOGIN_LIMIT = "10 per minute;50 per hour"
LOGIN_LIMIT_PER_ACCOUNT = "20 per hour"
# How often the pages ask for new events (milliseconds).
LIVE_INTERVAL_MS = 3000
# Types a browser may show inside the page; never HTML, SVG or anything scriptable.
PREVIEWABLE = {
    "application/pdf": "pdf",
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "image",
}
# Pages that embed a PDF preview allow frames from the app itself, and only those.
FRAME_CSP_EXTRA = "; frame-src 'self'"


def init_app(app: Flask) -> None:
    """Rate limits on the login form, with the app's limiter (after init_limits)."""
    from flask_limiter.util import get_remote_address

    limiter = app.extensions["monthlydocs.limiter"]
    failed = {"methods": ["POST"], "deduct_when": lambda response: (
        response.status_code != 303)}
    view = app.view_functions["dashboard.login"]
    view = limiter.limit(LOGIN_LIMIT, key_func=get_remote_address, **failed)(view)
    view = limiter.limit(LOGIN_LIMIT_PER_ACCOUNT, key_func=_login_account,
                         **failed)(view)
    app.view_functions["dashboard.login"] = view


def _login_account() -> str:
    return "login:" + request.form.get("email", "").strip().lower()


# -- who is signed in ------------------------------------------------------------------


def session_key(user: dict[str, Any]) -> str:
    """Changes when the password does: a new password ends every open session."""
    return hashlib.sha256(user["password_hash"].encode()).hexdigest()[:16]


def sign_in(user: dict[str, Any]) -> None:
    from ...timeutil import iso

    session.clear()  # nothing from before the login survives it
    session["staff"] = {"id": user["id"], "key": session_key(user),
                        "since": iso(now())}


def sign_out() -> None:
    session.clear()


def current_staff() -> dict[str, Any] | None:
    """The signed-in user, or None (no session, expired, removed, password changed)."""
    if "staff" in g:
        return g.staff
    from ...timeutil import parse_iso
    from ...users import get_user

    g.staff = None
    held = session.get("staff")
    if not isinstance(held, dict):
        return None
    since = parse_iso(held.get("since"))
    if since is None or now() - since > timedelta(hours=SESSION_HOURS):
        return None
    user = get_user(get_db(), held.get("id") or 0)
    if user is None or held.get("key") != session_key(user):
        return None
    g.staff = user
    return user


def actor() -> str:
    """Who the audit trail records for this request's changes."""
    staff = current_staff()
    return staff["email"] if staff else "anonymous"


def choose_language(staff: dict[str, Any] | None) -> None:
    """The dashboard speaks the user's own language, else the browser's. Not the
    portal's ?lang= or its cookie: those say which language a client's page was
    looked at in (a staff member checking a link in German), not what staff read."""
    from ...config import LANGUAGES

    chosen = staff["language"] if staff is not None else None
    if chosen not in LANGUAGES:
        chosen = (request.accept_languages.best_match(LANGUAGES)
                  or get_settings().firm.default_language)
    g.lang_chosen = chosen
    refresh()


@bp.before_request
def _require_staff():
    staff = current_staff()
    choose_language(staff)
    if request.endpoint in PUBLIC_ENDPOINTS or staff is not None:
        return None
    if wants_json() or request.path.startswith(url_for("dashboard.live")):
        return jsonify({"ok": False, "error": _("Please sign in again.")}), 401
    wanted = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("dashboard.login", next=wanted), 303)


def wants_json() -> bool:
    return request.headers.get("X-Requested-With") == "XMLHttpRequest"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path of this site, nothing else."""
    home = url_for("dashboard.overview")
    if not target or not target.startswith(bp.url_prefix + "/"):
        return home
    if target.startswith("//") or "\\" in target or any(ord(c) < 32 for c in target):
        return home
    return target


# -- what every dashboard page needs --------------------------------------------------


def today() -> date:
    from ...timeutil import local_date

    return local_date(now(), get_settings().firm.timezone)


def moment(stamp: str | None, form: str = "short") -> str:
    """An ISO time from the database, in the firm's zone and the page's language."""
    if not stamp:
        return ""
    return _formatted(stamp, form, str(get_locale()), get_settings().firm.timezone)


def day(value: str | date | None, form: str = "medium") -> str:
    if not value:
        return ""
    text = value if isinstance(value, str) else value.isoformat()
    return _formatted(text[:10], form, str(get_locale()), None)


@lru_cache(maxsize=4096)
def _formatted(stamp: str, form: str, locale: str, timezone: str | None) -> str:
    """Dates repeat down a table (due dates, reminders): each is formatted once.

    Dates are written with the month's name ("Dec 10, 2026", "10 déc. 2026"): a firm
    in one country and clients in another must never wonder whether 12/10 is in
    October or December. A moment adds the time, without seconds.
    """
    from babel.dates import format_date as babel_date
    from babel.dates import format_time as babel_time

    from ...timeutil import parse_iso

    if form == "short":
        form = "medium"
    if timezone is None:
        return babel_date(date.fromisoformat(stamp), form, locale=locale)
    zone = ZoneInfo(timezone)
    at = parse_iso(stamp).astimezone(zone)
    return (
        f"{babel_date(at.date(), form, locale=locale)} "
        f"{babel_time(at, 'short', tzinfo=zone, locale=locale)}"
    )


def period_name(period: str) -> str:
    return _period_name(period, str(get_locale())) or _("One-off")


@lru_cache(maxsize=1024)
def _period_name(period: str, locale: str) -> str:
    from ...i18n import period_label

    return period_label(period, locale)


def state_labels() -> dict[str, str]:
    return {
        "complete": _("Complete"),
        "partial": _("Partial"),
        "opened": _("Opened, nothing sent"),
        "not_opened": _("Not opened"),
        "overdue": _("Overdue"),
        "to_call": _("To call"),
    }


def item_labels() -> dict[str, str]:
    return {
        "to_send": _("To send"),
        "received": _("Received"),
        "not_applicable": _("Not applicable"),
        "rejected": _("To send again"),
        "approved": _("Approved"),
    }


def review_labels() -> dict[str, str]:
    return {
        "pending": _("To review"),
        "approved": _("Approved"),
        "rejected": _("Rejected"),
    }


@bp.context_processor
def _dashboard_globals() -> dict[str, Any]:
    from ...overview import latest_event_id

    staff = current_staff()
    return {
        "staff": staff,
        "moment": moment,
        "day": day,
        "period_name": period_name,
        "state_labels": state_labels(),
        "item_labels": item_labels(),
        "review_labels": review_labels(),
        "latest_event": latest_event_id(get_db()) if staff else 0,
        "live_interval": LIVE_INTERVAL_MS,
    }


def done(message: str, target: str, category: str = "ok"):
    """Flash ``message`` and go to ``target`` (the page an action belongs to)."""
    flash(message, category)
    return redirect(target, 303)


# -- errors inside the dashboard ------------------------------------------------------


def error_message(exc: Exception) -> str:
    """What staff read about a refused action, in their language; the core's own
    English sentence follows where it names the detail (which file, which column)."""
    from ...errors import (
        AmbiguousClient,
        ChecklistNotFound,
        ClientNotFound,
        DuplicateClient,
        ImportFileError,
        InvalidEmail,
        InvalidLanguage,
        InvalidPeriod,
        InvalidPhone,
        TemplateError,
        TemplateNotFound,
    )
    from ...overview import NothingToRemind
    from ...review import DocumentNotFound

    table: list[tuple[type[Exception], str]] = [
        (DocumentNotFound, _("This document no longer exists.")),
        (ChecklistNotFound, _("This checklist no longer exists.")),
        (ClientNotFound, _("No client matches.")),
        (AmbiguousClient, _("Several clients match: use the email address.")),
        (TemplateNotFound, _("This template does not exist.")),
        (DuplicateClient, _("Another client already uses this email address.")),
        (InvalidEmail, _("This email address does not look right.")),
        (InvalidPhone, _("This phone number does not look right: write it with its "
                         "country code, for example +33 6 12 34 56 78.")),
        (InvalidLanguage, _("Choose a language from the list.")),
        (InvalidPeriod, _("This period does not fit the template: write it like "
                          "2026-12 (monthly), 2026-Q4 (quarterly) or 2026 (yearly).")),
        (NothingToRemind, _("Nothing to remind: the checklist is complete, archived, "
                            "or its client is not active.")),
        (ImportFileError, _("This file cannot be imported.")),
        (TemplateError, _("The template was not saved.")),
    ]
    for kind, text in table:
        if isinstance(exc, kind):
            detailed = isinstance(exc, ImportFileError | TemplateError)
            return f"{text} ({exc})" if detailed else text
    return _("This was not done: %(reason)s", reason=str(exc))


def _not_found_error(exc: Exception) -> bool:
    from ...errors import ChecklistNotFound, ClientNotFound, TemplateNotFound
    from ...overview import ItemNotFound
    from ...portal import ItemNotFound as PortalItemNotFound
    from ...review import DocumentNotFound

    return isinstance(exc, DocumentNotFound | ChecklistNotFound | ClientNotFound
                      | TemplateNotFound | ItemNotFound | PortalItemNotFound)


@bp.errorhandler(MonthlydocsError)
def _core_error(exc: MonthlydocsError):
    status = 404 if _not_found_error(exc) else 400
    if status == 400:
        current_app.logger.info("dashboard refused %s: %s", type(exc).__name__, exc)
    return page_error(error_message(exc), status)


@bp.errorhandler(404)
def _not_found(exc):
    return page_error(_("This page does not exist."), 404)


def page_error(message: str, status: int):
    if wants_json():
        return jsonify({"ok": False, "error": message}), status
    return render_template("dashboard/error.html", message=message), status


from . import (  # noqa: E402  (the modules add their views to bp)
    auth,
    checklist,
    clients,
    doc_templates,
    exporting,
    generating,
    home,
    integrations,
)

__all__ = [
    "auth", "bp", "checklist", "clients", "doc_templates", "exporting", "generating",
    "home", "init_app", "integrations",
]
