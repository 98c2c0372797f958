"""The file store: streamed, checksummed, fsynced uploads renamed into place.

An upload is written chunk by chunk into ``files/.incoming/`` (on the same file system
as its destination, so the final step is a rename), hashed and counted as it arrives,
refused as soon as it passes the size limit, then checked by its content, fsynced, and
only then linked under ``files/<client>/<period>/<slot>/``. The caller records the row
last ("files first, then rows"): a crash leaves at worst an orphan file, never a row
that points at nothing.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import re
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import EmptyUpload, UnsupportedFileType, UploadError, UploadTooLarge

INCOMING_DIR = ".incoming"
CHUNK_BYTES = 1 << 20
MAX_NAME_BYTES = 120  # well under every file system's 255-byte limit
HEAD_BYTES = 64 * 1024

# What the portal accepts, decided by content; the extension is only a display hint.
ACCEPTED = {
    "application/pdf": "PDF",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/webp": "WebP",
    "image/tiff": "TIFF",
    "text/csv": "CSV",
    "text/plain": "TXT",
    "application/xml": "XML",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "XLSX",
    "application/vnd.ms-excel": "XLS",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "DOCX",
    "application/msword": "DOC",
    "application/vnd.oasis.opendocument.spreadsheet": "ODS",
    "application/vnd.oasis.opendocument.text": "ODT",
    "application/zip": "ZIP",
}
# For the file picker's ``accept`` attribute: a hint only, the server decides.
ACCEPT_HINT = (
    "application/pdf,image/*,.heic,.heif,.csv,.txt,.xml,.xlsx,.xls,.docx,.doc,"
    ".ods,.odt,.zip"
)

_RESERVED_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.I)


def max_bytes(max_upload_mb: int) -> int:
    return max_upload_mb * 1024 * 1024


# -- names -----------------------------------------------------------------------------


def safe_name(original: str | None, fallback: str = "document") -> str:
    """A file name safe to create anywhere, close to what the person sent.

    Keeps letters of every script and emoji; drops any folder part, control and
    bidirectional-override characters, characters Windows reserves, leading dots (no
    hidden files, no ``..``) and trailing dots or spaces; avoids device names such as
    ``CON``; and bounds the length in bytes while keeping the extension.
    """
    text = unicodedata.normalize("NFC", original or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace()
        or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    text = _RESERVED_CHARS.sub("_", text)
    text = " ".join(text.split()).lstrip(". ").rstrip(". ")
    if not text:
        return fallback
    if _WINDOWS_DEVICES.match(text):
        text = "_" + text
    return _bounded(text, MAX_NAME_BYTES)


def _bounded(name: str, limit: int) -> str:
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode("utf-8")) > 16:
        stem, extension = name, ""
    room = limit - len(extension.encode("utf-8")) - (1 if extension else 0)
    cut = stem.encode("utf-8")[:room].decode("utf-8", "ignore").rstrip(". ")
    return f"{cut}.{extension}" if extension else cut


# -- receiving -------------------------------------------------------------------------


class Incoming:
    """A file being received: a temporary file that hashes and counts what is written.

    It behaves as the writable, seekable stream Werkzeug's form parser expects, so the
    web face hands it out as the parser's stream factory and memory stays flat whatever
    the size. Writing past ``limit`` deletes what was written and raises UploadTooLarge;
    with ``keep_reading`` it raises nothing then: the rest is read and dropped, so the
    other files of the same form still arrive, and ``finish()`` raises UploadTooLarge.
    """

    def __init__(
        self,
        files_dir: Path,
        limit: int,
        filename: str | None = None,
        *,
        keep_reading: bool = False,
    ):
        self.filename = filename or ""
        self.limit = limit
        self.keep_reading = keep_reading
        self.size = 0
        self.sha256 = ""
        self.content_type = ""
        self.too_large = False
        self._hash = hashlib.sha256()
        folder = Path(files_dir) / INCOMING_DIR
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=folder)
        self.path = Path(name)
        self._file = os.fdopen(fd, "w+b")
        self.finished = False

    # The stream interface Werkzeug uses (write, then seek(0), read, close).
    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.too_large:
            return len(data)
        if self.size > self.limit:
            self.too_large = True
            self.discard()
            if self.keep_reading:
                return len(data)
            raise self._too_large_error()
        self._hash.update(data)
        return self._file.write(data)

    def _too_large_error(self) -> UploadError:
        return _refused(
            UploadTooLarge,
            self.filename,
            f"{self.filename or 'the file'} is larger than {self.limit} bytes",
        )

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.too_large:
            return 0
        return self._file.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        if self.too_large:
            return b""
        return self._file.read(size)

    def tell(self) -> int:
        if self.too_large:
            return 0
        return self._file.tell()

    def flush(self) -> None:
        if not self.too_large:
            self._file.flush()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        """Close; the temporary file goes too unless it was moved into place."""
        self.discard()

    def discard(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)

    def finish(self) -> Incoming:
        """Check the content, fsync, and fix sha256 and content type.

        Raises UploadTooLarge, EmptyUpload or UnsupportedFileType (and deletes the
        file) when refused.
        """
        if self.finished:
            return self
        if self.too_large:
            raise self._too_large_error()
        self._file.flush()
        os.fsync(self._file.fileno())
        if self.size == 0:
            self.discard()
            raise _refused(
                EmptyUpload, self.filename, f"{self.filename or 'the file'} is empty"
            )
        try:
            self.content_type = detect_type(self.path)
        except UnsupportedFileType as exc:
            self.discard()
            raise _refused(
                UnsupportedFileType,
                self.filename,
                f"{self.filename or 'the file'} is not a type the portal accepts"
                f" ({exc} content)",
            ) from None
        self.sha256 = self._hash.hexdigest()
        self.finished = True
        return self


def _refused(kind: type[UploadError], filename: str, message: str) -> UploadError:
    """An UploadError that also carries the file's name, for the faces' messages."""
    error = kind(message)
    error.filename = filename
    return error


def receive(
    source: BinaryIO, files_dir: Path, limit: int, filename: str | None
) -> Incoming:
    """Copy a readable stream into a finished Incoming (for callers without Werkzeug)."""
    incoming = Incoming(files_dir, limit, filename)
    try:
        while chunk := source.read(CHUNK_BYTES):
            incoming.write(chunk)
        return incoming.finish()
    except BaseException:
        incoming.discard()
        raise


@dataclass
class Stored:
    relative_path: str  # relative to files_dir, with forward slashes
    name: str


def store(incoming: Incoming, files_dir: Path, folder: str) -> Stored:
    """Move a finished upload into ``files_dir/folder`` under a safe, unused name.

    ``os.link`` refuses to replace an existing file, so two uploads with the same name
    can never overwrite each other, even at the same moment; the second gets ``-2``.
    """
    if not incoming.finished:
        raise ValueError("finish() the upload before storing it")
    files_dir = Path(files_dir)
    target_dir = files_dir / folder
    target_dir.mkdir(parents=True, exist_ok=True)
    base = safe_name(incoming.filename)
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    for number in range(1, 10_000):
        name = base if number == 1 else _numbered(stem, extension, number)
        try:
            os.link(incoming.path, target_dir / name)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - ten thousand files of one name in one slot
        raise OSError(f"no free name for {base!r} in {target_dir}")
    _fsync_dir(target_dir)
    incoming.discard()
    relative = (target_dir / name).relative_to(files_dir).as_posix()
    return Stored(relative_path=relative, name=name)


def _numbered(stem: str, extension: str, number: int) -> str:
    suffix = f"-{number}" + (f".{extension}" if extension else "")
    return _bounded(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))) + suffix


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def delete(files_dir: Path, relative_path: str) -> None:
    """Remove a stored file, refusing any path that leaves ``files_dir``."""
    root = Path(files_dir).resolve()
    target = (root / relative_path).resolve()
    if root not in target.parents:
        raise ValueError(f"{relative_path!r} is outside the file store")
    target.unlink(missing_ok=True)


def clean_incoming(
    files_dir: Path, older_than_s: float, now_s: float | None = None
) -> int:
    """Delete temporary files left by uploads that died (a crash, a killed worker)."""
    folder = Path(files_dir) / INCOMING_DIR
    if not folder.is_dir():
        return 0
    limit = (time.time() if now_s is None else now_s) - older_than_s
    removed = 0
    for path in folder.glob("upload-*.part"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
    return removed


def folder_for(client_folder: str, period: str, slot_name: str) -> str:
    """``<client>/<period>/<slot>``, each part a safe name."""
    return "/".join(
        (client_folder, safe_name(period, "period"), safe_name(slot_name, "documents"))
    )


# -- content types ---------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEIC_BRANDS = {"heic", "heix", "hevc", "hevx", "heim", "heis"}
_HEIF_BRANDS = {"mif1", "msf1"}


# Programs and scripts, refused whatever else the file holds: a polyglot (an .exe with a
# PDF header tucked inside, say) must not pass as the harmless kind.
_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows and DOS programs
    b"\x7fELF",  # Linux and BSD programs
    # Mach-O (macOS programs), both byte orders, 32 and 64 bits; then the universal
    # binary, whose magic Java class files share.
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"#!",  # scripts
)
# Markup a browser would run as a page (the HTML patterns of the WHATWG MIME sniffing
# standard, plus SVG and PHP), looked for after a BOM and leading whitespace.
_MARKUP_OPENINGS = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b"
    rb"|body|br|p|svg|\?php)(?=[\s>/]|$)",
    re.IGNORECASE,
)
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_LEADING_BLANKS = b" \t\r\n\f\x00"
# Some PDF producers put a few bytes before the "%PDF-" header; readers accept that,
# and so does the portal, as long as the prefix is short and is not markup.
PDF_PREFIX_MAX = 16


def detect_type(path: Path) -> str:
    """The MIME type of an accepted file, judged by its bytes; else UnsupportedFileType."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    _refuse_programs_and_pages(head)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_type(path)
    if head.startswith(_OLE_MAGIC):
        return _ole_type(path)
    if head[4:8] == b"ftyp":
        return _isobmff_type(head)
    if _is_pdf(head):
        return "application/pdf"

    import filetype

    kind = filetype.guess(head)
    if kind is not None:
        if kind.mime in ACCEPTED:
            return kind.mime
        raise UnsupportedFileType(kind.extension)
    text_type = _text_type(head)
    if text_type:
        return text_type
    raise UnsupportedFileType("")


