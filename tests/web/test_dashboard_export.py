"""The export button: the CLI's selection, streamed as a sized ZIP with its manifest."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile

from werkzeug.http import parse_date

from .conftest import PDF, PNG
from .dashboard_kit import staff_fixture, text_of  # noqa: F401 (fixture)


def _zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(response.data))


def _manifest(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    text = archive.read("manifest.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_zip_streams_with_length_name_and_date(staff, case, portal):
    portal.upload(case.item_ids[0], ("relevé.pdf", PDF), ("relevé (2).pdf", PDF + b"2"))
    portal.upload(case.item_ids[1], ("photo.png", PNG))
    response = staff.get("/dashboard/export.zip?period=2026-12", buffered=False)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Type"] == "application/zip"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="monthlydocs-2026-12-export.zip"')
    assert parse_date(response.headers["Last-Modified"]) is not None
    body = b"".join(response.response)
    response.close()
    assert int(response.headers["Content-Length"]) == len(body)

    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    rows = _manifest(archive)
    names = sorted(n for n in archive.namelist() if n != "manifest.csv")
    assert sorted(row["file"] for row in rows) == names
    for row in rows:
        content = archive.read(row["file"])
        assert hashlib.sha256(content).hexdigest() == row["sha256"]
        assert len(content) == int(row["size"])
    assert "Boulangerie Dupont/2026-12/Monthly bookkeeping/Bank statements/relevé.pdf" \
        in names


def test_filters_like_the_cli(staff, case, portal):
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    portal.upload(case.item_ids[1], ("b.pdf", PDF + b"b"))
    first, _second = case.documents()
    staff.post(f"/dashboard/documents/{first['id']}/approve")
    approved = _zip(staff.get("/dashboard/export.zip?approved=1&client=dupont"))
    assert [r["file"].rsplit("/", 1)[1] for r in _manifest(approved)] == ["a.pdf"]
    assert _manifest(approved)[0]["review_state"] == "approved"
    none = staff.get("/dashboard/export.zip?period=2025-01")
    assert none.status_code == 404
    assert "nothing to export" in text_of(none)
    unknown = staff.get("/dashboard/export.zip?template=nope")
    assert unknown.status_code == 404


def test_the_export_page_shows_what_will_go(staff, case, portal):
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    page = text_of(staff.get("/dashboard/export?show=1&period=2026-12&template=monthly"))
    assert "1 document" in page
    assert 'href="/dashboard/export.zip?period=2026-12&amp;template=monthly"' in page
    assert "Boulangerie Dupont/2026-12/Monthly bookkeeping/Bank statements/a.pdf" in page
    assert "No documents match" in text_of(staff.get("/dashboard/export?show=1&period=2020-01"))
    ambiguous = staff.get("/dashboard/export?show=1&client=zzz")
    assert ambiguous.status_code == 400 and "No client matches." in text_of(ambiguous)


def test_a_missing_stored_file_stops_the_export(staff, case, portal):
    portal.upload(case.item_ids[0], ("a.pdf", PDF))
    [document] = case.documents()
    (case.settings.files_dir / document["stored_path"]).unlink()
    response = staff.get("/dashboard/export.zip")
    assert response.status_code == 409
    assert "1 stored files are missing on disk" in text_of(response)


def test_pages_and_emails_in_each_language(staff, case):
    """Every dashboard page renders in each language (a sample string each)."""
    samples = {
        "fr": ("Vue d’ensemble", "Exporter les documents", "Modèles"),
        "de": ("Übersicht", "Dokumente exportieren", "Vorlagen"),
        "es": ("Resumen", "Exportar documentos", "Plantillas"),
        "id": ("Ringkasan", "Ekspor dokumen", "Templat"),
    }
    pages = ["/dashboard/", f"/dashboard/checklists/{case.checklist_id}",
             "/dashboard/clients", f"/dashboard/clients/{case.client_id}",
             "/dashboard/clients/new", "/dashboard/clients/import",
             "/dashboard/templates", "/dashboard/templates/monthly",
             "/dashboard/templates/new", "/dashboard/generate?template=monthly",
             "/dashboard/export?show=1"]
    for code, (overview, export, templates) in samples.items():
        headers = {"Accept-Language": code}
        for path in pages:
            response = staff.get(path, headers=headers)
            assert response.status_code == 200, (code, path)
            assert f'<html lang="{code}">' in text_of(response)
        assert overview in text_of(staff.get("/dashboard/", headers=headers))
        assert export in text_of(staff.get("/dashboard/export", headers=headers))
        assert templates in text_of(staff.get("/dashboard/templates", headers=headers))
