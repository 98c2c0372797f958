"""Webhooks on the dashboard: the list, adding one (its secret shown once), the checks
of the form, removing one, the delivery log after real deliveries to a receiver on
loopback, and the audit trail."""

from __future__ import annotations

import json
import re

import pytest
from api.conftest import Receiver

from monthlydocs import clients, webhooks

from .conftest import NOW
from .dashboard_kit import (  # noqa: F401 (fixtures)
    EMAIL,
    Staff,
    add_staff,
    anonymous_fixture,
    flashed,
    staff_fixture,
    text_of,
    use_cheap_hasher,
)

LIST = "/dashboard/webhooks"
ADD = "/dashboard/webhooks/new"
URL = "https://crm.example/hooks/monthlydocs?key=k3y"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def _webhooks(case) -> list[dict]:
    db = case.db()
    try:
        return list(db.query("SELECT * FROM webhooks ORDER BY id"))
    finally:
        db.close()


def _add(staff: Staff, url: str = URL, events=("document.uploaded",
                                                "checklist.completed")):
    return staff.post(ADD, {"url": url, "event": list(events)}, csrf_from=LIST)


def _cell(page: str, name: str, row_id: int) -> str:
    row = re.search(rf'<tr id="delivery-{row_id}">(.*?)</tr>', page, re.S)
    assert row, f"no delivery {row_id} on the page"
    found = re.search(rf'<td class="{name}">([^<]*)</td>', row.group(1))
    assert found, (name, row.group(1))
    return found.group(1).strip()


def test_strangers_are_sent_to_the_login_and_store_nothing(anonymous, case):
    assert anonymous.get(LIST).headers["Location"].startswith("/dashboard/login")
    refused = anonymous.post(ADD, {"url": URL, "event": ["client.created"]},
                             csrf_from="/dashboard/login")
    assert refused.status_code == 303
    assert refused.headers["Location"].startswith("/dashboard/login")
    assert _webhooks(case) == []


def test_the_nav_leads_to_the_webhooks_page(staff):
    overview = text_of(staff.get("/dashboard/"))
    assert f'href="{LIST}"' in overview
    page = text_of(staff.get(LIST))
    assert f'<a href="{LIST}" aria-current="page">Webhooks</a>' in page
    assert "No webhook yet" in page
    for name in webhooks.EVENT_NAMES:  # one labelled checkbox per public event
        assert f'name="event" value="{name}"' in page
    assert '<label for="webhook-url">' in page


def test_adding_shows_the_secret_once_and_stores_the_webhook(staff, case):
    added = _add(staff)
    assert added.status_code == 200
    page = text_of(added)
    [row] = _webhooks(case)
    assert row["url"] == URL
    assert json.loads(row["events"]) == ["document.uploaded", "checklist.completed"]
    assert row["secret"].startswith("whsec_")
    assert f'value="{row["secret"]}" readonly' in page
    assert "it will not be shown again" in page
    assert "unencrypted" not in page  # https: no warning
    assert added.headers["Cache-Control"] == "no-store"

    # Never again: neither the list nor the webhook's page shows it.
    listing = text_of(staff.get(LIST))
    assert URL in listing and row["secret"] not in listing
    assert "A client sent a document" in listing and "None yet" in listing
    detail = text_of(staff.get(f"{LIST}/{row['id']}"))
    assert row["secret"] not in detail and "No delivery yet." in detail


def test_the_audit_trail_names_who_added_and_who_removed(staff, case):
    _add(staff)
    [row] = _webhooks(case)
    assert "Webhook removed" in flashed(staff, staff.post(
        f"{LIST}/{row['id']}/remove", csrf_from=LIST))
    [added] = case.events("webhook:added")
    [removed] = case.events("webhook:removed")
    for event in (added, removed):
        assert (event["actor"], event["subject_type"], event["subject_id"]) == (
            EMAIL, "webhook", row["id"])
        # The host only: the URL's query carries the receiver's key.
        assert json.loads(event["data"])["host"] == "crm.example"
        assert "k3y" not in event["data"]


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://crm.example/in", "This address does not look right"),
    ("crm.example/in", "This address does not look right"),
    ("http://[::1", "This address does not look right"),
    ("https://" + "a" * 2000 + ".example/", "This address does not look right"),
    ("https://me:secret@crm.example/in", "cannot carry a user name or password"),
    ("", "Write the address of the receiver."),
])
def test_a_bad_address_is_refused_with_a_message(staff, case, url, message):
    refused = _add(staff, url)
    assert refused.status_code == 400
    page = text_of(refused)
    assert message in page
    assert 'aria-invalid="true"' in page and 'id="url-error"' in page
    assert 'value="document.uploaded" checked' in page  # the choice is kept
    assert _webhooks(case) == []