def _without_bom_and_blanks(head: bytes) -> bytes:
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    return head.lstrip(_LEADING_BLANKS)


def _refuse_programs_and_pages(head: bytes) -> None:
    if head.startswith(_EXECUTABLE_MAGIC):
        raise UnsupportedFileType("program")
    start = _without_bom_and_blanks(head)
    if start.startswith(b"#!"):
        raise UnsupportedFileType("script")
    if _MARKUP_OPENINGS.match(start):
        raise UnsupportedFileType("html")


def _is_pdf(head: bytes) -> bool:
    """A "%PDF-" header at the start, after at most a short prefix that is not markup."""
    start = _without_bom_and_blanks(head)
    at = start.find(b"%PDF-", 0, PDF_PREFIX_MAX + len(b"%PDF-"))
    return at != -1 and b"<" not in start[:at]


def _isobmff_type(head: bytes) -> str:
    major = head[8:12].decode("latin-1")
    size = int.from_bytes(head[0:4], "big")
    compatible = {
        head[i : i + 4].decode("latin-1") for i in range(16, min(size, 256), 4)
    }
    if major in _HEIC_BRANDS:
        return "image/heic"
    if major in _HEIF_BRANDS and compatible & (_HEIC_BRANDS | _HEIF_BRANDS) - {major}:
        return "image/heif" if not compatible & _HEIC_BRANDS else "image/heic"
    raise UnsupportedFileType(major.strip())


