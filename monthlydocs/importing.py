"""Importing clients from a CSV file, as spreadsheets and accounting tools write them.

The steps, each a function below: decode the bytes (BOM, UTF-8, cp1252, then the old
Mac and DOS code pages), find the header row under any title or metadata lines, sniff
the delimiter, map columns to client fields from header words in five languages and the
usual exports, check every row, then write them all in one transaction. A problem with
the file as a whole raises ImportFileError before anything is written; a problem with
one row rejects that row only, with its line number and the reason.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .clients import ClientInput, assign, check_input, fold, normalize_phone
from .config import LANGUAGES
from .db import write_transaction
from .errors import ImportFileError, InvalidEmail, InvalidLanguage, InvalidPhone
from .events import Event, record_many
from .timeutil import iso

# What a column can be mapped to; "ignore" drops a column the guess picked up.
FIELDS = (
    "name", "first_name", "last_name", "company", "email", "phone", "mobile",
    "language", "notes", "ignore",
)

# Header cells as people and tools write them. They are compared after header_key(), so
# case, accents, punctuation, camelCase and column numbers ("E-mail 2") do not matter.
HEADER_WORDS: dict[str, tuple[str, ...]] = {
    "company": (
        "Company", "Company name", "Organisation", "Organization", "Organization name",
        "Organization 1 - Name", "Business", "Business name", "Account name",
        "ContactName",  # Xero: the contact is the organisation; people are First/Last
        "Entreprise", "Société", "Nom de l'entreprise", "Nom de la société",
        "Raison sociale", "Dénomination", "Empresa", "Nombre de la empresa",
        "Razón social", "Compañía", "Sociedad", "Firma", "Firmenname", "Unternehmen",
        "Unternehmensname", "Unternehmensname/Kurzbezeichnung", "Kurzbezeichnung",
        "Name (Adressatentyp Unternehmen)", "Perusahaan", "Nama perusahaan",
        "Nama usaha", "Nama badan usaha",
    ),
    "first_name": (
        "First name", "Given name", "Forename", "Prénom", "Vorname", "Nombre de pila",
        "Nama depan", "Vorname (Adressatentyp natürl. Person)",
    ),
    "last_name": (
        "Last name", "Family name", "Surname", "Nom de famille", "Nachname",
        "Familienname", "Apellido", "Apellidos", "Nama belakang",
        "Name (Adressatentyp natürl. Person)",
    ),
    "name": (
        "Name", "Full name", "Display name", "Client", "Client name", "Customer",
        "Customer name", "Nom", "Nom complet", "Nom du client", "Nombre",
        "Nombre completo", "Cliente", "Nombre del cliente", "Kunde", "Kundenname",
        "Mandant", "Mandantenname", "Vollständiger Name", "Anzeigename", "Nama",
        "Nama lengkap", "Nama klien", "Nama pelanggan", "Klien", "Pelanggan",
    ),
    "email": (
        "Email", "E-mail", "Emails", "Email address", "E-mail Address", "Mail",
        "E-mail 1 - Value", "Primary email", "Courriel", "Adresse e-mail",
        "Adresse mail", "Adresse électronique", "Adresse courriel",
        "Adresse de messagerie", "Correo", "Correo electrónico",
        "Dirección de correo", "Dirección de correo electrónico", "E-Mail-Adresse",
        "Alamat email", "Surel", "Alamat surel",
    ),
    "mobile": (
        "Mobile", "Mobile phone", "Mobile number", "Mobile phone number", "Cell",
        "Cell phone", "Cellphone", "Portable", "Téléphone portable", "Tél. portable",
        "Numéro de portable", "Téléphone mobile", "Mobil", "Mobiltelefon", "Handy",
        "Handynummer", "Telefon mobil", "Móvil", "Teléfono móvil", "Celular", "No. HP",
        "Nomor HP", "HP", "Handphone", "No. handphone", "Nomor handphone", "Ponsel",
        "Nomor ponsel", "Seluler", "Telepon seluler", "Nomor seluler", "WhatsApp",
        "No. WA", "Nomor WhatsApp",
    ),
    "phone": (
        "Phone", "Phone number", "Telephone", "Telephone number", "Tel",
        "Business phone", "Work phone", "Home phone", "Primary phone",
        "Phone 1 - Value", "Téléphone", "Numéro de téléphone", "Téléphone fixe",
        "Fixe", "Telefon", "Telefonnummer", "Telefon geschäftlich", "Teléfono",
        "Número de teléfono", "Telepon", "No. telepon", "Nomor telepon", "No. telp",
        "Telp",
    ),
    "language": (
        "Language", "Preferred language", "Lang", "Locale", "Langue",
        "Langue préférée", "Sprache", "Korrespondenzsprache", "Idioma", "Bahasa",
    ),
    "notes": (
        "Notes", "Note", "Comments", "Comment", "Remarks", "Memo", "Remarques",
        "Commentaire", "Commentaires", "Observations", "Notizen", "Bemerkung",
        "Bemerkungen", "Anmerkung", "Notas", "Nota", "Observaciones", "Comentarios",
        "Catatan", "Keterangan",
    ),
}

# A header row is looked for among the first lines only: titles and metadata are short.
MAX_LINES_BEFORE_HEADER = 30
# Tab first: it never appears inside header words, and ';' files often hold commas.
DELIMITERS = ("\t", ";", ",")
# The Excel for Mac and MS-DOS code pages, tried when cp1252 cannot read the bytes.
LEGACY_ENCODINGS = ("mac_roman", "cp850")
# Letters the five languages write with accents; a legacy decoding must produce these.
_ACCENTED = set(
    "àáâãäåæçèéêëìíîïñòóôõöøœùúûüýÿßÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØŒÙÚÛÜÝŸ"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SCIENTIFIC = re.compile(r"^(\d)(?:[.,](\d+))?[eE]\+?(\d+)$")
_PHONE_PUNCTUATION = re.compile(r"[\s.\-/()]")
# Excel, LibreOffice and Sheets run a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Google Contacts writes each number as a pair of columns: "Phone 1 - Type" (or
# "- Label") holding Mobile, Work, Home... and "Phone 1 - Value" holding the number.
_TYPED_PHONE = re.compile(r"^phone\s*(\d+)\s*-\s*(type|label|value)$", re.IGNORECASE)
# Google puts several numbers of one type in one cell: "+33 6 ... ::: +33 7 ...".
_MULTI_VALUE = " ::: "


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Table:
    """The decoded file: the header row and each data row with its line in the file."""

    encoding: str
    delimiter: str
    header_line: int
    header: list[str]
    rows: list[tuple[int, list[str]]]


@dataclass(frozen=True)
class RowResult:
    line: int
    outcome: Outcome
    email: str | None = None
    client_id: int | None = None
    reason: str | None = None
    changed: tuple[str, ...] = ()


@dataclass
class ImportResult:
    """What an import did (or, with dry_run, would do), row by row."""

    file_name: str
    encoding: str
    delimiter: str
    header_line: int
    mapping: list[tuple[str, str]]
    # Header cells mapped to no field, typed phone columns included (see typed_phones).
    ignored: list[str]
    # (type column, value column) of each numbered phone, read by type: mobile first.
    typed_phones: list[tuple[str, str]] = field(default_factory=list)
    rows: list[RowResult] = field(default_factory=list)
    dry_run: bool = False
    assigned: int = 0

    @property
    def counts(self) -> dict[Outcome, int]:
        counts = dict.fromkeys(Outcome, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts

    @property
    def rejected(self) -> list[RowResult]:
        return [row for row in self.rows if row.outcome is Outcome.REJECTED]

    @property
    def client_ids(self) -> list[int]:
        return [row.client_id for row in self.rows if row.client_id is not None]


@dataclass
class _Candidate:
    line: int
    fields: dict[str, Any]

    @property
    def key(self) -> str:
        return self.fields["email"].lower()


def import_clients(
    db: Database,
    path: Path,
    now: datetime,
    *,
    region: str,
    overrides: dict[str, str] | None = None,
    dry_run: bool = False,
    template_id: int | None = None,
    actor: str = "cli",
) -> ImportResult:
    """Create or update a client for each valid row of the CSV file at ``path``.

    Clients are matched by email, ignoring case, so importing the same list again
    updates instead of duplicating. ``overrides`` maps header text to a field (see
    parse_overrides); ``region`` reads phone numbers written without a country code;
    ``template_id`` assigns every imported client to that template. With ``dry_run``
    the result is computed and nothing is written.

    Raises ImportFileError when the file as a whole cannot be imported.
    """
    overrides = overrides or {}
    table = read_table(path, known_columns=overrides.keys())
    columns = map_columns(table.header, overrides, file_name=path.name)
    forced = _resolve_overrides(table.header, overrides, path.name)
    phones = typed_phone_columns(table.header, skip=forced.keys())
    candidates, rejected = _check_rows(table.rows, columns, region, phones)
    result = ImportResult(
        file_name=path.name,
        encoding=table.encoding,
        delimiter=table.delimiter,
        header_line=table.header_line,
        mapping=[(_column_name(table.header, i), columns[i]) for i in sorted(columns)],
        ignored=[
            text for i, text in enumerate(table.header) if text and i not in columns
        ],
        typed_phones=[
            (table.header[kind], table.header[value]) for kind, value in phones
        ],
        dry_run=dry_run,
    )

    if dry_run:
        accepted = _plan(candidates, _existing_clients(db))[0]
    else:
        # BEGIN IMMEDIATE: the emails read here must still be free when the rows land.
        with write_transaction(db):
            accepted = _write(db, candidates, now, actor)
            if template_id is not None:
                ids = [row.client_id for row in accepted if row.client_id is not None]
                result.assigned = assign(db, ids, template_id, now, actor=actor)

    result.rows = sorted(accepted + rejected, key=lambda row: row.line)
    return result


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``["Courriel=email", "Tel=ignore"]`` -> ``{"Courriel": "email", ...}``."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        column, sep, target = pair.rpartition("=")
        target = target.strip().lower().replace("-", "_")
        if not sep or not column.strip():
            raise ImportFileError(
                f"--map {pair!r} must look like COLUMN=FIELD, for example "
                "--map 'Courriel=email'"
            )
        if target not in FIELDS:
            raise ImportFileError(
                f"--map {pair!r}: {target!r} is not a field; use one of "
                f"{', '.join(FIELDS)}"
            )
        overrides[column.strip()] = target
    return overrides


def safe_cell(text: str | None) -> str:
    """A value to write into a CSV file that a spreadsheet will show, never run.

    Text starting with = + - @ (or a tab or carriage return) is a formula to Excel and
    its kin, so it gets a leading apostrophe, which they read as "this is text".
    """
    value = "" if text is None else str(text)
    return "'" + value if value.startswith(FORMULA_START) else value


# --- Reading the file -----------------------------------------------------------------


def read_table(path: Path, known_columns: Iterable[str] = ()) -> Table:
    """Decode and split the file at ``path``; see parse_table."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"Cannot read {path}: {exc.strerror or exc}") from None
    return parse_table(data, path.name, known_columns)


