"""Uploads through the portal: each bad input with its status code and message."""

from __future__ import annotations

import hashlib
import io
import json

from monthlydocs import storage

from .conftest import EXE, PDF, PNG, text_of


def _incoming_is_empty(case) -> bool:
    folder = case.settings.files_dir / storage.INCOMING_DIR
    return not folder.exists() or not list(folder.iterdir())


def test_upload_without_javascript_stores_and_redirects(portal, case):
    response = portal.upload(
        case.item_ids[0], ("relevé décembre.pdf", PDF), ("photo.png", PNG)
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith(
        f"/c/{case.token}#slot-{case.item_ids[0]}"
    )
    docs = case.documents()
    assert [d["original_filename"] for d in docs] == [
        "relevé décembre.pdf",
        "photo.png",
    ]
    assert [d["content_type"] for d in docs] == ["application/pdf", "image/png"]
    assert docs[0]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert docs[0]["size"] == len(PDF)
    stored = case.settings.files_dir / docs[0]["stored_path"]
    assert docs[0]["stored_path"] == (
        f"{case.client_id:06d}/2026-12/Bank statements/relevé décembre.pdf"
    )
    assert stored.read_bytes() == PDF
    assert case.items()[0]["state"] == "received"
    assert len(case.events("document:uploaded")) == 2
    assert _incoming_is_empty(case)

    page = text_of(portal.http.get(response.headers["Location"]))
    assert "2 fichiers reçus, merci." in page
    assert "relevé décembre.pdf" in page
    assert "Reçu" in page


def test_upload_with_javascript_returns_the_slot_and_summary(portal, case):
    response = portal.upload(case.item_ids[1], ("facture.pdf", PDF), xhr=True)
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True
    assert body["messages"] == [{"category": "ok", "text": "1 fichier reçu, merci."}]
    assert f'id="slot-{case.item_ids[1]}"' in body["slot"]
    assert "facture.pdf" in body["slot"]
    assert 'id="summary"' in body["summary"]
    assert "1 sur 2 documents" in body["summary"]


def test_same_file_twice_is_stored_once(portal, case):
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    again = portal.upload(case.item_ids[0], ("copie de a.pdf", PDF), xhr=True)
    assert again.status_code == 200
    assert "déjà été envoyé" in again.get_json()["messages"][0]["text"]
    assert len(case.documents()) == 1
    files = list((case.settings.files_dir / f"{case.client_id:06d}").rglob("*.pdf"))
    assert len(files) == 1
    # The same file in another slot is another document.
    portal.upload(case.item_ids[1], ("a.pdf", PDF))
    assert len(case.documents()) == 2


def test_file_over_the_limit_is_413_in_the_clients_language(portal, case):
    too_big = PDF + b"0" * (1024 * 1024)
    response = portal.upload(case.item_ids[0], ("gros relevé.pdf", too_big))
    assert response.status_code == 413
    page = text_of(response)
    assert (
        "« gros relevé.pdf » est trop volumineux : la limite est de 1 Mo par fichier"
        in page
    )
    assert '<html lang="fr">' in page
    assert case.documents() == []
    assert _incoming_is_empty(case)

    as_json = portal.upload(case.item_ids[0], ("gros relevé.pdf", too_big), xhr=True)
    assert as_json.status_code == 413
    assert "trop volumineux" in as_json.get_json()["messages"][0]["text"]


def test_file_over_the_limit_among_good_ones_keeps_the_good_ones(portal, case):
    too_big = PDF + b"0" * (1024 * 1024)
    response = portal.upload(
        case.item_ids[0], ("good.pdf", PDF), ("big.pdf", too_big), ("photo.png", PNG)
    )
    assert response.status_code == 303
    assert [d["original_filename"] for d in case.documents()] == [
        "good.pdf",
        "photo.png",
    ]
    assert _incoming_is_empty(case)
    page = text_of(portal.http.get(response.headers["Location"]))
    assert "2 fichiers reçus, merci." in page
    assert "« big.pdf » est trop volumineux : la limite est de 1 Mo par fichier" in page

    as_json = portal.upload(
        case.item_ids[1], ("big.pdf", too_big), ("good.pdf", PDF), xhr=True
    )
    assert as_json.status_code == 200
    texts = [m["text"] for m in as_json.get_json()["messages"]]
    assert texts[0] == "1 fichier reçu, merci."
    assert "« big.pdf » est trop volumineux" in texts[1]
    assert len(case.documents()) == 3
    assert _incoming_is_empty(case)


def test_executable_renamed_pdf_is_refused_and_nothing_stored(portal, case):
    response = portal.upload(case.item_ids[0], ("facture.pdf", EXE))
    assert response.status_code == 415
    assert (
        "« facture.pdf » ne peut pas être accepté : ce type de fichier n’est pas "
        "pris en charge."
    ) in text_of(response)
    assert case.documents() == []
    assert not list(case.settings.files_dir.rglob("facture.pdf"))
    assert _incoming_is_empty(case)
    assert case.items()[0]["state"] == "to_send"


def test_executable_with_a_pdf_header_inside_is_refused(portal, case):
    response = portal.upload(
        case.item_ids[0], ("facture.pdf", EXE[:64] + PDF + EXE[64:]), xhr=True
    )
    assert response.status_code == 415
    assert case.documents() == []
    assert _incoming_is_empty(case)


def test_path_traversal_name_is_stored_safely(portal, case):
    response = portal.upload(case.item_ids[0], ("../../etc/passwd", PDF))
    assert response.status_code == 303
    doc = case.documents()[0]
    assert doc["original_filename"] == "passwd"
    assert doc["stored_path"] == f"{case.client_id:06d}/2026-12/Bank statements/passwd"
    assert (case.settings.files_dir / doc["stored_path"]).read_bytes() == PDF


def test_emoji_and_right_to_left_name(portal, case):
    name = "reçu 🧾 \u202eفاتورة.pdf"
    response = portal.upload(case.item_ids[0], (name, PDF), xhr=True)
    assert response.status_code == 200
    doc = case.documents()[0]
    assert doc["original_filename"] == name  # shown as sent (escaped, dir="auto")
    assert doc["stored_path"].endswith("/reçu 🧾 فاتورة.pdf")  # override dropped
    assert 'dir="auto">reçu 🧾' in response.get_json()["slot"]


def test_post_without_a_file_is_400(portal, case):
    response = portal.http.post(
        f"{portal.url}/items/{case.item_ids[0]}/upload",
        data={"csrf_token": portal.csrf()},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "Choisissez d’abord un fichier, puis appuyez sur Envoyer." in text_of(
        response
    )
    empty_field = portal.upload(case.item_ids[0], ("", b""))
    assert empty_field.status_code == 400


def test_empty_file_is_400(portal, case):
    response = portal.upload(case.item_ids[0], ("vide.pdf", b""), xhr=True)
    assert response.status_code == 400
    assert "« vide.pdf » est vide" in response.get_json()["messages"][0]["text"]


def test_wrong_csrf_token_is_400_and_nothing_stored(portal, case):
    response = portal.upload(case.item_ids[0], ("a.pdf", PDF), csrf="forged")
    assert response.status_code == 400
    assert "Cette page est restée ouverte longtemps" in text_of(response)
    assert case.documents() == []
    missing = portal.http.post(f"{portal.url}/items/{case.item_ids[0]}/not-applicable")
    assert missing.status_code == 400
    assert case.items()[0]["state"] == "to_send"


def test_random_token_is_404_for_every_action(portal, case):
    bad = "A" * 32
    for path in (
        f"/c/{bad}",
        f"/c/{bad}/items/{case.item_ids[0]}/upload",
        f"/c/{bad}/items/{case.item_ids[0]}/not-applicable",
    ):
        method = portal.http.get if path == f"/c/{bad}" else portal.http.post
        response = method(path, data={"csrf_token": portal.csrf()})
        assert response.status_code == 404, path
        assert "Ce lien ne fonctionne pas" in text_of(response) or (
            "This link does not work" in text_of(response)
        )


def test_item_of_another_checklist_is_404(portal, case):
    response = portal.upload(9999, ("a.pdf", PDF))
    assert response.status_code == 404
    assert case.documents() == []


def test_one_bad_file_among_good_ones(portal, case):
    response = portal.upload(
        case.item_ids[0], ("ok.pdf", PDF), ("virus.pdf", EXE), xhr=True
    )
    assert response.status_code == 200
    texts = [m["text"] for m in response.get_json()["messages"]]
    assert texts[0] == "1 fichier reçu, merci."
    assert "virus.pdf" in texts[1]
    assert [d["original_filename"] for d in case.documents()] == ["ok.pdf"]


def test_approved_slot_no_longer_takes_files(portal, case):
    db = case.db()
    db.execute(
        "UPDATE checklist_items SET state = 'approved' WHERE id = ?", [case.item_ids[0]]
    )
    db.conn.commit()
    db.close()
    response = portal.upload(case.item_ids[0], ("a.pdf", PDF), xhr=True)
    assert response.status_code == 409
    assert "Cabinet Martin a déjà vérifié" in response.get_json()["messages"][0]["text"]


def test_json_error_shape_is_stable(portal, case):
    response = portal.upload(case.item_ids[0], ("x.pdf", EXE), xhr=True)
    body = response.get_json()
    assert set(body) == {"ok", "messages", "summary", "slot"}
    assert body["ok"] is False
    assert json.loads(json.dumps(body["messages"]))[0]["category"] == "error"


def test_body_over_the_request_limit_is_413_on_a_good_link_and_404_on_a_bad_one(
    portal, case
):
    from monthlydocs.web import MAX_FILES_PER_REQUEST

    body = PDF + b"0" * ((MAX_FILES_PER_REQUEST + 1) * 1024 * 1024)
    response = portal.upload(case.item_ids[0], ("énorme.pdf", body))
    assert response.status_code == 413
    page = text_of(response)
    assert "Documents de Boulangerie Dupont" in page
    assert "Ces fichiers sont trop volumineux pour être envoyés en une fois" in page
    unknown = portal.http.post(
        f"/c/{'C' * 32}/items/{case.item_ids[0]}/upload",
        data={"files": [(io.BytesIO(body), "énorme.pdf")]},
        content_type="multipart/form-data",
    )
    assert unknown.status_code == 404
    assert case.documents() == []
    assert _incoming_is_empty(case)
