"""Webhooks against real HTTP servers on loopback, with time passed in, never slept."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from conftest import use_smtp
from monthlydocs import (
    checklists,
    clients,
    outbox,
    portal,
    reminders,
    review,
    templates,
    webhooks,
)
from monthlydocs.config import load_settings
from monthlydocs.db import open_db
from monthlydocs.timeutil import iso

from .conftest import NOW, TODAY, Clock, upload, verify_signature


def deliver(db, at):
    """A run at ``at`` whose clock stands still: every delivery is signed at ``at``."""
    return webhooks.deliver_due(db, at, timeout=5, clock=lambda: at)


def deliveries(db, webhook_id=None) -> list[dict]:
    return webhooks.delivery_log(db, webhook_id, limit=1000)[::-1]


def second_item(db, seed) -> int:
    """The first slot of the second client's checklist."""
    return checklists.items(db, seed.checklist_ids[1])[0]["id"]


def make_every_event(db, settings, seed, workspace, free_port) -> None:
    """Do, through the core, one thing that records each public event."""
    # client.created, checklist.created; the link email is sent: message:sent (link).
    newcomer = clients.add_client(
        db,
        clients.ClientInput("Fleuriste Rose", "rose@fleurs.example"),
        NOW,
        region="FR",
    )
    clients.assign(db, [newcomer], seed.template_id, NOW)
    template = templates.get_template(db, "monthly")
    generated = checklists.generate(
        db, [checklists.Request(template)], NOW, TODAY, client_ids=[newcomer]
    )
    outbox.deliver_all(db, settings, NOW)
    # checklist.opened, document.uploaded, document.rejected, document.approved, then
    # checklist.completed once every required slot is approved.
    first = checklists.get_checklist(db, seed.checklist_ids[0])
    portal.open_checklist(db, first["token"], NOW, grace_days=30)
    second_doc = upload(
        db,
        settings,
        first["id"],
        seed.item_ids[1],
        "b.pdf",
        NOW,
        content=b"%PDF-1.4\n%second\n%%EOF\n",
    )
    review.reject(db, settings, second_doc, "Wrong month", "anne", NOW)
    review.approve(db, seed.document_id, "anne", NOW)
    review.approve(db, second_doc, "anne", NOW)
    # reminder.sent: a reminder email goes out.
    newcomer_row = clients.get_client(db, newcomer)
    reminders.queue_manual(
        db, settings, NOW, newcomer_row, generated.created_by_client[newcomer]
    )
    outbox.deliver_all(db, settings, NOW)
    # message.failed: the SMTP server is down when a reminder goes out (to the second
    # client: the first one's checklist is complete, a reminder to it would be dropped).
    second_client = clients.get_client(db, seed.client_ids[1])
    reminders.queue_manual(db, settings, NOW, second_client, [seed.checklist_ids[1]])
    use_smtp(workspace, free_port)
    report = outbox.deliver_all(db, load_settings(workspace, environ={}), NOW)
    assert report.failed == 1


def test_every_event_reaches_a_real_receiver_signed(
    db, settings, seed, workspace, free_port, receiver
):
    webhook_id, secret = webhooks.add_webhook(db, receiver.url, "all", NOW)
    assert secret.startswith("whsec_")
    make_every_event(db, settings, seed, workspace, free_port)

    report = deliver(db, NOW)

    assert report.failed == 0 and report.delivered == len(receiver.received)
    types = [r.json["type"] for r in receiver.received]
    assert set(types) == set(webhooks.EVENT_NAMES)
    # Only the reminder among the sent messages is published as reminder.sent.
    assert types.count("reminder.sent") == 1
    assert types.count("document.uploaded") == 1  # the seed's upload came before
    for request in receiver.received:
        headers, body = request.headers, request.body
        assert verify_signature(
            secret, headers["Monthlydocs-Signature"], body, NOW.timestamp()
        )
        assert headers["Content-Type"] == "application/json"
        assert headers["Monthlydocs-Event"] == request.json["type"]
        assert headers["Monthlydocs-Signature"].startswith(
            f"t={int(NOW.timestamp())},v1="
        )
    completed = next(
        r.json for r in receiver.received if r.json["type"] == "checklist.completed"
    )
    assert completed["subject"] == {"type": "checklist", "id": seed.checklist_ids[0]}
    assert completed["client_id"] == seed.client_ids[0]
    assert completed["occurred_at"] == "2026-12-01T09:00:00Z"
    rejected = next(
        r.json for r in receiver.received if r.json["type"] == "document.rejected"
    )
    assert rejected["data"] == {"note": "Wrong month"}
    ids = [r.headers["Monthlydocs-Delivery"] for r in receiver.received]
    assert ids == [str(d["id"]) for d in deliveries(db, webhook_id)]
    assert {d["state"] for d in deliveries(db)} == {"delivered"}
    assert {d["status_code"] for d in deliveries(db)} == {204}