def parse_table(data: bytes, name: str, known_columns: Iterable[str] = ()) -> Table:
    """Find the header row and split every row below it into cells.

    ``known_columns`` are header texts the person named (with --map), which count as
    header words when looking for the header row.
    """
    text, encoding = decode(data, name)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    known = {header_key(column) for column in known_columns}

    # Excel reads and writes a first line "sep=;" naming the delimiter.
    hinted = None
    if lines and re.fullmatch(r"sep=[,;\t]", lines[0].strip("\"' ")):
        hinted = lines[0].strip("\"' ")[-1]
        lines[0] = ""

    start = _find_header(lines, known)
    delimiter = hinted or _sniff_delimiter(lines[start : start + 50])
    records = _split_rows(lines, start, delimiter, name)
    if not records:
        raise ImportFileError(f"{name} has no rows: export the client list again")

    header_line, header = records[0]
    # Blank lines and rows of empty cells (";;;;" from Excel) are not clients.
    rows = [(line, cells) for line, cells in records[1:] if "".join(cells).strip()]
    if not rows:
        raise ImportFileError(
            f"{name} has a header on line {header_line} but no client rows under it"
        )
    return Table(encoding, delimiter, header_line, [_clean(c) for c in header], rows)


def decode(data: bytes, name: str) -> tuple[str, str]:
    """The text of the file and the name of its encoding; raises ImportFileError."""
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise ImportFileError(
            f"{name} is an Excel workbook, not a CSV file: open it in Excel, save it "
            "with File > Save As > CSV UTF-8, then import that file"
        )
    if b"\x00" in data and not _is_utf16(data):
        raise ImportFileError(
            f"{name} is not a text file: export the client list as CSV and import that"
        )
    text, encoding = _decode_text(data)
    if text is None:
        raise ImportFileError(
            f"{name} is not in an encoding the importer knows (UTF-8, UTF-16, "
            "Windows-1252, Mac Roman, DOS 850): save it again as CSV UTF-8"
        )
    if _CONTROL.search(text):
        raise ImportFileError(
            f"{name} is not a text file: export the client list as CSV and import that"
        )
    if not text.strip():
        raise ImportFileError(f"{name} is empty: export the client list again")
    return text, encoding


