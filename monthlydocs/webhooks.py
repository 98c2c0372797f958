"""Webhooks: tell the firm's other systems what happened, signed, with retries.

The events table is the source. A run first fans the events recorded since each
webhook's cursor out into deliveries, one row per (webhook, event): the UNIQUE pair means
two runs queueing at once add each delivery once. It then sends the due deliveries like
the outbox sends messages: each is claimed with a conditional UPDATE committed before the
request leaves, POSTed with an HMAC-SHA256 signature, then marked delivered or given a
later ``next_attempt_at``. Delivery is at least once: a run killed between the request
and the mark sends that one delivery again, so receivers should ignore an event id they
have already handled. Order is not guaranteed once a delivery has been retried.

A run stops sending to a webhook after its first failure, leaving the rest of that
webhook's deliveries for the next run: a receiver that is down costs one timeout per run,
not one per event.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from .db import write_transaction
from .errors import MonthlydocsError
from .events import Event, record
from .outbox import claimer
from .timeutil import iso, utcnow

log = logging.getLogger(__name__)

# Public name -> (internal action, required data.kind or None).
PUBLIC_EVENTS: dict[str, tuple[Event, str | None]] = {
    "client.created": (Event.CLIENT_CREATED, None),
    "checklist.created": (Event.CHECKLIST_CREATED, None),
    "checklist.opened": (Event.CHECKLIST_OPENED, None),
    "document.uploaded": (Event.DOCUMENT_UPLOADED, None),
    "document.approved": (Event.DOCUMENT_APPROVED, None),
    "document.rejected": (Event.DOCUMENT_REJECTED, None),
    "checklist.completed": (Event.CHECKLIST_COMPLETED, None),
    "reminder.sent": (Event.MESSAGE_SENT, "reminder"),
    "message.failed": (Event.MESSAGE_FAILED, None),
}
EVENT_NAMES = tuple(PUBLIC_EVENTS)

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Monthlydocs-Signature"
EVENT_HEADER = "Monthlydocs-Event"
DELIVERY_HEADER = "Monthlydocs-Delivery"
USER_AGENT = "monthlydocs-webhooks/1"
DEFAULT_TIMEOUT_S = 10
MAX_ATTEMPTS = 8
# Wait before attempt n+1 after n failures: about two days from first try to last.
BACKOFF = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
]
# A claim older than this belongs to a run that died: no request lives this long.
STALE_CLAIM = timedelta(minutes=5)
# What is kept of a failing receiver's answer, for the delivery log.
ERROR_BODY_BYTES = 300


class WebhookNotFound(MonthlydocsError):
    pass


class InvalidWebhook(MonthlydocsError):
    pass


# -- managing webhooks -------------------------------------------------------------------


def parse_events(names: str | list[str] | None) -> list[str]:
    """Public event names from "a,b" or a list; empty, "all" or "*" means every one."""
    if isinstance(names, str):
        names = names.split(",")
    wanted = [name.strip().lower() for name in names or [] if name.strip()]
    if not wanted or wanted in (["all"], ["*"]):
        return list(EVENT_NAMES)
    unknown = [name for name in wanted if name not in PUBLIC_EVENTS]
    if unknown:
        raise InvalidWebhook(
            f"Unknown event(s) {', '.join(unknown)}: choose among "
            f"{', '.join(EVENT_NAMES)} (or all)"
        )
    return [name for name in EVENT_NAMES if name in wanted]


def check_url(url: str) -> str:
    text = (url or "").strip()
    try:
        parts = urllib.parse.urlsplit(text)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a broken [IPv6] address
        usable = False
    if not usable:
        raise InvalidWebhook(
            f"Webhook URL {url!r} must be an http:// or https:// address, like "
            "https://crm.example/hooks/monthlydocs"
        )
    if parts.username or parts.password:
        raise InvalidWebhook(
            "A webhook URL cannot carry a user name or password: receivers check the "
            "signature instead (see the README)"
        )
    return text


def add_webhook(
    db: Database, url: str, events: list[str], now: datetime, actor: str = "cli"
) -> tuple[int, str]:
    """Register a receiver for events recorded from now on; returns (id, secret).

    The secret is kept in the clear, unlike API tokens: signing needs it. It is shown
    once here and never again.
    """
    url = check_url(url)
    events = parse_events(events)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(db):
        latest = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        webhook_id = db.execute(
            "INSERT INTO webhooks (url, events, secret, created_at, last_event_id)"
            " VALUES (?, ?, ?, ?, ?)",
            [url, json.dumps(events), secret, iso(now), latest],
        ).lastrowid
        _record(db, Event.WEBHOOK_ADDED, now, actor, webhook_id, url, events)
    return webhook_id, secret


def _record(
    db: Database,
    action: Event,
    now: datetime,
    actor: str,
    webhook_id: int,
    url: str,
    events: list[str],
) -> None:
    """The audit trail names the receiver by its host only: the API's event feed shows
    every event, and a URL's path or query often carries the receiver's own secret."""
    record(
        db,
        action,
        now,
        actor=actor,
        subject_type="webhook",
        subject_id=webhook_id,
        data={"host": urllib.parse.urlsplit(url).hostname, "events": events},
    )


def get_webhook(db: Database, webhook_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM webhooks WHERE id = ?", [webhook_id]))
    if not rows:
        raise WebhookNotFound(
            f"No webhook #{webhook_id}: see `monthlydocs webhook list` for the ids"
        )
    return rows[0]


def list_webhooks(db: Database) -> list[dict[str, Any]]:
    """Webhooks with their delivery counts by state and their latest attempt: its
    status code, state, error and time (``last_*``, None before the first)."""
    rows = list(
        db.query(
            "SELECT w.id, w.url, w.events, w.created_at,"
            " (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id"
            "  AND d.state = 'delivered') AS delivered,"
            " (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id"
            "  AND d.state IN ('pending', 'sending')) AS pending,"
            " (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id"
            "  AND d.state = 'failed') AS failed,"
            " last.status_code AS last_status, last.state AS last_state,"
            " last.last_error AS last_error,"
            " coalesce(last.delivered_at, last.claimed_at) AS last_at"
            " FROM webhooks w LEFT JOIN webhook_deliveries last ON last.id = ("
            "  SELECT d.id FROM webhook_deliveries d WHERE d.webhook_id = w.id"
            "  AND d.attempts > 0 ORDER BY coalesce(d.delivered_at, d.claimed_at) DESC,"
            "  d.id DESC LIMIT 1)"
            " ORDER BY w.id"
        )
    )
    for row in rows:
        row["events"] = json.loads(row["events"])
    return rows


def remove_webhook(
    db: Database,
    webhook_id: int,
    now: datetime | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """Delete a webhook with its queue and delivery log; with ``now``, the audit trail
    records who removed it."""
    with write_transaction(db):
        row = get_webhook(db, webhook_id)
        db.execute("DELETE FROM webhooks WHERE id = ?", [webhook_id])
        if now is not None:
            _record(
                db,
                Event.WEBHOOK_REMOVED,
                now,
                actor,
                webhook_id,
                row["url"],
                json.loads(row["events"]),
            )
    return row


def delivery_log(
    db: Database,
    webhook_id: int | None = None,
    *,
    limit: int = 50,
    failing: bool = False,
) -> list[dict[str, Any]]:
    """The latest deliveries, newest first: status code, attempts and last error.

    ``failing`` keeps those that failed and wait for a retry, or were given up.
    """
    where, params = [], []
    if webhook_id is not None:
        get_webhook(db, webhook_id)
        where.append("d.webhook_id = ?")
        params.append(webhook_id)
    if failing:
        where.append("d.last_error IS NOT NULL AND d.state IN ('pending', 'failed')")
    sql = (
        "SELECT d.*, w.url FROM webhook_deliveries d"
        " JOIN webhooks w ON w.id = d.webhook_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    return list(db.query(sql + " ORDER BY d.id DESC LIMIT ?", [*params, limit]))


# -- queueing ------------------------------------------------------------------------------


def _public_name_sql() -> str:
    """A SQL expression giving an event row's public name, or NULL (from PUBLIC_EVENTS)."""
    branches = []
    for name, (action, kind) in PUBLIC_EVENTS.items():
        test = f"e.action = '{action}'"
        if kind:
            test += f" AND json_extract(e.data, '$.kind') = '{kind}'"
        branches.append(f"WHEN {test} THEN '{name}'")
    return "CASE " + " ".join(branches) + " END"


