"""The portal's core functions, called without any web: time and state in, facts out."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from monthlydocs import portal, storage
from monthlydocs.clients import ClientInput
from monthlydocs.errors import ItemLocked, LinkNotFound, MonthlydocsError

from .conftest import NOW, PDF


def test_link_expiry_boundary():
    closed = {"completed_at": "2026-12-01T09:00:00Z", "archived_at": None}
    assert not portal.link_expired(closed, NOW + timedelta(days=30, seconds=-1), 30)
    assert portal.link_expired(closed, NOW + timedelta(days=30), 30)
    assert not portal.link_expired(
        {"completed_at": None, "archived_at": None}, NOW + timedelta(days=999), 30
    )
    # Whichever closed first counts.
    both = {
        "completed_at": "2026-12-20T00:00:00Z",
        "archived_at": "2026-12-01T09:00:00Z",
    }
    assert portal.link_expired(both, NOW + timedelta(days=30), 30)


def test_upload_into_a_not_applicable_slot_makes_it_received(case):
    db = case.db()
    checklist = case.checklist()
    item = case.item_ids[0]
    portal.mark_not_applicable(db, checklist, item, "none", NOW)
    portal.mark_not_applicable(db, checklist, item, "again", NOW)  # no-op, no error
    assert len(case.events("item:not_applicable")) == 1
    incoming = storage.receive(io.BytesIO(PDF), case.settings.files_dir, 2**20, "a.pdf")
    result = portal.upload(db, case.settings, checklist, item, incoming, NOW)
    assert not result.duplicate
    row = case.items()[0]
    assert (row["state"], row["note"]) == ("received", None)
    with pytest.raises(portal.ItemNotFound):
        portal.remove_document(
            db, case.settings, {"id": 999}, result.document["id"], NOW
        )
    db.close()


def test_undo_of_a_slot_to_send_is_a_no_op_and_of_a_received_one_refused(case):
    db = case.db()
    checklist = case.checklist()
    portal.undo_not_applicable(db, checklist, case.item_ids[0], NOW)
    assert case.events("item:reopened") == []
    incoming = storage.receive(io.BytesIO(PDF), case.settings.files_dir, 2**20, "a.pdf")
    portal.upload(db, case.settings, checklist, case.item_ids[0], incoming, NOW)
    with pytest.raises(ItemLocked):
        portal.undo_not_applicable(db, checklist, case.item_ids[0], NOW)
    db.close()


def test_invite_token_is_stable_until_rotated(case):
    db = case.db()
    secret = case.settings.firm.secret_key
    first = portal.invite_token(db, secret)
    assert portal.invite_token(db, secret) == first
    assert len(first) >= 32
    portal.check_invite(db, case.settings, first)
    second = portal.rotate_invite(db, secret, NOW)
    assert second != first
    with pytest.raises(LinkNotFound):
        portal.check_invite(db, case.settings, first)
    with pytest.raises(portal.InvitesDisabled):
        portal.invite_token(db, "")
    db.close()


def test_register_and_approve(case):
    db = case.db()
    token = portal.invite_token(db, case.settings.firm.secret_key)
    new_id = portal.register_client(
        db,
        case.settings,
        token,
        ClientInput("Warung Bu Sari", "sari@warung.example", "+62 812-3456-789", "id"),
        NOW,
    )
    row = db.execute(
        "SELECT status, phone FROM clients WHERE id = ?", [new_id]
    ).fetchone()
    assert row == ("pending", "+628123456789")
    assert (
        portal.register_client(
            db,
            case.settings,
            token,
            ClientInput("Copy", "SARI@warung.example", None, "id"),
            NOW,
        )
        is None
    )
    with pytest.raises(LinkNotFound):
        portal.register_client(
            db, case.settings, "wrong", ClientInput("X", "x@example.com"), NOW
        )
    portal.approve_client(db, new_id, NOW)
    with pytest.raises(MonthlydocsError, match="not waiting for approval"):
        portal.approve_client(db, new_id, NOW)
    db.close()


def test_app_refuses_to_start_without_a_secret_key(case):
    from monthlydocs.config import settings_from_dict
    from monthlydocs.errors import ConfigError
    from monthlydocs.web import create_app

    settings = settings_from_dict(
        {"firm": {"secret_key": ""}}, path=case.settings.path, environ={}
    )
    with pytest.raises(ConfigError, match="secret_key is empty"):
        create_app(settings)


def test_only_the_clients_own_not_applicable_can_be_undone(case):
    from monthlydocs import review

    db = case.db()
    checklist = case.checklist()
    mine, theirs = case.item_ids[0], case.item_ids[1]
    portal.mark_not_applicable(db, checklist, mine, None, NOW)
    review.mark_not_applicable(db, theirs, "anne@martin.example", NOW, "not this month")
    slots = {slot.id: slot for slot in portal.page(db, checklist).slots}
    assert slots[mine].not_applicable_by_client and slots[mine].can_undo
    assert slots[theirs].not_applicable_by == "anne@martin.example"
    assert not slots[theirs].not_applicable_by_client and not slots[theirs].can_undo
    assert portal.slot(db, checklist, theirs).can_undo is False
    with pytest.raises(ItemLocked):
        portal.undo_not_applicable(db, checklist, theirs, NOW)
    portal.undo_not_applicable(db, checklist, mine, NOW)
    assert [row["state"] for row in case.items()[:2]] == ["to_send", "not_applicable"]
    db.close()
