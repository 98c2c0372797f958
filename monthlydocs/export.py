"""Exporting documents for the accounting software: a streamed ZIP, or a folder.

Entries are laid out ``Client/Period/Template/Slot/filename`` with names safe on Windows and
macOS (duplicates numbered), plus ``manifest.csv``. The ZIP is built by zipstream-ng, which
reads each file as it is sent: memory stays flat whatever the size, and ZIP64 is used when
the archive needs it.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from sqlite_utils import Database

from .importing import FORMULA_START, safe_cell
from .storage import safe_name

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = [
    "client",
    "email",
    "template",
    "period",
    "slot",
    "file",
    "size",
    "sha256",
    "uploaded_at",
    "review_state",
    "note",
]


@dataclass(frozen=True)
class Selection:
    period: str | None = None
    template_id: int | None = None
    client_id: int | None = None
    approved_only: bool = False


@dataclass(frozen=True)
class Entry:
    arcname: str
    path: Path
    row: dict[str, Any]


def select(db: Database, selection: Selection) -> list[dict[str, Any]]:
    where, params = [], []
    if selection.period:
        where.append("c.period = ?")
        params.append(selection.period.strip().upper())
    if selection.template_id is not None:
        where.append("c.template_id = ?")
        params.append(selection.template_id)
    if selection.client_id is not None:
        where.append("c.client_id = ?")
        params.append(selection.client_id)
    if selection.approved_only:
        where.append("d.review_state = 'approved'")
    sql = (
        "SELECT cl.name AS client, cl.email, c.template_name AS template, c.period,"
        " i.name AS slot, d.original_filename, d.stored_path, d.size, d.sha256,"
        " d.uploaded_at, d.review_state, d.review_note"
        " FROM documents d JOIN checklist_items i ON i.id = d.item_id"
        " JOIN checklists c ON c.id = i.checklist_id"
        " JOIN clients cl ON cl.id = c.client_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += (
        " ORDER BY cl.name COLLATE NOCASE, c.period, c.template_name, i.position, d.id"
    )
    return list(db.query(sql, params))


def entries(rows: list[dict[str, Any]], files_dir: Path) -> list[Entry]:
    """Arcnames for every document; the same name twice in a folder gets " (2)"."""
    taken: set[str] = {MANIFEST.casefold()}
    result = []
    for row in rows:
        folder = PurePosixPath(
            *(
                _plain_name(part, "_")
                for part in (row["client"], row["period"], row["template"], row["slot"])
            )
        )
        name = _plain_name(row["original_filename"])
        arcname = _unique(str(folder / name), taken)
        result.append(Entry(arcname, files_dir / row["stored_path"], row))
    return result


def _plain_name(text: str, fallback: str = "document") -> str:
    """A safe file name that no spreadsheet reads as a formula ("=1+2" -> "_=1+2"),
    so the manifest's file column is the archive's name exactly."""
    name = safe_name(text, fallback)
    return "_" + name if name.startswith(FORMULA_START) else name


def _unique(arcname: str, taken: set[str]) -> str:
    """Case-insensitively unique, since Windows and macOS folders ignore case."""
    candidate, number = arcname, 1
    path = PurePosixPath(arcname)
    while candidate.casefold() in taken:
        number += 1
        candidate = str(path.with_name(f"{path.stem} ({number}){path.suffix}"))
    taken.add(candidate.casefold())
    return candidate


def manifest(items: list[Entry]) -> bytes:
    """The CSV manifest; any cell a spreadsheet would run as a formula gets a leading '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    for entry in items:
        row = entry.row
        values = [
            row["client"],
            row["email"],
            row["template"],
            row["period"],
            row["slot"],
            entry.arcname,  # starts with the client's folder name
            row["size"],
            row["sha256"],
            row["uploaded_at"],
            row["review_state"],
            row["review_note"],
        ]
        # Every cell, not only the free-text ones: a client who registered themselves
        # chose their own name and email, and the file column starts with that name.
        writer.writerow([safe_cell(value) for value in values])
    # A BOM so that Excel opens the UTF-8 file with its accents intact.
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def zip_stream(items: list[Entry]):
    """A sized, stored (uncompressed) ZipStream: its length is known before sending."""
    from zipstream import ZipStream

    stream = ZipStream(sized=True)
    for entry in items:
        stream.add_path(str(entry.path), entry.arcname)
    stream.add(manifest(items), MANIFEST)
    return stream


def write_zip(items: list[Entry], target: Path) -> int:
    """Write the ZIP beside ``target``, fsync, then rename into place. Returns bytes."""
    target = target.expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    written = 0
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in zip_stream(items):
                out.write(chunk)
                written += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written


def write_folder(items: list[Entry], target: Path) -> int:
    """Copy the same layout into a folder (for a synced or shared drive)."""
    total = 0
    for entry in items:
        destination = target / entry.arcname
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry.path, destination)
        total += entry.row["size"]
    (target / MANIFEST).write_bytes(manifest(items))
    return total


def missing_files(items: list[Entry]) -> Iterator[Entry]:
    return (entry for entry in items if not entry.path.is_file())