def test_the_signature_fails_for_a_changed_body_an_old_time_or_another_secret(
    db, settings, seed, receiver
):
    _, secret = webhooks.add_webhook(db, receiver.url, "document.uploaded", NOW)
    upload(db, settings, seed.checklist_ids[1], second_item(db, seed), "x.pdf", NOW)
    deliver(db, NOW)
    [request] = receiver.received
    header, body = request.headers["Monthlydocs-Signature"], request.body
    assert verify_signature(secret, header, body, NOW.timestamp())
    forged = body.replace(b'"actor":"client"', b'"actor":"firm"')
    assert forged != body
    assert not verify_signature(secret, header, forged, NOW.timestamp())
    assert not verify_signature("whsec_other", header, body, NOW.timestamp())
    assert not verify_signature(secret, header, body, NOW.timestamp() + 301)


class TickingClock(Clock):
    """Moves on by ``step`` each time it is read, like a run that takes its time."""

    def __init__(self, step: timedelta):
        super().__init__(NOW)
        self.step = step
        self.read: list = []

    def __call__(self):
        moment = self.now
        self.read.append(moment)
        self.now += self.step
        return moment


def test_each_delivery_is_signed_when_it_leaves_not_when_the_run_began(
    db, settings, seed, receiver
):
    _, secret = webhooks.add_webhook(db, receiver.url, "all", NOW)
    for name in ("A", "B", "C", "D"):
        clients.add_client(
            db, clients.ClientInput(name, f"{name}@x.example"), NOW, region="FR"
        )
    clock = TickingClock(timedelta(minutes=2))
    receiver.clock = clock
    receiver.answers = [204, 204, 204, 500]

    report = webhooks.deliver_due(db, NOW, timeout=5, clock=clock)

    assert (report.delivered, report.failed) == (3, 1)
    # Each arrives minutes after the last, yet passes the README's 300-second check.
    arrivals = [request.at for request in receiver.received]
    assert arrivals[-1] - NOW > timedelta(seconds=300)
    for request in receiver.received:
        assert verify_signature(
            secret,
            request.headers["Monthlydocs-Signature"],
            request.body,
            request.at.timestamp(),
        )
    stamps = [
        int(r.headers["Monthlydocs-Signature"].split(",")[0][2:])
        for r in receiver.received
    ]
    assert stamps == sorted(set(stamps))
    # The retry waits a minute from when the receiver failed, not from NOW.
    failed = next(d for d in deliveries(db) if d["state"] == "pending")
    assert failed["next_attempt_at"] == iso(clock.read[-1] + webhooks.BACKOFF[0])
    assert clock.read[-1] > NOW + timedelta(minutes=10)
    delivered = [d["delivered_at"] for d in deliveries(db) if d["delivered_at"]]
    assert delivered == sorted(set(delivered))


def test_a_webhook_gets_only_its_events_and_nothing_from_before_it(
    db, settings, seed, receiver
):
    webhooks.add_webhook(
        db, receiver.url, "document.uploaded, checklist.completed", NOW
    )
    clients.add_client(
        db, clients.ClientInput("Other", "o@other.example"), NOW, region="FR"
    )
    upload(db, settings, seed.checklist_ids[1], second_item(db, seed), "x.pdf", NOW)
    deliver(db, NOW)
    assert [r.json["type"] for r in receiver.received] == ["document.uploaded"]