_QUEUE_SQL = f"""
INSERT OR IGNORE INTO webhook_deliveries
    (webhook_id, event_id, event, created_at, next_attempt_at)
SELECT ?, id, name, ?, ? FROM (
    SELECT e.id, {_public_name_sql()} AS name FROM events e
    WHERE e.id > ? AND e.id <= ?
)
WHERE name IN (SELECT value FROM json_each(?))
ORDER BY id
"""


def queue(db: Database, now: datetime) -> int:
    """Add a delivery for each event recorded since each webhook's cursor; returns how
    many were added. The cursor moves in the same transaction."""
    stamp = iso(now)
    added = 0
    with write_transaction(db):
        latest = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        for webhook_id, events, cursor in db.execute(
            "SELECT id, events, last_event_id FROM webhooks WHERE last_event_id < ?",
            [latest],
        ).fetchall():
            added += db.execute(
                _QUEUE_SQL, [webhook_id, stamp, stamp, cursor, latest, events]
            ).rowcount
            db.execute(
                "UPDATE webhooks SET last_event_id = ? WHERE id = ?",
                [latest, webhook_id],
            )
    return added


# -- signing ---------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``t=<unix seconds>,v1=<hex HMAC-SHA256>`` of
    ``"<timestamp>.<body>"`` keyed with the webhook's secret."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_body(event: dict[str, Any], name: str) -> dict[str, Any]:
    """The JSON an event is published as: webhooks and the API's feed alike."""
    return {
        "id": event["id"],
        "type": name,
        "occurred_at": event["at"],
        "actor": event["actor"],
        "client_id": event["client_id"],
        "subject": {"type": event["subject_type"], "id": event["subject_id"]},
        "data": json.loads(event["data"]) if event["data"] else {},
    }