def test_no_event_chosen_is_refused_with_a_message(staff, case):
    refused = _add(staff, events=())
    assert refused.status_code == 400
    page = text_of(refused)
    assert "Choose at least one event to send." in page
    assert f'value="{URL}"' in page.replace("&amp;", "&")  # nothing to type again
    # An event name the form never offered counts as none.
    assert _add(staff, events=("document.eaten",)).status_code == 400
    assert _webhooks(case) == []


def test_messages_follow_the_staff_members_language(app, case):
    use_cheap_hasher(app)
    add_staff(case, email="claire@martin.example", language="fr")
    french = Staff(app.test_client())
    french.login(email="claire@martin.example")
    page = text_of(french.get(LIST))
    assert '<html lang="fr">' in page
    refused = text_of(_add(french, "pas une adresse", events=()))
    assert "Cette adresse ne semble pas correcte" in refused
    assert "Choisissez au moins un événement à envoyer." in refused
    assert _webhooks(case) == []


def test_remove_asks_first_then_removes(staff, case):
    _add(staff)
    [row] = _webhooks(case)
    listing = text_of(staff.get(LIST))
    assert f'action="{LIST}/{row["id"]}/remove" data-confirm="Remove the webhook' in (
        listing)
    page = flashed(staff, staff.post(f"{LIST}/{row['id']}/remove", csrf_from=LIST))
    assert "Webhook removed: nothing more is sent to" in page
    assert _webhooks(case) == []
    again = staff.post(f"{LIST}/{row['id']}/remove", csrf_from=LIST)
    assert "This webhook no longer exists." in flashed(staff, again)
    gone = staff.get(f"{LIST}/{row['id']}")
    assert gone.status_code == 404
    assert "This webhook no longer exists." in text_of(gone)


def test_a_remove_without_its_csrf_token_is_refused(staff, case):
    _add(staff)
    [row] = _webhooks(case)
    forged = staff.http.post(f"{LIST}/{row['id']}/remove")
    assert forged.status_code == 400
    assert len(_webhooks(case)) == 1


def test_the_delivery_log_shows_status_codes_and_attempts(staff, case, receiver):
    added = _add(staff, receiver.url, events=("client.created",))
    assert "events travel unencrypted" in text_of(added)  # http://
    [row] = _webhooks(case)

    db = case.db()
    try:
        clients.add_client(db, clients.ClientInput("Garage Martin",
                                                   "paul@martin.example"),
                           NOW, region="FR")
        receiver.answers = [503]  # the receiver is busy once, then answers 204
        first = webhooks.deliver_due(db, NOW, clock=lambda: NOW)
        [delivery] = webhooks.delivery_log(db, row["id"])
    finally:
        db.close()
    assert (first.failed, len(receiver.received)) == (1, 1)

    page = text_of(staff.get(f"{LIST}/{row['id']}"))
    assert (_cell(page, "status-code", delivery["id"]),
            _cell(page, "attempts", delivery["id"])) == ("503", "1")
    assert "Failed, will be tried again" in page
    assert "HTTP 503: busy, try later" in page
    failing = text_of(staff.get(f"{LIST}/{row['id']}?failing=1"))
    assert f'id="delivery-{delivery["id"]}"' in failing
    listing = text_of(staff.get(LIST))
    assert "Failed, will be tried again</span> HTTP 503" in listing

    db = case.db()
    try:
        later = NOW + webhooks.BACKOFF[0]
        second = webhooks.deliver_due(db, later, clock=lambda: later)
    finally:
        db.close()
    assert (second.delivered, len(receiver.received)) == (1, 2)
    assert receiver.received[-1].json["type"] == "client.created"

    page = text_of(staff.get(f"{LIST}/{row['id']}"))
    assert (_cell(page, "status-code", delivery["id"]),
            _cell(page, "attempts", delivery["id"])) == ("204", "2")
    assert "client.created #" in page and "Delivered</span>" in page
    assert "HTTP 503" not in page  # the error is cleared once delivered
    assert "No failing delivery." in text_of(staff.get(f"{LIST}/{row['id']}?failing=1"))
    listing = text_of(staff.get(LIST))
    assert "Delivered</span> HTTP 204" in listing