def test_a_receiver_that_fails_twice_then_succeeds(db, settings, seed, receiver):
    webhook_id, secret = webhooks.add_webhook(db, receiver.url, "all", NOW)
    receiver.answers = [500, 503]
    review.approve(db, seed.document_id, "anne", NOW)

    def run(at):
        return deliver(db, at)

    first = run(NOW)
    assert (first.delivered, first.failed) == (0, 1)
    [delivery] = deliveries(db, webhook_id)
    assert delivery["state"] == "pending" and delivery["attempts"] == 1
    assert delivery["status_code"] == 500
    assert delivery["last_error"] == "HTTP 500: busy, try later"
    assert delivery["next_attempt_at"] == "2026-12-01T09:01:00Z"

    assert run(NOW + timedelta(seconds=59)).failed == 0  # not yet due
    assert len(receiver.received) == 1

    second = run(NOW + timedelta(minutes=1))
    assert second.failed == 1
    [delivery] = deliveries(db, webhook_id)
    assert (delivery["attempts"], delivery["status_code"]) == (2, 503)
    assert delivery["next_attempt_at"] == "2026-12-01T09:06:00Z"

    assert run(NOW + timedelta(minutes=5)).delivered == 0
    third = run(NOW + timedelta(minutes=6))
    assert third.delivered == 1
    [delivery] = deliveries(db, webhook_id)
    assert delivery["state"] == "delivered" and delivery["attempts"] == 3
    assert delivery["status_code"] == 204 and delivery["last_error"] is None
    assert delivery["delivered_at"] == "2026-12-01T09:06:00Z"

    # Three tries of the same event and body, each signed at its own time.
    assert len(receiver.received) == 3
    assert len({r.body for r in receiver.received}) == 1
    assert len({r.headers["Monthlydocs-Delivery"] for r in receiver.received}) == 1
    for request, minutes in zip(receiver.received, (0, 1, 6), strict=True):
        moment = (NOW + timedelta(minutes=minutes)).timestamp()
        assert verify_signature(
            secret,
            request.headers["Monthlydocs-Signature"],
            request.body,
            moment,
            tolerance=0,
        )
    assert run(NOW + timedelta(days=3)).delivered == 0
    assert len(receiver.received) == 3


def test_it_gives_up_after_the_last_attempt(db, seed, receiver):
    webhook_id, _ = webhooks.add_webhook(db, receiver.url, "all", NOW)
    receiver.answers = [500] * 20
    review.approve(db, seed.document_id, "anne", NOW)
    at = NOW
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        assert deliver(db, at).failed == 1, attempt
        [delivery] = deliveries(db, webhook_id)
        assert delivery["attempts"] == attempt
        at += timedelta(days=1)
    assert delivery["state"] == "failed"
    assert deliver(db, at + timedelta(days=30)).failed == 0
    assert len(receiver.received) == webhooks.MAX_ATTEMPTS
    assert webhooks.list_webhooks(db)[0]["failed"] == 1


def test_a_dead_receiver_costs_one_attempt_per_run(db, seed, receiver, free_port):
    dead, _ = webhooks.add_webhook(db, f"http://127.0.0.1:{free_port}/x", "all", NOW)
    alive, _ = webhooks.add_webhook(db, receiver.url, "all", NOW)
    for doc in (seed.document_id,):
        review.approve(db, doc, "anne", NOW)  # document.approved
    clients.add_client(db, clients.ClientInput("A", "a@a.example"), NOW, region="FR")

    report = deliver(db, NOW)

    assert report.failed == 1 and report.postponed == 1 and report.delivered == 2
    assert "could not connect" in report.errors[0][2]
    tries = [d["attempts"] for d in deliveries(db, dead)]
    assert tries == [1, 0]
    assert len(receiver.received) == 2


def test_redirects_are_not_followed(db, seed, receiver):
    webhook_id, _ = webhooks.add_webhook(db, receiver.url, "all", NOW)
    receiver.answers = [(302, {"Location": receiver.url + "/elsewhere"})]
    review.approve(db, seed.document_id, "anne", NOW)
    report = deliver(db, NOW)
    assert report.failed == 1
    assert "redirects are not followed" in deliveries(db, webhook_id)[0]["last_error"]
    assert len(receiver.received) == 1


def test_each_event_is_queued_once_per_webhook(db, seed, receiver):
    webhook_id, _ = webhooks.add_webhook(db, receiver.url, "all", NOW)
    start = db.execute(
        "SELECT last_event_id FROM webhooks WHERE id = ?", [webhook_id]
    ).fetchone()[0]
    review.approve(db, seed.document_id, "anne", NOW)
    assert webhooks.queue(db, NOW) == 1
    assert webhooks.queue(db, NOW) == 0
    # Even a cursor put back (two runs reading it at once) adds nothing twice.
    db.execute(
        "UPDATE webhooks SET last_event_id = ? WHERE id = ?", [start, webhook_id]
    )
    assert webhooks.queue(db, NOW) == 0
    assert len(deliveries(db, webhook_id)) == 1