def _decode_text(data: bytes) -> tuple[str | None, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return _try(data, "utf-8-sig"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _try(data, "utf-16"), "utf-16"
    encoding = _utf16_without_bom(data)
    if encoding:
        return _try(data, encoding), encoding
    for encoding in ("utf-8", "cp1252"):
        text = _try(data, encoding)
        if text is not None:
            return text, encoding
    return _legacy_text(data)


def _is_utf16(data: bytes) -> bool:
    return data.startswith((b"\xff\xfe", b"\xfe\xff")) or bool(_utf16_without_bom(data))


def _try(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _utf16_without_bom(data: bytes) -> str | None:
    if b"\x00" not in data[:2000]:
        return None
    # Text of Latin letters in UTF-16 has a NUL in every other byte, all on one side.
    head = data[:2000]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if odd > len(head) // 3 and even == 0:
        return "utf-16-le"
    if even > len(head) // 3 and odd == 0:
        return "utf-16-be"
    return None


def _legacy_text(data: bytes) -> tuple[str | None, str]:
    """Mac Roman or DOS 850, whichever turns the bytes into plausible accented letters.

    Both decode any byte, so each reading is scored: a non-ASCII character counts when
    it is a letter the five languages use, in lower case unless it starts a word
    ("Müller", not "MÅller"). Random bytes give symbols and box drawings instead.
    """
    best: tuple[float, str, str] | None = None
    for encoding in LEGACY_ENCODINGS:
        text = data.decode(encoding)
        plausible = total = 0
        for previous, char in zip(" " + text, text, strict=False):
            if ord(char) > 127:
                total += 1
                in_word = previous.isalpha()
                plausible += char in _ACCENTED and (char.islower() or not in_word)
        share = plausible / total if total else 0.0
        if share >= 0.9 and (best is None or share > best[0]):
            best = (share, text, encoding)
    return (best[1], best[2]) if best else (None, "")


def _find_header(lines: list[str], known: set[str]) -> int:
    """Index of the first line where most cells are known header words.

    Title lines ("Client list 2026") and export metadata (DATEV's "EXTF";700;...) come
    first in some files; they never have two cells that look like headers.
    """
    first_filled = None
    for index, line in enumerate(lines[:MAX_LINES_BEFORE_HEADER]):
        cells = [_clean(c.strip().strip('"')) for c in re.split(r"[,;\t]", line)]
        cells = [c for c in cells if c]
        if not cells:
            continue
        if first_filled is None:
            first_filled = index
        hits = sum(1 for c in cells if guess_field(c) or header_key(c) in known)
        if hits and hits >= min(2, len(cells)):
            return index
    # No header recognised: the first line, so the error can name its columns.
    return first_filled or 0


def _sniff_delimiter(lines: list[str]) -> str:
    header = lines[0] if lines else ""
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS))
        if sniffed.delimiter in header:
            return sniffed.delimiter
    except csv.Error:
        pass
    # The Sniffer gives up on short or irregular files: count in the header instead.
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _split_rows(
    lines: list[str], start: int, delimiter: str, name: str
) -> list[tuple[int, list[str]]]:
    """Each record from the header on, with the line it starts on in the file."""
    reader = csv.reader(
        io.StringIO("\n".join(lines[start:])),
        delimiter=delimiter,
        skipinitialspace=True,
    )
    records = []
    next_line = start + 1
    try:
        for cells in reader:
            records.append((next_line, cells))
            next_line = start + reader.line_num + 1
    except csv.Error as exc:
        raise ImportFileError(
            f"{name}, line {next_line}: {exc}; check the quotes on that line"
        ) from None
    return records


def _clean(text: str) -> str:
    return text.replace("\ufeff", "").strip()


# --- Mapping columns to fields --------------------------------------------------------


def header_key(text: str) -> str:
    """A header cell folded for matching: 'E-mail 1 - Value' -> 'email value'."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)  # EmailAddress -> Email Address
    words = re.sub(r"[^a-z0-9]+", " ", fold(spaced)).split()
    key = " ".join(word for word in words if not word.isdigit())
    return key.replace("e mail", "email")


_KNOWN_HEADERS = {
    header_key(word): target for target, words in HEADER_WORDS.items() for word in words
}


def guess_field(header: str) -> str | None:
    """The field a header cell names, or None when it is not a known header word."""
    return _KNOWN_HEADERS.get(header_key(header))


def map_columns(
    header: list[str], overrides: dict[str, str] | None = None, *, file_name: str
) -> dict[int, str]:
    """Column index -> field, from the guesses and the person's overrides.

    Raises ImportFileError when an override names no column, or when no column holds
    the email or the name.
    """
    forced = _resolve_overrides(header, overrides or {}, file_name)
    columns = {i: target for i, target in forced.items() if target != "ignore"}
    taken = set(columns.values())
    for index, text in enumerate(header):
        target = guess_field(text) if index not in forced else None
        if target and target not in taken:
            columns[index] = target
            taken.add(target)

    # "Nom" beside "Prénom", "Name" beside "Vorname", "Nombre" beside "Apellidos":
    # a plain name column next to half of a person's name is the other half.
    names = [i for i, target in columns.items() if target == "name" and i not in forced]
    if names and ("first_name" in taken) != ("last_name" in taken):
        columns[names[0]] = "last_name" if "first_name" in taken else "first_name"
        taken = set(columns.values())

    _require_columns(header, taken, file_name)
    return columns


def _resolve_overrides(
    header: list[str], overrides: dict[str, str], file_name: str
) -> dict[int, str]:
    by_text = {text: i for i, text in reversed(list(enumerate(header)))}
    by_key = {header_key(text): i for i, text in reversed(list(enumerate(header)))}
    forced: dict[int, str] = {}
    for column, target in overrides.items():
        index = by_text.get(column.strip(), by_key.get(header_key(column)))
        if index is None:
            raise ImportFileError(
                f"--map names a column {column!r} that {file_name} does not have. "
                f"Columns found: {_list_columns(header)}"
            )
        forced[index] = target
    return forced


def _require_columns(header: list[str], taken: set[str], file_name: str) -> None:
    if "email" not in taken:
        raise ImportFileError(
            f"No email column found in {file_name}. Columns found: "
            f"{_list_columns(header)}. Say which column holds the email address with "
            "--map, for example --map 'Courriel=email'"
        )
    if not taken & {"name", "company", "first_name", "last_name"}:
        raise ImportFileError(
            f"No name column found in {file_name}. Columns found: "
            f"{_list_columns(header)}. Say which column holds the client's name with "
            "--map, for example --map 'Raison sociale=name'"
        )


def typed_phone_columns(
    header: list[str], skip: Iterable[int] = ()
) -> list[tuple[int, int]]:
    """(type column, value column) of each "Phone N - Type"/"Phone N - Value" pair, in
    the order of N. Columns in ``skip`` (mapped by the person with --map) are left out.
    """
    skipped = set(skip)
    kinds: dict[int, int] = {}
    values: dict[int, int] = {}
    for index, text in enumerate(header):
        match = _TYPED_PHONE.match(text.strip())
        if match and index not in skipped:
            found = values if match.group(2).lower() == "value" else kinds
            found.setdefault(int(match.group(1)), index)
    return [(kinds[n], values[n]) for n in sorted(values) if n in kinds]


def is_mobile_label(text: str) -> bool:
    """Whether a phone type names a mobile: "Mobile", "* Mobile" (Google's primary
    number), "Mobil", "Portable", "Móvil", "Ponsel", "Seluler"..."""
    return guess_field(text) == "mobile"


def _list_columns(header: list[str]) -> str:
    return ", ".join(repr(text) for text in header if text) or "none"


def _column_name(header: list[str], index: int) -> str:
    return header[index] or f"(column {index + 1})"


# --- Checking rows --------------------------------------------------------------------


class _Rejected(Exception):
    """One row cannot be imported; the message is the reason shown to the person."""


def _check_rows(
    rows: list[tuple[int, list[str]]],
    columns: dict[int, str],
    region: str,
    typed_phones: list[tuple[int, int]] = (),
) -> tuple[list[_Candidate], list[RowResult]]:
    """Valid rows, and the rejected ones with their reasons (first problem only)."""
    where = {target: index for index, target in columns.items()}
    candidates: list[_Candidate] = []
    rejected: list[RowResult] = []
    first_seen: dict[str, int] = {}
    for line, cells in rows:
        try:
            fields = _check_row(cells, where, region, typed_phones)
        except _Rejected as exc:
            rejected.append(RowResult(line, Outcome.REJECTED, reason=str(exc)))
            continue

        candidate = _Candidate(line, fields)
        if candidate.key in first_seen:
            rejected.append(
                RowResult(
                    line, Outcome.REJECTED, email=fields["email"],
                    reason=f"duplicate email {fields['email']} "
                    f"(already on line {first_seen[candidate.key]})",
                )
            )
            continue
        first_seen[candidate.key] = line
        candidates.append(candidate)
    return candidates, rejected


def _check_row(
    cells: list[str],
    where: dict[str, int],
    region: str,
    typed_phones: list[tuple[int, int]] = (),
) -> dict[str, Any]:
    def cell(index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def value(target: str) -> str:
        return cell(where.get(target))

    # A company name first; else the person's name; else whatever a name column says.
    person = " ".join(p for p in (value("first_name"), value("last_name")) if p)
    name = value("company") or person or value("name")
    email = value("email")
    if not name:
        raise _Rejected("no name")
    if not email:
        raise _Rejected("no email")

    language = value("language")
    data = ClientInput(name=name, email=email, language=language, notes=value("notes"))
    try:
        fields = check_input(data, region)
    except InvalidEmail:
        raise _Rejected(f"invalid email {email!r}") from None
    except InvalidLanguage:
        raise _Rejected(
            f"unknown language {language!r} (use {', '.join(LANGUAGES)})"
        ) from None

    try:
        fields["phone"] = recover_phone(_pick_phone(value, cell, typed_phones), region)
    except InvalidPhone as exc:
        raise _Rejected(str(exc)) from None
    return fields


def _pick_phone(value, cell, typed_phones: list[tuple[int, int]]) -> str:
    """The number to keep, mobile preferred: a mobile column, else a typed number whose
    type is a mobile, else the phone column, else the first typed number."""
    typed = [
        (cell(kind), cell(number).split(_MULTI_VALUE)[0].strip())
        for kind, number in typed_phones
    ]
    typed = [(kind, number) for kind, number in typed if number]
    mobiles = [number for kind, number in typed if is_mobile_label(kind)]
    return (
        value("mobile")
        or (mobiles[0] if mobiles else "")
        or value("phone").split(_MULTI_VALUE)[0].strip()
        or (typed[0][1] if typed else "")
    )


def recover_phone(raw: str | None, region: str) -> str | None:
    """A phone number in E.164, undoing what Excel does to numbers typed as numbers.

    Excel drops a leading "+" or "0" and may show long numbers in scientific notation
    ("3.3612345678E+10"). Scientific notation is expanded when it holds every digit;
    digits alone are read as having lost "+" (when they start with the region's
    country code), then as written (lost "0"), then with "+", then with the region's
    trunk prefix. Raises InvalidPhone with a reason naming the value.
    """
    import phonenumbers

    text = (raw or "").strip().lstrip("'")
    if not text:
        return None
    digits = _expand_scientific(text)
    if digits is None:
        digits = _PHONE_PUNCTUATION.sub("", text)
    if not digits.isdigit() or digits.startswith("0"):
        try:
            return normalize_phone(text, region)
        except InvalidPhone:
            raise InvalidPhone(
                f"invalid phone number {raw!r}: write it with its country code, "
                f"like {_example_number(region)}"
            ) from None

    own_code = str(phonenumbers.country_code_for_region(region.upper()))
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    trunk = metadata.national_prefix if metadata else None
    attempts = ["+" + digits] if digits.startswith(own_code) else []
    attempts += [digits, "+" + digits] + ([trunk + digits] if trunk else [])
    for attempt in attempts:
        try:
            return normalize_phone(attempt, region)
        except InvalidPhone:
            continue
    raise InvalidPhone(
        f"invalid phone number {raw!r}: not a number for {region.upper()} nor one "
        f"with a country code; write it like {_example_number(region)}"
    )


def _example_number(region: str) -> str:
    """A mobile number of the firm's country, as people there would recognise it."""
    import phonenumbers

    number = phonenumbers.example_number_for_type(
        region.upper(), phonenumbers.PhoneNumberType.MOBILE
    )
    if number is None:
        return "+33 6 12 34 56 78"
    return phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )


