"""SMS: written to .txt files in the outbox, or sent through Twilio's Messages API.

Both backends follow the same small interface as the email ones: a context manager for one
run whose ``send(sms)`` returns an id (a file path, a Twilio message SID) or raises
``DeliveryError`` (a later run may succeed) or ``PermanentDeliveryError`` (never retry).

``is_gsm7`` and ``sms_parts`` tell what an SMS will cost before it is sent: a text that
fits the GSM 03.38 alphabet travels 160 characters per SMS (153 when it needs several);
any other character makes the whole text UCS-2, 70 characters per SMS (67).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..config import Settings
from ..errors import ConfigError, DeliveryError, PermanentDeliveryError

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + one
# septet). Note what is missing: ç, â, ê, î, ô, û, ë, ï, œ, the backtick and typographic
# quotes and dashes all turn a message into UCS-2.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7, MULTI_GSM7 = 160, 153  # septets per SMS, alone / in a concatenated one
SINGLE_UCS2, MULTI_UCS2 = 70, 67  # UTF-16 code units per SMS, alone / concatenated

TWILIO_TIMEOUT_S = 30
# Twilio answers 400 for a bad sender too; that is the firm's configuration, which will be
# fixed, not the client's number: keep retrying those instead of giving the message up.
# 21212 invalid From number, 21601 From is not a number of this account,
# 21606 From cannot send SMS.
SENDER_ERRORS = frozenset({21212, 21601, 21606})


@dataclass(frozen=True)
class Sms:
    to: str  # E.164, e.g. +33612345678
    body: str

    @property
    def gsm7(self) -> bool:
        return is_gsm7(self.body)

    @property
    def parts(self) -> int:
        return sms_parts(self.body)


class SmsBackend(Protocol):
    name: str

    def __enter__(self) -> SmsBackend: ...

    def __exit__(self, *exc_info: object) -> None: ...

    def send(self, sms: Sms) -> str: ...


# -- encoding -----------------------------------------------------------------------------


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 03.38 alphabet or its extension table."""
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def sms_parts(text: str) -> int:
    """How many SMS ``text`` takes (an empty text still takes one).

    GSM-7: 160 septets, or 153 per part when split; an extension character takes two
    septets that are never split across parts. UCS-2: 70 code units, or 67 per part; a
    character outside the Basic Multilingual Plane (an emoji) takes two, never split.
    """
    if is_gsm7(text):
        sizes = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, multi = SINGLE_GSM7, MULTI_GSM7
    else:
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, multi = SINGLE_UCS2, MULTI_UCS2
    if sum(sizes) <= single:
        return 1
    parts, used = 1, 0
    for size in sizes:
        if used + size > multi:
            parts, used = parts + 1, 0
        used += size
    return parts


# -- files --------------------------------------------------------------------------------


class FileSmsBackend:
    """Writes each SMS as a .txt file into the outbox folder: a ``To:`` line, a blank
    line, then the body. For trying things out without a provider."""

    name = "file"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def __enter__(self) -> FileSmsBackend:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"Cannot create the outbox folder {self.folder}: {exc}"
            ) from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def send(self, sms: Sms) -> str:
        target = self.folder / f"sms-{uuid.uuid4().hex}.txt"
        text = f"To: {sms.to}\n\n{sms.body}\n"
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(text.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise DeliveryError(f"Could not write to {self.folder}: {exc}") from exc
        return str(target)


# -- Twilio -------------------------------------------------------------------------------


class TwilioSmsBackend:
    """Sends through Twilio's Messages API with the official client, one per run.

    The settings are checked when the backend is made, so a missing key is one clear
    ``ConfigError`` before any message is claimed.
    """

    name = "twilio"

    def __init__(self, settings: Settings):
        sms = settings.sms
        self.account_sid = sms.account_sid.strip()
        self.auth_token = twilio_auth_token(settings)
        self.from_number = sms.from_number.strip()
        self.messaging_service_sid = sms.messaging_service_sid.strip()
        self.api_url = sms.api_url.strip().rstrip("/")
        if not self.account_sid:
            raise ConfigError(
                "sms.account_sid is empty: set it to your Twilio account SID (AC...) in "
                "[sms], or choose another sms.backend"
            )
        if not (self.from_number or self.messaging_service_sid):
            raise ConfigError(
                "sms.from_number and sms.messaging_service_sid are both empty: set the "
                "Twilio number to send from (+33...) or a messaging service SID (MG...)"
            )
        self._client: Any = None

    def __enter__(self) -> TwilioSmsBackend:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        client = Client(
            self.account_sid,
            self.auth_token,
            http_client=TwilioHttpClient(timeout=TWILIO_TIMEOUT_S),
        )
        if self.api_url:
            # Every request goes to exactly this address: no edge or region rewriting
            # from TWILIO_EDGE / TWILIO_REGION (twilio/base/client_base.py get_hostname).
            client.edge = client.region = None
            client.api.base_url = self.api_url
        self._client = client
        return self

    def __exit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        session = getattr(getattr(client, "http_client", None), "session", None)
        if session is not None:
            session.close()

    @property
    def address(self) -> str:
        return self.api_url or "https://api.twilio.com"

    def send(self, sms: Sms) -> str:
        from requests import RequestException
        from twilio.base.exceptions import TwilioException

        if self._client is None:
            raise RuntimeError(
                "use the backend as a context manager: with backend: ..."
            )
        sender = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number}
        )
        try:
            message = self._client.messages.create(to=sms.to, body=sms.body, **sender)
        except RequestException as exc:
            raise DeliveryError(
                f"Cannot reach Twilio at {self.address}: {exc}"
            ) from exc
        except TwilioException as exc:
            raise _twilio_error(exc, sms.to) from exc
        sid = getattr(message, "sid", None)
        if not sid:
            raise DeliveryError(
                f"Twilio at {self.address} answered without a message SID"
            )
        return sid


def twilio_auth_token(settings: Settings) -> str:
    """The token from the variable named by ``auth_token_env``, else ``auth_token``."""
    sms = settings.sms
    if sms.auth_token_env:
        token = os.environ.get(sms.auth_token_env, "").strip()
        if not token:
            raise ConfigError(
                f"sms.auth_token_env names the environment variable {sms.auth_token_env}, "
                "which is not set: export it with your Twilio auth token"
            )
        return token
    if not sms.auth_token.strip():
        raise ConfigError(
            "sms.auth_token_env and sms.auth_token are both empty: set auth_token_env to "
            "the name of an environment variable holding your Twilio auth token"
        )
    return sms.auth_token.strip()


def _twilio_error(exc: Exception, to: str) -> DeliveryError:
    """Twilio's answer as our error: the recipient's fault is permanent, the rest not."""
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    text = (
        getattr(exc, "msg", None)
        or getattr(exc, "detail", None)
        or getattr(exc, "title", None)
        or type(exc).__name__
    )
    said = f"Twilio answered HTTP {status} (error {code}) to the SMS for {to}: {text}"
    if status in (401, 403):
        return DeliveryError(f"{said}; check sms.account_sid and the auth token")
    if status == 400 and code in SENDER_ERRORS:
        return DeliveryError(
            f"{said}; check sms.from_number / sms.messaging_service_sid"
        )
    if status == 400:
        return PermanentDeliveryError(said)
    return DeliveryError(said)


def sms_backend_for(settings: Settings) -> SmsBackend:
    backend = settings.sms.backend
    if backend == "twilio":
        return TwilioSmsBackend(settings)
    if backend == "file":
        return FileSmsBackend(settings.outbox_dir)
    raise ConfigError('sms.backend is "none": set it to "file" or "twilio" to send SMS')