def _zip_type(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                declared = archive.read("mimetype")[:100].decode("ascii", "replace")
                if declared.strip() in ACCEPTED:
                    return declared.strip()
            if "[Content_Types].xml" in names:
                if any(name.startswith("word/") for name in names):
                    return ACCEPTED_KEYS["DOCX"]
                if any(name.startswith("xl/") for name in names):
                    return ACCEPTED_KEYS["XLSX"]
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        raise UnsupportedFileType("zip") from None
    return "application/zip"


ACCEPTED_KEYS = {label: mime for mime, label in ACCEPTED.items()}

# Directory entries of an OLE compound file are 128 bytes, aligned on 128 in the file;
# each starts with its name in UTF-16LE. Word keeps a "WordDocument" stream, Excel a
# "Workbook" (or "Book" before 97). Anything else in that container (an .msi installer,
# for one) is refused.
_OLE_STREAMS = {
    "WordDocument".encode("utf-16-le") + b"\0\0": "application/msword",
    "Workbook".encode("utf-16-le") + b"\0\0": "application/vnd.ms-excel",
    "Book".encode("utf-16-le") + b"\0\0": "application/vnd.ms-excel",
}


def _ole_type(path: Path) -> str:
    offset = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            for name, mime in _OLE_STREAMS.items():
                start = chunk.find(name)
                while start != -1:
                    if (offset + start) % 128 == 0:
                        return mime
                    start = chunk.find(name, start + 1)
            offset += len(chunk)
    raise UnsupportedFileType("ole")


def _decode_text(head: bytes) -> str | None:
    """The head as text when it is text (UTF-8/16 with BOM, UTF-8, or a Latin code page)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return head[2:].decode(
                "utf-16-le" if head[0] == 0xFF else "utf-16-be", "ignore"
            )
        except UnicodeDecodeError:
            return None
    if b"\x00" in head:
        return None
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the head is still UTF-8.
        if exc.start < len(body) - 4:
            text = body.decode("cp1252", "replace")
        else:
            text = body[: exc.start].decode("utf-8")
    controls = sum(
        1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n\f"
    )
    return text if controls <= len(text) // 100 else None


def _text_type(head: bytes) -> str | None:
    text = _decode_text(head)
    if text is None or not text.strip():
        return None
    root = _markup_root(text)
    if root is not None:
        # Web pages and SVG can carry scripts; an e-invoice is XML of another kind.
        if root.rpartition(":")[2].lower() in ("html", "svg", "xhtml"):
            raise UnsupportedFileType("html")
        return "application/xml"
    if _looks_like_csv(text):
        return "text/csv"
    return "text/plain"


def _markup_root(text: str) -> str | None:
    """The root element's name when the text is markup, else None."""
    rest = text.lstrip()
    while rest.startswith("<?") or rest.startswith("<!"):
        if rest.startswith("<!--"):
            end = rest.find("-->")
            rest = rest[end + 3 :].lstrip() if end != -1 else ""
        elif rest.startswith("<?"):
            end = rest.find("?>")
            rest = rest[end + 2 :].lstrip() if end != -1 else ""
        else:  # <!DOCTYPE name ...> names the root
            match = re.match(r"<!doctype\s+([\w:.-]+)", rest, re.I)
            return match.group(1) if match else None
    match = re.match(r"<([A-Za-z_][\w:.-]*)", rest)
    return match.group(1) if match else None


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if len(lines) < 2:
        return False
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return False
    counts = {line.count(dialect.delimiter) for line in lines[:-1]}
    return len(counts) == 1 and counts.pop() > 0