def _expand_scientific(text: str) -> str | None:
    """'3.3612345678E+10' -> '33612345678'; None when it is not scientific notation.

    Raises InvalidPhone when Excel rounded the number: '3.36123E+11' lost its last
    digits, which nothing can bring back.
    """
    match = _SCIENTIFIC.match(text.replace(" ", ""))
    if not match:
        return None
    decimals, exponent = match.group(2) or "", int(match.group(3))
    if exponent != len(decimals):
        raise InvalidPhone(
            f"phone number {text!r} was rounded by Excel (scientific notation) and its "
            "last digits are lost: format the column as text and type the number again"
        )
    try:
        return str(int(Decimal(match.group(1) + "." + decimals + "E" + str(exponent))))
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        return None


# --- Writing --------------------------------------------------------------------------


_COMPARED = ("name", "phone", "language", "notes")


def _existing_clients(db: Database) -> dict[str, dict[str, Any]]:
    """Every client by lower-case email, read once instead of once per row."""
    rows = db.query("SELECT id, name, email, phone, language, notes FROM clients")
    return {row["email"].lower(): row for row in rows}


def _plan(
    candidates: list[_Candidate], existing: dict[str, dict[str, Any]]
) -> tuple[list[RowResult], list[_Candidate], list[tuple[_Candidate, dict[str, Any]]]]:
    """The outcome of each candidate, the ones to insert and the ones to update."""
    results: list[RowResult] = []
    to_create: list[_Candidate] = []
    to_update: list[tuple[_Candidate, dict[str, Any]]] = []
    for candidate in candidates:
        current = existing.get(candidate.key)
        email = candidate.fields["email"]
        if current is None:
            to_create.append(candidate)
            results.append(RowResult(candidate.line, Outcome.CREATED, email=email))
            continue

        # An empty cell keeps what is on record: a partial list must not erase data.
        changes = {
            key: candidate.fields[key]
            for key in _COMPARED
            if candidate.fields[key] not in (None, current[key])
        }
        outcome = Outcome.UPDATED if changes else Outcome.UNCHANGED
        results.append(
            RowResult(candidate.line, outcome, email=current["email"],
                      client_id=current["id"], changed=tuple(changes))
        )
        if changes:
            to_update.append((candidate, {**current, **changes}))
    return results, to_create, to_update


