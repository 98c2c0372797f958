"""Turning a message row into what its channel sends, at the moment it is sent.

Content is composed at send time, from the current state of the checklists, so a retried
message never shows documents as missing that arrived in the meantime.
"""

from __future__ import annotations

import json
from typing import Any

from sqlite_utils import Database

from .config import Settings
from .errors import ClientNotFound, PermanentDeliveryError

CLIENT_KINDS = ("link", "reminder", "rejection")
FIRM_KINDS = ("notify_completed", "notify_uploaded", "digest")


def open_backend(settings: Settings, channel: str):
    if channel == "email":
        from .channels.email import backend_for

        return backend_for(settings)
    if channel == "sms":
        from .channels.sms import sms_backend_for

        return sms_backend_for(settings)
    raise PermanentDeliveryError(f"unknown channel {channel!r}")


def build_for_channel(db: Database, settings: Settings, message: dict[str, Any]):
    """An OutgoingEmail for email, an Sms for SMS; PermanentDeliveryError if pointless."""
    kind, language = message["kind"], message["language"]
    context = _context(db, settings, message)
    if message["channel"] == "sms":
        from .channels.sms import Sms
        from .messages import render_sms

        return Sms(to=message["recipient"], body=render_sms(kind, language, context))
    from .channels.email import build_message
    from .messages import compose

    composed = compose(kind, language, context)
    name = context["client"]["name"] if "client" in context else settings.firm.name
    return build_message(settings, name, message["recipient"], composed, language)


def _context(
    db: Database, settings: Settings, message: dict[str, Any]
) -> dict[str, Any]:
    from .messages import context as contexts

    kind, language = message["kind"], message["language"]
    ids = [int(i) for i in json.loads(message["checklist_ids"] or "[]")]
    if kind in FIRM_KINDS:
        return contexts.firm_notification_context(db, settings, message, ids)
    if kind not in CLIENT_KINDS:
        raise PermanentDeliveryError(f"unknown kind of message {kind!r}")
    client = _client(db, message["client_id"])
    if kind == "link":
        return contexts.link_context(db, settings, client, ids, language)
    # A rejection shows the same picture as a reminder: what to send again and why.
    return contexts.reminder_context(db, settings, client, message, language)


def _client(db: Database, client_id: int | None) -> dict[str, Any]:
    from .clients import get_client

    try:
        client = get_client(db, client_id or 0)
    except ClientNotFound:
        raise PermanentDeliveryError("the client no longer exists") from None
    if client["status"] == "archived":
        raise PermanentDeliveryError("the client is archived")
    return client