def test_a_claimed_delivery_is_nobody_elses_until_its_run_is_presumed_dead(
    db, settings, seed, receiver
):
    webhooks.add_webhook(db, receiver.url, "all", NOW)
    review.approve(db, seed.document_id, "anne", NOW)
    webhooks.queue(db, NOW)
    [(delivery_id, _webhook)] = webhooks.due(db, NOW)
    other = open_db(settings.database_path)
    try:
        assert webhooks.claim(db, delivery_id, NOW) is not None
        assert webhooks.claim(other, delivery_id, NOW) is None
        assert webhooks.due(other, NOW + timedelta(minutes=4)) == []
        later = NOW + webhooks.STALE_CLAIM
        assert webhooks.claim(other, delivery_id, later)["attempts"] == 2
    finally:
        other.close()


def test_remind_delivers_webhooks_and_a_broken_webhook_does_not_stop_it(
    db, settings, seed, receiver, caplog
):
    webhooks.add_webhook(db, receiver.url, "all", NOW)
    review.approve(db, seed.document_id, "anne", NOW)
    reminders.run(db, settings, NOW)
    assert [r.json["type"] for r in receiver.received] == ["document.approved"]

    db.execute("UPDATE webhooks SET events = 'not json'")
    review.reject(db, settings, seed.document_id, "Blurred", "anne", NOW)
    caplog.set_level(logging.ERROR, logger="monthlydocs.webhooks")
    report = reminders.run(db, settings, NOW)
    assert report.delivery.sent == 1  # the rejection email still went out
    assert "webhook delivery failed" in caplog.text


def test_erasing_a_client_takes_their_deliveries_and_no_event_id_comes_back(
    db, settings, seed, receiver
):
    webhooks.add_webhook(db, receiver.url, "all", NOW)
    client_id = clients.add_client(
        db, clients.ClientInput("Gone", "gone@x.example"), NOW, region="FR"
    )
    top = db.execute("SELECT max(id) FROM events").fetchone()[0]
    webhooks.queue(db, NOW)
    assert len(deliveries(db)) == 1

    clients.erase_client(db, client_id, settings.files_dir, NOW)

    assert deliveries(db) == []
    clients.add_client(
        db, clients.ClientInput("New", "new@x.example"), NOW, region="FR"
    )
    fresh = db.execute(
        "SELECT id FROM events WHERE action = 'client:created' ORDER BY id DESC"
    ).fetchone()[0]
    assert fresh > top + 1  # above the erased ids and the erasure's own event
    deliver(db, NOW)
    assert [r.json["type"] for r in receiver.received] == ["client.created"]


def test_managing_webhooks(db, seed, receiver):
    with pytest.raises(webhooks.InvalidWebhook, match="http:// or https://"):
        webhooks.add_webhook(db, "ftp://x.example/in", "all", NOW)
    with pytest.raises(webhooks.InvalidWebhook, match="user name or password"):
        webhooks.add_webhook(db, "https://me:pw@x.example/in", "all", NOW)
    with pytest.raises(webhooks.InvalidWebhook, match="Unknown event.*document.eaten"):
        webhooks.add_webhook(db, receiver.url, "document.eaten", NOW)

    webhook_id, _ = webhooks.add_webhook(db, receiver.url, "document.approved", NOW)
    review.approve(db, seed.document_id, "anne", NOW)
    deliver(db, NOW)
    [row] = webhooks.list_webhooks(db)
    assert row["events"] == ["document.approved"]
    assert (row["delivered"], row["pending"], row["failed"]) == (1, 0, 0)
    assert row["last_status"] == 204

    webhooks.remove_webhook(db, webhook_id)
    assert webhooks.list_webhooks(db) == []
    assert db.execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0] == 0
    with pytest.raises(webhooks.WebhookNotFound, match="webhook list"):
        webhooks.remove_webhook(db, webhook_id)


def test_the_payload_is_the_feeds_event(api, db, seed, receiver):
    webhooks.add_webhook(db, receiver.url, "document.approved", NOW)
    api.post(f"/documents/{seed.document_id}/approve")
    deliver(db, NOW)
    [request] = receiver.received
    feed = api.get("/events?type=document.approved").get_json()["data"]
    assert request.json == feed[0]
    assert json.loads(request.body)["actor"] == "api:crm-sync"