# -- delivering ------------------------------------------------------------------------------


@dataclass
class WebhookReport:
    queued: int = 0
    delivered: int = 0
    failed: int = 0
    postponed: int = 0  # left for the next run after their webhook failed in this one
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (id, url, error)


@dataclass
class Answer:
    status_code: int | None
    error: str | None  # None when delivered


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is reported as the failure it is: the signed body must not wander."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def due(db: Database, now: datetime, limit: int | None = None) -> list[tuple[int, int]]:
    """(delivery id, webhook id) of deliveries to send now, oldest first."""
    rows = db.execute(
        "SELECT id, webhook_id FROM webhook_deliveries"
        " WHERE (state = 'pending' AND next_attempt_at <= ?)"
        " OR (state = 'sending' AND claimed_at <= ?) ORDER BY id LIMIT ?",
        [iso(now), iso(now - STALE_CLAIM), -1 if limit is None else limit],
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def claim(
    db: Database, delivery_id: int, now: datetime, at: datetime | None = None
) -> dict[str, Any] | None:
    """Take a delivery for sending; None if another run has it or it is not due.

    ``now`` is the run's moment, which decides what is due; ``at`` (default ``now``) is
    when the claim is made, which another run reads to tell a live claim from a dead one.
    """
    with write_transaction(db):
        cursor = db.execute(
            "UPDATE webhook_deliveries SET state = 'sending', claimed_at = ?,"
            " claimed_by = ?, attempts = attempts + 1 WHERE id = ? AND"
            " ((state = 'pending' AND next_attempt_at <= ?)"
            "  OR (state = 'sending' AND claimed_at <= ?)) RETURNING *",
            [
                iso(at or now),
                claimer(),
                delivery_id,
                iso(now),
                iso(now - STALE_CLAIM),
            ],
        )
        columns = [c[0] for c in cursor.description]
        found = cursor.fetchone()
    return dict(zip(columns, found, strict=True)) if found else None


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    opener: urllib.request.OpenerDirector | None = None,
) -> Answer:
    """POST ``body``; 2xx is delivered, anything else an error worth retrying."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    opener = opener or urllib.request.build_opener(_NoRedirects())
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, None)
    except urllib.error.HTTPError as exc:
        answer = _read_error(exc)
        error = f"HTTP {exc.code}" + (f": {answer}" if answer else "")
        if 300 <= exc.code < 400:
            error += " (redirects are not followed: give the webhook its final URL)"
        return Answer(exc.code, error)
    except urllib.error.URLError as exc:
        return Answer(None, f"could not connect: {exc.reason}")
    except (http.client.HTTPException, OSError, ValueError) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}".rstrip(": "))


def _read_error(exc: urllib.error.HTTPError) -> str:
    """The start of a failing receiver's answer, for the log; never raises."""
    try:
        with exc:
            return exc.read(ERROR_BODY_BYTES).decode("utf-8", "replace").strip()
    except (OSError, ValueError, AttributeError, http.client.HTTPException):
        return ""


