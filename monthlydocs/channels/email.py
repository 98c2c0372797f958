"""Email: messages written as standard MIME bytes, sent to .eml files or over SMTP.

yagmail is not used: it cannot give a separate plain-text part, repeats Message-IDs and
opens a connection per message (see the README's dependency table). ``smtplib`` with one
connection per run does what we need.
"""

from __future__ import annotations

import binascii
import os
import re
import secrets
import smtplib
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate, make_msgid, quote
from functools import lru_cache
from pathlib import Path

from ..config import Settings
from ..errors import DeliveryError, PermanentDeliveryError
from ..messages import Composed

# RFC 5322 asks for lines of at most 78 characters (998 at the very most).
MAX_LINE = 78
CRLF = "\r\n"
# Characters that oblige a display name to be a quoted string (as email.utils.formataddr).
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')


@dataclass(frozen=True)
class OutgoingEmail:
    """A message ready for the wire: who sends, who receives, its Message-ID and its
    bytes exactly as handed to SMTP (CRLF line ends; dot-stuffing is smtplib's job)."""

    sender: str
    recipients: tuple[str, ...]
    message_id: str
    data: bytes


def build_message(
    settings: Settings,
    to_name: str,
    to_address: str,
    composed: Composed,
    language: str | None = None,
) -> OutgoingEmail:
    """A multipart/alternative message with a real text part and an HTML part.

    The bytes are written directly rather than through the ``email`` package's objects
    and generator, which cost more than composing the message itself in a run of 10,000
    reminders. The result is the same standard message: non-ASCII names and subjects
    are RFC 2047 encoded words, header lines are folded at 78 characters, both bodies
    are UTF-8 in quoted-printable (lines of at most 76). The headers that are the same
    for every message of the firm (From, Reply-To, MIME-Version) are encoded once.
    """
    # "=" never appears in quoted-printable text as itself, so no body can contain a
    # boundary that starts with "=_" (RFC 2045, section 6.7).
    boundary = f"=_{secrets.token_hex(12)}"
    message_id = make_msgid(domain=_domain(settings.from_address))
    head = [
        f"To: {_address(to_name, to_address, 'To')}",
        _subject(composed.subject),
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {message_id}",
    ]
    if language:
        head.append(_unstructured("Content-Language", language))
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    data = b"".join(
        [
            _firm_headers(
                settings.from_name,
                settings.from_address,
                settings.firm.name,
                settings.reply_to,
            ),
            (CRLF.join(head) + CRLF + CRLF).encode("utf-8"),
            _text_part(boundary, "plain", composed.text),
            _text_part(boundary, "html", composed.html),
            f"--{boundary}--{CRLF}".encode("ascii"),
        ]
    )
    return OutgoingEmail(settings.from_address, (to_address,), message_id, data)


@lru_cache(maxsize=16)
def _firm_headers(
    from_name: str, from_address: str, reply_name: str, reply_to: str
) -> bytes:
    """The headers every message of the firm shares, encoded once per process."""
    lines = [f"From: {_address(from_name, from_address, 'From')}"]
    if reply_to:
        lines.append(f"Reply-To: {_address(reply_name, reply_to, 'Reply-To')}")
    lines += ["Auto-Submitted: auto-generated", "MIME-Version: 1.0"]
    return (CRLF.join(lines) + CRLF).encode("utf-8")


@lru_cache(maxsize=1024)
def _subject(subject: str) -> str:
    """The Subject line: a run sends the same few subjects (per language and step)."""
    return _unstructured("Subject", subject)


def _unstructured(field: str, value: str) -> str:
    """``Field: value``, folded; text that is not plain ASCII as encoded words."""
    value = " ".join(value.split())
    if _plain(value) and len(field) + 2 + len(value) <= MAX_LINE:
        return f"{field}: {value}"
    charset = None if _plain(value) else "utf-8"
    folded = Header(value, charset, header_name=field).encode(linesep=CRLF)
    return f"{field}: {folded}"


def _address(name: str, address: str, field: str) -> str:
    """``Name <address>`` for an address header, the name encoded or quoted as needed.

    An address with non-ASCII letters is written as it is (RFC 6532): the server must
    accept SMTPUTF8 for it, which the SMTP backend asks for.
    """
    if not address.isprintable() or " " in address:
        # A line break here would let the address add headers of its own.
        raise PermanentDeliveryError(f"Invalid email address {address!r}")
    name = " ".join(name.split())
    if not name:
        return address
    if _plain(name):
        phrase = f'"{quote(name)}"' if _SPECIALS.search(name) else name
        if len(field) + 2 + len(phrase) + len(address) + 3 <= MAX_LINE:
            return f"{phrase} <{address}>"
        phrase = Header(phrase, header_name=field).encode(linesep=CRLF)
    else:
        phrase = Header(name, "utf-8", header_name=field).encode(linesep=CRLF)
    last_line = f"{field}: {phrase}".rpartition(CRLF)[2]
    fits = len(last_line) + len(address) + 3 <= MAX_LINE
    return f"{phrase}{' ' if fits else CRLF + ' '}<{address}>"


