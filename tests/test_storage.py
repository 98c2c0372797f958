"""The file store: names made safe, types judged by content, atomic checksummed writes."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile

import pytest

from monthlydocs import storage
from monthlydocs.errors import EmptyUpload, UnsupportedFileType, UploadTooLarge

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\0" * 64
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\0" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\0" * 64
TIFF = b"II*\x00\x08\x00\x00\x00" + b"\0" * 64
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 64
HEIF = b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1msf1" + b"\0" * 64
MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\0" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 200
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\0" * 100


def _zip(entries: dict[str, bytes], first: tuple[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if first:
            archive.writestr(zipfile.ZipInfo(first[0]), first[1])
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _ole(stream_name: str) -> bytes:
    """A compound file whose directory (sector 1, offset 1024) names one stream."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * (512 - 8)
    fat = b"\0" * 512
    entry = stream_name.encode("utf-16-le") + b"\0\0"
    directory = ("Root Entry".encode("utf-16-le") + b"\0\0").ljust(128, b"\0")
    directory += entry.ljust(128, b"\0")
    return header + fat + directory.ljust(512, b"\0")


ODS = _zip(
    {"content.xml": b"<x/>"},
    first=("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
)
ODT = _zip(
    {"content.xml": b"<x/>"},
    first=("mimetype", b"application/vnd.oasis.opendocument.text"),
)
# The "word/" entry comes after 10 kB: beyond what a magic-number sniff reads.
DOCX = _zip(
    {
        "[Content_Types].xml": b"<Types/>",
        "docProps/app.xml": os.urandom(10_000),
        "word/document.xml": b"<w:document/>",
    }
)
XLSX = _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
ZIP = _zip({"scans/janvier.pdf": PDF, "notes.txt": b"hello"})


@pytest.mark.parametrize(
    "content, mime",
    [
        (PDF, "application/pdf"),
        (b"\n\n%PDF-1.3 with junk before the header", "application/pdf"),
        (b"\xef\xbb\xbf" + PDF, "application/pdf"),
        (b"\x00\x00\x1a\x03junk" + PDF, "application/pdf"),  # a short binary prefix
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (WEBP, "image/webp"),
        (TIFF, "image/tiff"),
        (HEIC, "image/heic"),
        (HEIF, "image/heif"),
        (
            b"date;label;amount\n2026-12-01;Loyer;-850,00\n2026-12-02;Vente;120,50\n",
            "text/csv",
        ),
        (
            "Datum,Buchungstext,Betrag\n01.12.2026,Miete,-850\n".encode("cp1252") * 3,
            "text/csv",
        ),
        ("Notes pour décembre : rien de spécial.\n".encode(), "text/plain"),
        ("\ufeffNotes, en UTF-8 avec BOM\n".encode(), "text/plain"),
        ("Relevé de décembre".encode("utf-16"), "text/plain"),
        (
            b'<?xml version="1.0"?>\n<Invoice xmlns="urn:oasis:names:ubl"/>',
            "application/xml",
        ),
        (b"<rsm:CrossIndustryInvoice xmlns:rsm='urn:un'/>", "application/xml"),
        (XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (
            DOCX,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (ODS, "application/vnd.oasis.opendocument.spreadsheet"),
        (ODT, "application/vnd.oasis.opendocument.text"),
        (ZIP, "application/zip"),
        (_ole("WordDocument"), "application/msword"),
        (_ole("Workbook"), "application/vnd.ms-excel"),
    ],
)
def test_accepted_types_are_recognised_by_content(tmp_path, content, mime):
    path = tmp_path / "no-extension"
    path.write_bytes(content)
    assert storage.detect_type(path) == mime


MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\0" * 100


@pytest.mark.parametrize(
    "content",
    [
        EXE,
        ELF,
        MP4,
        MACHO,
        # A PDF header anywhere in the first kilobyte used to be enough.
        EXE[:64] + PDF + EXE[64:],
        ELF[:16] + PDF + ELF[16:],
        MACHO[:8] + PDF,
        b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + PDF,
        b"#!/bin/sh\n# " + PDF + b"\nrm -rf ~\n",
        b"<html><body>" + PDF + b"<script>alert(1)</script></body></html>",
        b"\xef\xbb\xbf  <!doctype html>" + PDF,
        b"\n<script>alert(1)</script>" + PDF,
        b"<svg xmlns='http://www.w3.org/2000/svg'>" + PDF + b"</svg>",
        b"<?php system($_GET['c']); ?>" + PDF,
        b"<p>" + PDF,
        b"#!/usr/bin/env python3\nprint('hello')\n",
        b"<!DOCTYPE html><html><script>alert(1)</script></html>",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"GIF89a\x01\x00\x01\x00" + b"\0" * 40,
        _ole("\x05SummaryInformation"),  # an .msi or other compound file
        b"\x00\x01\x02\x03 random binary \x00\xff\xfe",
        b"PK\x03\x04 truncated zip",
    ],
)
def test_other_content_is_refused(tmp_path, content):
    path = tmp_path / "facture.pdf"
    path.write_bytes(content)
    with pytest.raises(UnsupportedFileType):
        storage.detect_type(path)


def test_pdf_header_far_from_the_start_is_not_a_pdf(tmp_path):
    path = tmp_path / "facture.pdf"
    path.write_bytes(b"Dear customer, please find attached the invoice " + PDF)
    assert storage.detect_type(path) != "application/pdf"


@pytest.mark.parametrize(
    "original, expected",
    [
        ("relevé décembre.pdf", "relevé décembre.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\system.ini", "system.ini"),
        ("..", "document"),
        ("", "document"),
        (".htaccess", "htaccess"),
        ("CON.pdf", "_CON.pdf"),
        ('a<b>c:d"e|f?g*.pdf', "a_b_c_d_e_f_g_.pdf"),
        ("tab\there\nnew\x00line.pdf", "tab here newline.pdf"),
        ("facture\u202efdp.exe", "facturefdp.exe"),  # right-to-left override dropped
        ("reçu 🧾 فاتورة.pdf", "reçu 🧾 فاتورة.pdf"),
        ("trailing dots... ", "trailing dots"),
    ],
)
def test_safe_name(original, expected):
    assert storage.safe_name(original) == expected


def test_safe_name_bounds_length_in_bytes_and_keeps_the_extension():
    name = storage.safe_name("é" * 300 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= storage.MAX_NAME_BYTES
    assert name[:-4] == "é" * len(name[:-4])  # no character cut in half


def test_receive_hashes_and_stores_atomically(tmp_path):
    content = PDF + os.urandom(3 * storage.CHUNK_BYTES)
    incoming = storage.receive(io.BytesIO(content), tmp_path, 10 * 2**20, "a/b/rel.pdf")
    assert incoming.size == len(content)
    assert incoming.sha256 == hashlib.sha256(content).hexdigest()
    assert incoming.content_type == "application/pdf"
    stored = storage.store(incoming, tmp_path, "000001/2026-12/Bank statements")
    assert stored.relative_path == "000001/2026-12/Bank statements/rel.pdf"
    assert (tmp_path / stored.relative_path).read_bytes() == content
    assert not list((tmp_path / storage.INCOMING_DIR).iterdir())  # temp file gone


def test_same_name_never_overwrites(tmp_path):
    first = storage.store(
        storage.receive(io.BytesIO(PDF), tmp_path, 2**20, "x.pdf"), tmp_path, "c/p/s"
    )
    second = storage.store(
        storage.receive(io.BytesIO(PDF + b"2"), tmp_path, 2**20, "x.pdf"),
        tmp_path,
        "c/p/s",
    )
    assert (first.name, second.name) == ("x.pdf", "x-2.pdf")
    assert (tmp_path / "c/p/s/x.pdf").read_bytes() == PDF


def test_over_the_limit_stops_writing_and_leaves_nothing(tmp_path):
    with pytest.raises(UploadTooLarge) as caught:
        storage.receive(io.BytesIO(PDF * 1000), tmp_path, 1000, "big.pdf")
    assert caught.value.filename == "big.pdf"
    assert not list((tmp_path / storage.INCOMING_DIR).iterdir())


def test_over_the_limit_while_reading_on_drops_the_rest_and_refuses_at_finish(tmp_path):
    incoming = storage.Incoming(tmp_path, 1000, "big.pdf", keep_reading=True)
    for _ in range(5):
        assert incoming.write(PDF * 10) == len(PDF * 10)
    assert incoming.too_large
    assert not list((tmp_path / storage.INCOMING_DIR).iterdir())
    incoming.seek(0)
    assert incoming.read() == b""
    with pytest.raises(UploadTooLarge) as caught:
        incoming.finish()
    assert caught.value.filename == "big.pdf"
    incoming.close()


@pytest.mark.parametrize(
    "content, error", [(b"", EmptyUpload), (EXE, UnsupportedFileType)]
)
def test_refused_upload_leaves_nothing(tmp_path, content, error):
    with pytest.raises(error):
        storage.receive(io.BytesIO(content), tmp_path, 2**20, "f.pdf")
    assert not list((tmp_path / storage.INCOMING_DIR).iterdir())


def test_delete_refuses_paths_outside_the_store(tmp_path):
    (tmp_path / "files").mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    with pytest.raises(ValueError):
        storage.delete(tmp_path / "files", "../precious.txt")
    assert outside.exists()


def test_clean_incoming_removes_only_old_leftovers(tmp_path):
    folder = tmp_path / storage.INCOMING_DIR
    folder.mkdir()
    old, fresh = folder / "upload-old.part", folder / "upload-new.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1_000, 1_000))
    os.utime(fresh, (9_000, 9_000))
    assert storage.clean_incoming(tmp_path, older_than_s=3600, now_s=9_100) == 1
    assert fresh.exists() and not old.exists()