def deliver_due(
    db: Database,
    now: datetime,
    *,
    should_stop: Callable[[], bool] | None = None,
    limit: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    clock: Callable[[], datetime] = utcnow,
) -> WebhookReport:
    """Queue new events, then send every due delivery.

    ``now`` is the run's moment: it decides which deliveries are due. ``clock`` is read
    as each one is claimed, signed and answered: receivers refuse a signature more than
    a few minutes old, and a run that sent emails first, or waited on slow receivers,
    is well past its ``now``; the retry's wait counts from the failure too.

    ``should_stop`` is asked between deliveries, so a stop request lets the request in
    flight finish and leaves the rest for the next run.
    """
    report = WebhookReport(queued=queue(db, now))
    opener = urllib.request.build_opener(_NoRedirects())
    webhooks: dict[int, dict[str, Any]] = {}
    failing: set[int] = set()
    for delivery_id, webhook_id in due(db, now, limit):
        if should_stop and should_stop():
            break
        if webhook_id in failing:
            report.postponed += 1
            continue
        delivery = claim(db, delivery_id, now, at=clock())
        if delivery is None:
            continue
        if webhook_id not in webhooks:
            webhooks[webhook_id] = get_webhook(db, webhook_id)
        webhook = webhooks[webhook_id]
        answer = _send(db, webhook, delivery, clock, timeout, opener)
        answered_at = clock()
        if answer.error is None:
            _mark_delivered(db, delivery, answered_at, answer.status_code)
            report.delivered += 1
        else:
            _mark_failed(db, delivery, answered_at, answer)
            failing.add(webhook_id)
            report.failed += 1
            report.errors.append((delivery_id, webhook["url"], answer.error))
    return report


def deliver_quietly(
    db: Database,
    now: datetime,
    *,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> WebhookReport | None:
    """deliver_due for `remind` and the daemon: a webhook problem is logged, never
    raised, so that it cannot stop reminders going out."""
    try:
        return deliver_due(db, now, should_stop=should_stop, clock=clock)
    except Exception:
        log.exception("webhook delivery failed")
        return None


def _send(
    db: Database,
    webhook: dict[str, Any],
    delivery: dict[str, Any],
    clock: Callable[[], datetime],
    timeout: float,
    opener: urllib.request.OpenerDirector,
) -> Answer:
    events = list(db.query("SELECT * FROM events WHERE id = ?", [delivery["event_id"]]))
    if not events:  # erased meanwhile; the cascade takes the delivery too
        return Answer(None, "the event no longer exists")
    body = json.dumps(
        event_body(events[0], delivery["event"]),
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery["event"],
        DELIVERY_HEADER: str(delivery["id"]),
        # Signed as it leaves, not when the run began: see deliver_due.
        SIGNATURE_HEADER: sign(webhook["secret"], int(clock().timestamp()), body),
    }
    return post(webhook["url"], body, headers, timeout, opener)


def _mark_delivered(
    db: Database, delivery: dict[str, Any], now: datetime, status_code: int | None
) -> None:
    db.execute(
        "UPDATE webhook_deliveries SET state = 'delivered', delivered_at = ?,"
        " status_code = ?, last_error = NULL, claimed_by = NULL WHERE id = ?",
        [iso(now), status_code, delivery["id"]],
    )


def _mark_failed(
    db: Database, delivery: dict[str, Any], now: datetime, answer: Answer
) -> None:
    attempts = delivery["attempts"]
    final = attempts >= MAX_ATTEMPTS
    wait = BACKOFF[min(attempts, len(BACKOFF)) - 1]
    db.execute(
        "UPDATE webhook_deliveries SET state = ?, status_code = ?, last_error = ?,"
        " next_attempt_at = ?, claimed_by = NULL WHERE id = ?",
        [
            "failed" if final else "pending",
            answer.status_code,
            (answer.error or "")[:1000],
            iso(now + wait),
            delivery["id"],
        ],
    )
