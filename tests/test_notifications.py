"""The firm's own emails: completed checklists, batched uploads, the daily digest."""

from datetime import UTC, datetime, timedelta

import pytest

from conftest import NOW, eml_text
from monthlydocs import checklists, clients, notifications, outbox, templates
from monthlydocs.config import load_settings
from monthlydocs.events import Event, record
from monthlydocs.timeutil import iso
from monthlydocs.workspace import example_templates_path, set_value


@pytest.fixture
def firm(workspace, db):
    text = workspace.read_text()
    text = set_value(text, "notifications", "email", "team@dupont.example")
    text = set_value(text, "notifications", "on", ["completed", "uploaded", "digest"])
    workspace.write_text(text)
    settings = load_settings(workspace, environ={})
    templates.load_file(db, example_templates_path(), NOW)
    client_id = clients.add_client(
        db,
        clients.ClientInput(
            "Boulangerie Dupont", "m@dupont.example", phone="0612345678"
        ),
        NOW,
        region="FR",
    )
    monthly = templates.get_template(db, "monthly")
    clients.assign(db, [client_id], monthly["id"], NOW)
    checklists.generate(db, [checklists.Request(monthly)], NOW, NOW.date(), send=False)
    return settings, db


def kinds(db):
    return [
        r[0]
        for r in db.execute(
            "SELECT kind FROM messages WHERE recipient = 'team@dupont.example' ORDER BY id"
        )
    ]


def add_document(db, when, name="statement.pdf"):
    item = db.execute("SELECT id FROM checklist_items LIMIT 1").fetchone()[0]
    db.execute(
        "INSERT INTO documents (item_id, original_filename, stored_path, size, sha256,"
        " content_type, uploaded_at) VALUES (?, ?, 'x', 10, ?, 'application/pdf', ?)",
        [item, name, name, iso(when)],
    )
    db.conn.commit()


def test_completed_is_notified_once(firm):
    settings, db = firm
    early = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # before the digest hour
    db.execute("UPDATE checklists SET completed_at = ?", [iso(early)])
    record(
        db,
        Event.CHECKLIST_COMPLETED,
        early,
        subject_type="checklist",
        subject_id=1,
        client_id=1,
    )
    db.conn.commit()
    assert notifications.queue_due(db, settings, early) == 1
    assert notifications.queue_due(db, settings, early) == 0
    assert kinds(db) == ["notify_completed"]
    assert outbox.deliver_email(db, settings, early).sent == 1
    [eml] = settings.outbox_dir.glob("*.eml")
    text = eml_text(eml)
    assert "Boulangerie Dupont has sent everything for December 2026" in text


def test_uploads_are_batched_per_fifteen_minutes(firm):
    settings, db = firm
    start = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    add_document(db, start + timedelta(minutes=1), "a.pdf")
    add_document(db, start + timedelta(minutes=9), "b.pdf")
    # The batch is still open (its first file came 9 minutes ago): nothing yet.
    assert notifications.queue_due(db, settings, start + timedelta(minutes=10)) == 0
    assert notifications.queue_due(db, settings, start + timedelta(minutes=16)) == 1
    add_document(db, start + timedelta(minutes=20), "c.pdf")
    assert notifications.queue_due(db, settings, start + timedelta(minutes=31)) == 0
    assert notifications.queue_due(db, settings, start + timedelta(minutes=35)) == 1
    assert kinds(db) == ["notify_uploaded", "notify_uploaded"]
    outbox.deliver_email(db, settings, start + timedelta(minutes=35))
    texts = sorted(eml_text(p) for p in settings.outbox_dir.glob("*.eml"))
    both = [t for t in texts if "a.pdf" in t]
    assert len(both) == 1 and "b.pdf" in both[0] and "c.pdf" not in both[0]
    assert sum("c.pdf" in t for t in texts) == 1


def test_uploads_either_side_of_a_quarter_hour_make_one_email(firm):
    """A late run sees files sent at 05:14 and 05:16: one email about both, not two
    (fixed quarter-hour windows made two, at the same moment)."""
    settings, db = firm
    start = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
    add_document(db, start + timedelta(minutes=14), "a.pdf")
    add_document(db, start + timedelta(minutes=16), "b.pdf")
    assert notifications.queue_due(db, settings, start + timedelta(minutes=31)) == 1
    assert notifications.queue_due(db, settings, start + timedelta(minutes=50)) == 0
    outbox.deliver_email(db, settings, start + timedelta(minutes=50))
    [eml] = settings.outbox_dir.glob("*.eml")
    text = eml_text(eml)
    assert "a.pdf" in text and "b.pdf" in text


def test_digest_once_a_day_after_its_hour(firm):
    settings, db = firm
    db.execute("UPDATE checklists SET escalated_at = '2026-12-08T09:00:00Z'")
    db.conn.commit()
    before = datetime(2026, 12, 9, 6, 59, tzinfo=UTC)  # 07:59 in Paris
    after = datetime(2026, 12, 9, 7, 0, tzinfo=UTC)
    assert notifications.queue_due(db, settings, before) == 0
    assert notifications.queue_due(db, settings, after) == 1
    assert notifications.queue_due(db, settings, after + timedelta(hours=5)) == 0
    assert notifications.queue_due(db, settings, after + timedelta(days=1)) == 1
    assert outbox.deliver_email(db, settings, after + timedelta(days=1)).sent == 2
    text = eml_text(next(settings.outbox_dir.glob("*.eml")))
    assert "Call these clients (past the last reminder): 1" in text
    assert "+33612345678" in text and "Bank statements" in text


def test_no_address_means_no_notifications(workspace, db):
    settings = load_settings(workspace, environ={})
    assert notifications.queue_due(db, settings, NOW) == 0