def _plain(text: str) -> bool:
    """Printable ASCII that no reader could take for an encoded word."""
    return text.isascii() and text.isprintable() and "=?" not in text


def _text_part(boundary: str, subtype: str, text: str) -> bytes:
    """One body part: its delimiter, headers and UTF-8 text in quoted-printable.

    binascii's C encoder keeps lines to 76 characters and encodes trailing spaces and
    control characters; line ends of any kind become CRLF.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    body = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    head = (
        f"--{boundary}{CRLF}"
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}"
    )
    return head.encode("ascii") + body + CRLF.encode("ascii")


def _domain(address: str) -> str:
    """The domain for Message-IDs: the sender's, when it is plain ASCII."""
    domain = address.rpartition("@")[2]
    return domain if domain and domain.isascii() else "localhost"


class FileEmailBackend:
    """Writes each message as an RFC 5322 .eml file into the outbox folder."""

    name = "file"

    def __init__(self, folder: Path):
        self.folder = folder

    def __enter__(self) -> FileEmailBackend:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc_info) -> None:
        pass

    def send(self, message: OutgoingEmail) -> str:
        stem = message.message_id.strip("<>").replace("@", "_").replace("/", "_")
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                # Unix line ends on disk, as mail programs save .eml files.
                out.write(message.data.replace(b"\r\n", b"\n"))
                out.flush()
                os.fsync(out.fileno())
            target = self.folder / f"{stem}.eml"
            os.replace(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise DeliveryError(f"Could not write to {self.folder}: {exc}") from exc
        return str(target)


class SmtpEmailBackend:
    """One SMTP connection for a whole run, opened on the first message.

    A connection the server dropped is reopened once before giving up on a message.
    """

    name = "smtp"

    def __init__(self, settings: Settings, report: Callable[[str], None] | None = None):
        self.settings = settings
        self.report = report or (lambda step: None)
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpEmailBackend:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def port(self) -> int:
        configured = self.settings.email.port
        return configured or {"ssl": 465, "starttls": 587}.get(
            self.settings.email.security, 25
        )

    def connect(self) -> smtplib.SMTP:
        email = self.settings.email
        host, port, timeout = email.host, self.port, email.timeout
        try:
            if email.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    host, port, timeout=timeout, context=ssl.create_default_context()
                )
                self.report(f"connected to {host}:{port} over TLS")
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
                self.report(f"connected to {host}:{port}")
                if email.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                    self.report("TLS started (STARTTLS)")
            if email.username:
                smtp.login(email.username, self.settings.smtp_password())
                self.report(f"logged in as {email.username}")
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP login refused for {email.username}: {_answer(exc)}"
            ) from exc
        except smtplib.SMTPException as exc:
            raise DeliveryError(
                f"SMTP server {host}:{port} said: {_answer(exc)}"
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise DeliveryError(
                f"Cannot reach SMTP server {host}:{port}: {exc}"
            ) from exc
        self._smtp = smtp
        return smtp

    def send(self, message: OutgoingEmail) -> str:
        for attempt in (1, 2):
            smtp = self._smtp or self.connect()
            try:
                sender, recipients = message.sender, list(message.recipients)
                # An address with non-ASCII letters needs the server's SMTPUTF8.
                plain = sender.isascii() and all(r.isascii() for r in recipients)
                refused = smtp.sendmail(
                    sender,
                    recipients,
                    message.data,
                    mail_options=() if plain else ("SMTPUTF8",),
                )
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None
                if attempt == 2:
                    raise DeliveryError(f"SMTP connection dropped: {exc}") from exc
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                raise PermanentDeliveryError(
                    f"Address refused by the server: {_answer(exc)}"
                ) from exc
            except smtplib.SMTPResponseException as exc:
                error = (
                    PermanentDeliveryError
                    if 500 <= exc.smtp_code < 600
                    else (DeliveryError)
                )
                raise error(f"SMTP server refused the message: {_answer(exc)}") from exc
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                raise DeliveryError(f"SMTP error: {exc}") from exc
            if refused:
                raise PermanentDeliveryError(
                    f"Address refused by the server: {refused}"
                )
            self.report("message accepted by the server")
            return message.message_id
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.close()
            except OSError:
                pass

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _answer(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{address}: {code} {_decode(text)}"
            for address, (code, text) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_decode(exc.smtp_error)}"
    return str(exc)


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def backend_for(settings: Settings, report: Callable[[str], None] | None = None):
    if settings.email.backend == "smtp":
        return SmtpEmailBackend(settings, report)
    return FileEmailBackend(settings.outbox_dir)
