"""The web app sends what a request queued right away, from its own thread."""

from monthlydocs import webhooks
from monthlydocs.timeutil import iso

from .conftest import NOW, Api, verify_signature


def test_webhooks_and_emails_leave_without_waiting_for_remind(
    settings, seed, clock, db, token, receiver
):
    from monthlydocs.web import create_app

    _id, secret = webhooks.add_webhook(db, receiver.url, ["client.created"], NOW)
    db.execute("UPDATE checklists SET link_sent_at = ?", [iso(NOW)])
    db.conn.commit()
    app = create_app(settings, clock=clock, send_in_background=True)
    sender = app.extensions["monthlydocs.sender"]
    api = Api(app.test_client(), token)

    created = api.post(
        "/clients", json={"name": "Atelier Nguyen", "email": "a@nguyen.example"}
    )
    assert created.status_code == 201
    assert sender.idle.wait(20), "the sending thread did not finish"
    [delivery] = receiver.received
    assert delivery.json["type"] == "client.created"
    assert verify_signature(
        secret,
        delivery.headers["Monthlydocs-Signature"],
        delivery.body,
        now=clock().timestamp(),
    )

    asked = api.post(f"/checklists/{seed.checklist_ids[0]}/reminders")
    assert asked.status_code == 202
    assert sender.idle.wait(20)
    state = db.execute("SELECT state FROM messages WHERE kind = 'reminder'").fetchone()
    assert state == ("sent",)
    assert list(settings.outbox_dir.glob("*.eml"))


def test_reads_do_not_wake_the_sender(settings, seed, clock, token):
    from monthlydocs.web import create_app

    app = create_app(settings, clock=clock, send_in_background=True)
    Api(app.test_client(), token).get("/clients")
    assert app.extensions["monthlydocs.sender"]._thread is None
