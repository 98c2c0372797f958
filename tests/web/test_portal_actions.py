"""Nothing to send (and undo), removing a file, completion."""

from __future__ import annotations

from datetime import timedelta

from .conftest import NOW, PDF, text_of


def test_not_applicable_with_reason_then_undo(portal, case):
    item = case.item_ids[1]
    response = portal.not_applicable(item, reason="  Pas de ventes   ce mois-ci ")
    assert response.status_code == 303
    row = case.items()[1]
    assert (row["state"], row["note"]) == ("not_applicable", "Pas de ventes ce mois-ci")
    event = case.events("item:not_applicable")[0]
    assert event["subject_id"] == item and "Pas de ventes" in event["data"]
    page = text_of(portal.http.get(portal.url))
    assert "Rien à envoyer cette fois : Pas de ventes ce mois-ci" in page

    undone = portal.undo(item, xhr=True)
    assert undone.status_code == 200
    assert "Annulé" in undone.get_json()["messages"][0]["text"]
    row = case.items()[1]
    assert (row["state"], row["note"]) == ("to_send", None)
    assert len(case.events("item:reopened")) == 1


def test_not_applicable_refused_while_files_are_there(portal, case):
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    response = portal.not_applicable(case.item_ids[0], xhr=True)
    assert response.status_code == 409
    assert "Supprimez-les d’abord" in response.get_json()["messages"][0]["text"]


def test_undo_refused_once_reviewed(portal, case):
    portal.not_applicable(case.item_ids[1])
    db = case.db()
    db.execute(
        "UPDATE checklist_items SET state = 'approved' WHERE id = ?", [case.item_ids[1]]
    )
    db.conn.commit()
    db.close()
    assert portal.undo(case.item_ids[1]).status_code == 409


def _firm_marks_not_applicable(case, item_id, reason=None, when=NOW):
    from monthlydocs import review

    db = case.db()
    try:
        review.mark_not_applicable(db, item_id, "anne@martin.example", when, reason)
    finally:
        db.close()


def test_the_firms_not_applicable_cannot_be_undone_by_the_client(portal, case):
    item = case.item_ids[1]
    _firm_marks_not_applicable(case, item)
    page = text_of(portal.http.get(portal.url))
    slot = _slot_html(page, item)
    assert "Votre comptable a indiqué que ce document n’est pas nécessaire" in slot
    assert "Vous avez indiqué" not in slot
    assert "/undo" not in slot
    undone = portal.undo(item, xhr=True)
    assert undone.status_code == 409
    assert case.items()[1]["state"] == "not_applicable"
    assert case.events("item:reopened") == []
    # With the firm's reason.
    _firm_marks_not_applicable(case, item, reason="Pas de ventes en décembre")
    slot = _slot_html(text_of(portal.http.get(portal.url)), item)
    assert "n’est pas nécessaire cette fois : Pas de ventes en décembre" in slot


def test_the_latest_not_applicable_decides_who_may_undo(portal, case):
    item = case.item_ids[1]
    portal.not_applicable(item)  # the client says so first
    slot = _slot_html(text_of(portal.http.get(portal.url)), item)
    assert "Vous avez indiqué qu’il n’y a rien à envoyer cette fois." in slot
    assert "/undo" in slot
    # Then the firm decides the same.
    _firm_marks_not_applicable(case, item, when=NOW + timedelta(hours=1))
    slot = _slot_html(text_of(portal.http.get(portal.url)), item)
    assert "Votre comptable" in slot and "/undo" not in slot
    assert portal.undo(item).status_code == 409


def test_the_clients_own_not_applicable_survives_another_slots_decision(portal, case):
    portal.not_applicable(case.item_ids[1])
    _firm_marks_not_applicable(case, case.item_ids[2])
    assert portal.undo(case.item_ids[1], xhr=True).status_code == 200
    assert case.items()[1]["state"] == "to_send"
    assert portal.undo(case.item_ids[2], xhr=True).status_code == 409


def _slot_html(page: str, item_id: int) -> str:
    """The part of the page that shows one slot."""
    start = page.index(f'id="slot-{item_id}"')
    ends = [page.find('<li class="slot', start), page.find("</ol>", start)]
    return page[start : min(end for end in ends if end != -1)]


def test_client_removes_a_file_sent_by_mistake(portal, case):
    portal.upload(case.item_ids[0], ("erreur.pdf", PDF))
    doc = case.documents()[0]
    path = case.settings.files_dir / doc["stored_path"]
    assert path.exists()
    response = portal.remove(doc["id"], xhr=True)
    assert response.status_code == 200
    assert "« erreur.pdf » supprimé." in response.get_json()["messages"][0]["text"]
    assert case.documents() == []
    assert not path.exists()
    assert case.items()[0]["state"] == "to_send"
    assert len(case.events("document:removed")) == 1


def test_reviewed_file_cannot_be_removed(portal, case):
    portal.upload(case.item_ids[0], ("ok.pdf", PDF))
    db = case.db()
    db.execute("UPDATE documents SET review_state = 'approved'")
    db.conn.commit()
    db.close()
    doc = case.documents()[0]
    assert portal.remove(doc["id"]).status_code == 409
    assert (case.settings.files_dir / doc["stored_path"]).exists()
    page = text_of(portal.http.get(portal.url))
    assert "Vérifié" in page and f"/documents/{doc['id']}/remove" not in page


def test_completion_all_done_and_back(portal, case, clock):
    portal.upload(case.item_ids[0], ("releve.pdf", PDF))
    assert case.checklist()["completed_at"] is None
    clock.advance(minutes=3)
    response = portal.not_applicable(case.item_ids[1], xhr=True)
    summary = response.get_json()["summary"]
    assert "C’est terminé, merci !" in summary
    assert "2 sur 2 documents" in summary
    # The optional slot does not hold completion back.
    assert case.checklist()["completed_at"] == "2026-12-01T09:03:00Z"
    assert len(case.events("checklist:completed")) == 1
    page = text_of(portal.http.get(portal.url))
    assert "C’est terminé, merci !" in page

    portal.undo(case.item_ids[1])
    assert case.checklist()["completed_at"] is None
    assert "C’est terminé" not in text_of(portal.http.get(portal.url))


def test_removing_a_new_file_brings_back_the_firms_refusal(portal, case):
    from datetime import UTC, datetime

    from monthlydocs import review

    portal.upload(case.item_ids[0], ("flou.pdf", PDF))
    db = case.db()
    first = case.documents()[0]
    review.reject(
        db,
        case.settings,
        first["id"],
        "Illisible, merci de rescanner",
        "anne",
        datetime(2026, 12, 2, tzinfo=UTC),
    )
    db.close()
    assert case.items()[0]["state"] == "rejected"
    page = text_of(portal.http.get(portal.url))
    assert "À renvoyer" in page and "Illisible, merci de rescanner" in page
    portal.upload(case.item_ids[0], ("net.pdf", PDF + b"v2"))
    assert (case.items()[0]["state"], case.items()[0]["note"]) == ("received", None)
    second = case.documents()[1]
    portal.remove(second["id"])
    row = case.items()[0]
    assert (row["state"], row["note"]) == ("rejected", "Illisible, merci de rescanner")
