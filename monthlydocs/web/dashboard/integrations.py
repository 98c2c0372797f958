"""Webhooks: the list with the state of their deliveries, adding one (its signing
secret is shown once, in the answer to the form, never again), removing one, and the
delivery log of each. The CLI's `monthlydocs webhook ...` does the same with the same
core."""

from __future__ import annotations

import urllib.parse
from typing import Any

from flask import render_template, request, url_for
from flask_babel import gettext as _

from ... import webhooks as core
from .. import get_db, now
from . import actor, bp, done, page_error

# The longest address the form takes; receivers' URLs are far shorter.
MAX_URL_LENGTH = 2000
# Deliveries a webhook's page shows, newest first.
LOG_LIMIT = 50


def event_labels() -> dict[str, str]:
    """What each public event means, in the staff member's language."""
    labels = {
        "client.created": _("A client was added"),
        "checklist.created": _("A checklist was created"),
        "checklist.opened": _("A client opened their checklist"),
        "document.uploaded": _("A client sent a document"),
        "document.approved": _("A document was approved"),
        "document.rejected": _("A document was rejected"),
        "checklist.completed": _("A checklist is complete"),
        "reminder.sent": _("A reminder was sent"),
        "message.failed": _("An email or text message could not be sent"),
    }
    return {name: labels.get(name, name) for name in core.EVENT_NAMES}


def delivery_labels() -> dict[str, str]:
    return {
        "pending": _("Waiting"),
        "retrying": _("Failed, will be tried again"),
        "sending": _("Sending"),
        "delivered": _("Delivered"),
        "failed": _("Given up"),
    }


def delivery_state(state: str | None, error: str | None) -> str:
    """A delivery's state for the page: a pending one that failed is 'retrying'."""
    if state == "pending" and error:
        return "retrying"
    return state or ""


def _list_url() -> str:
    return url_for("dashboard.webhooks")


def _render_list(form: dict[str, Any], errors: dict[str, str] | None = None,
                 added: dict[str, Any] | None = None, status: int = 200):
    return render_template(
        "dashboard/webhooks.html",
        webhooks=core.list_webhooks(get_db()),
        form=form,
        errors=errors or {},
        added=added,
        event_labels=event_labels(),
        delivery_labels=delivery_labels(),
        delivery_state=delivery_state,
    ), status


@bp.get("/webhooks")
def webhooks():
    return _render_list({"url": "", "events": []})


def _url_problem(url: str) -> str | None:
    """Why the address cannot be used, in the staff member's language; None if it can."""
    if not url:
        return _("Write the address of the receiver.")
    try:
        if len(url) > MAX_URL_LENGTH:
            raise core.InvalidWebhook("too long")
        core.check_url(url)
    except core.InvalidWebhook:
        try:
            parts = urllib.parse.urlsplit(url)
            with_login = bool(parts.username or parts.password)
        except ValueError:
            with_login = False
        if with_login:
            return _("The address cannot carry a user name or password: the receiver "
                     "checks the signature of each delivery instead.")
        return _("This address does not look right: write it in full, starting with "
                 "https://, for example https://crm.example/hooks/monthlydocs.")
    return None


@bp.post("/webhooks/new")
def new_webhook():
    url = request.form.get("url", "").strip()
    chosen = set(request.form.getlist("event"))
    events = [name for name in core.EVENT_NAMES if name in chosen]
    form = {"url": url, "events": events}
    errors = {}
    if problem := _url_problem(url):
        errors["url"] = problem
    if not events:
        errors["events"] = _("Choose at least one event to send.")
    if errors:
        return _render_list(form, errors, status=400)
    webhook_id, secret = core.add_webhook(get_db(), url, events, now(), actor=actor())
    added = {"id": webhook_id, "url": url, "secret": secret,
             "unencrypted": url.lower().startswith("http://")}
    # The answer itself shows the secret: a redirect would have to carry it in the
    # session cookie. Pages are never cached (security.py sets no-store).
    return _render_list({"url": "", "events": []}, added=added)


@bp.get("/webhooks/<int:webhook_id>")
def webhook(webhook_id: int):
    db = get_db()
    failing = request.args.get("failing") == "1"
    found = next((w for w in core.list_webhooks(db) if w["id"] == webhook_id), None)
    if found is None:
        return page_error(_("This webhook no longer exists."), 404)
    return render_template(
        "dashboard/webhook.html",
        webhook=found,
        deliveries=core.delivery_log(db, webhook_id, limit=LOG_LIMIT, failing=failing),
        failing=failing,
        limit=LOG_LIMIT,
        event_labels=event_labels(),
        delivery_labels=delivery_labels(),
        delivery_state=delivery_state,
    )


@bp.post("/webhooks/<int:webhook_id>/remove")
def remove_webhook(webhook_id: int):
    try:
        row = core.remove_webhook(get_db(), webhook_id, now(), actor=actor())
    except core.WebhookNotFound:
        return done(_("This webhook no longer exists."), _list_url(), "error")
    return done(_("Webhook removed: nothing more is sent to %(url)s.", url=row["url"]),
                _list_url())