def _write(
    db: Database, candidates: list[_Candidate], now: datetime, actor: str
) -> list[RowResult]:
    results, to_create, to_update = _plan(candidates, _existing_clients(db))
    stamp = iso(now)

    # New rows get ids above the current maximum: nobody else writes inside BEGIN
    # IMMEDIATE, and executemany does not report the ids it assigned.
    last_id = db.execute("SELECT coalesce(max(id), 0) FROM clients").fetchone()[0]
    db.conn.executemany(
        "INSERT INTO clients (name, email, phone, language, notes, status, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?)",
        (
            [c.fields["name"], c.fields["email"], c.fields["phone"],
             c.fields["language"], c.fields["notes"], stamp, stamp]
            for c in to_create
        ),
    )
    new_ids = {
        email.lower(): client_id
        for client_id, email in db.execute(
            "SELECT id, email FROM clients WHERE id > ?", [last_id]
        ).fetchall()
    }
    db.conn.executemany(
        "UPDATE clients SET name = ?, phone = ?, language = ?, notes = ?,"
        " updated_at = ? WHERE id = ?",
        ([*(row[key] for key in _COMPARED), stamp, row["id"]] for _, row in to_update),
    )

    created = [new_ids[c.key] for c in to_create]
    updated = [row["id"] for _, row in to_update]
    # TODO: record which fields changed, as update_client does, once record_many
    # accepts per-row data; until then the import's result holds them.
    record_many(db, Event.CLIENT_CREATED, now, ((i, i) for i in created),
                actor=actor, subject_type="client")
    record_many(db, Event.CLIENT_UPDATED, now, ((i, i) for i in updated),
                actor=actor, subject_type="client")

    by_line = {c.line: new_ids[c.key] for c in to_create}
    return [
        _with_id(row, by_line[row.line]) if row.line in by_line else row
        for row in results
    ]


def _with_id(row: RowResult, client_id: int) -> RowResult:
    return RowResult(
        row.line, row.outcome, row.email, client_id, row.reason, row.changed
    )


def describe_delimiter(delimiter: str) -> str:
    """'\\t' -> 'tab', for people reading a summary."""
    return {"\t": "tab", ";": "semicolon", ",": "comma"}.get(delimiter, repr(delimiter))


def describe_encoding(encoding: str) -> str:
    return {
        "utf-8": "UTF-8",
        "utf-8-sig": "UTF-8 with BOM",
        "utf-16": "UTF-16",
        "utf-16-le": "UTF-16",
        "utf-16-be": "UTF-16",
        "cp1252": "Windows-1252",
        "mac_roman": "Mac Roman",
        "cp850": "DOS 850",
    }.get(encoding, encoding)
