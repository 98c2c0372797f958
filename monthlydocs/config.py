"""Settings: built-in defaults, then ``monthlydocs.toml``, then ``MONTHLYDOCS_*`` variables.

Every key is declared once in ``SCHEMA`` with its default and help text; the example file
(``config.example.toml``) documents each one and a test keeps the two in step.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, ConfigNotFound

CONFIG_FILENAME = "monthlydocs.toml"
CONFIG_ENV = "MONTHLYDOCS_CONFIG"
LANGUAGES = ("en", "fr", "de", "es", "id")

# section -> key -> (default, help). The type of the default is the type of the key.
SCHEMA: dict[str, dict[str, tuple[Any, str]]] = {
    "firm": {
        "name": ("My accounting firm", "Shown to clients in emails and on the portal"),
        "email": ("", "The firm's contact address"),
        "phone": ("", "The firm's phone number"),
        "timezone": (
            "Europe/Paris",
            "IANA time zone for periods, due dates, send hours",
        ),
        "default_language": ("en", "Language for clients with none on record"),
        "country": ("FR", "Default region for phone numbers written without +"),
        "signature": ("", "Lines added under every email; the firm's name if empty"),
        "secret_key": ("", "Signs sessions and forms; `init` generates one"),
    },
    "portal": {
        "base_url": ("http://127.0.0.1:8000", "Public address of the portal"),
        "link_grace_days": (30, "Days a link keeps accepting uploads after completion"),
        "logo": (
            "",
            "Image file shown at the top of the portal (PNG, JPEG, WebP, SVG)",
        ),
        "self_registration": (True, "Let new clients register through the invite link"),
        "failed_link_limit": ("20 per hour", "Unknown links one address may try"),
        "registration_limit": ("5 per hour", "Registrations one address may send"),
        "trusted_proxies": (0, "Reverse proxies in front that set X-Forwarded-For"),
    },
    "email": {
        "backend": ("file", "file (writes .eml into outbox/) or smtp"),
        "host": ("localhost", "SMTP server"),
        "port": (0, "SMTP port; 0 picks 25, 587 or 465 from `security`"),
        "security": ("none", "none, starttls or ssl"),
        "username": ("", "SMTP login; empty for no login"),
        "password": ("", "SMTP password (prefer password_env)"),
        "password_env": ("", "Name of an environment variable holding the password"),
        "from_address": ("", "From address; the firm's email if empty"),
        "from_name": ("", "From name; the firm's name if empty"),
        "reply_to": ("", "Reply-To address; the firm's email if empty"),
        "timeout": (30, "Seconds to wait for the SMTP server"),
    },
    "reminders": {
        "days": ([3, 5, 7], "Days after the link was sent when reminders go out"),
        "send_hours": ("08:00-19:00", "Local hours during which messages are sent"),
        "weekdays_only": (False, "Send reminders on Monday to Friday only"),
        "sms_days": (
            [7],
            "Reminder days that also send an SMS to clients with a phone",
        ),
        "min_hours_between": (20, "Fewest hours between two reminders to one client"),
    },
    "sms": {
        "backend": ("none", "none, file (writes .txt into outbox/) or twilio"),
        "account_sid": ("", "Twilio account SID"),
        "auth_token": ("", "Twilio auth token (prefer auth_token_env)"),
        "auth_token_env": ("", "Name of an environment variable holding the token"),
        "from_number": ("", "Sending number in E.164, or use messaging_service_sid"),
        "messaging_service_sid": ("", "Twilio messaging service SID"),
        "api_url": ("", "Twilio API address; empty for Twilio's own"),
    },
    "notifications": {
        "email": ("", "Where the firm's notifications go; empty for none"),
        "on": (["completed", "digest"], "completed, uploaded and/or digest"),
        "digest_at": ("08:00", "Local time of the daily digest"),
    },
    "api": {
        "rate_limit": ("300 per minute", "Requests one API token may make"),
    },
    "daemon": {
        "remind_every_minutes": (15, "How often the daemon runs the reminders"),
        "generate_at": ("07:00", "Local time the daemon generates new periods"),
    },
    "storage": {
        "database": ("monthlydocs.db", "SQLite database file"),
        "files": ("files", "Folder for uploaded documents"),
        "outbox": ("outbox", "Folder for the file email backend"),
        "max_upload_mb": (25, "Largest file a client may upload, in MB"),
        "retention_years": (
            10,
            "Years documents are kept before `purge` may delete them",
        ),
    },
}


@dataclass
class Settings:
    """All settings, by section; ``path`` is the file they came from (None: defaults)."""

    values: dict[str, dict[str, Any]]
    path: Path | None = None
    root: Path = field(default_factory=Path.cwd)

    def __getattr__(self, section: str) -> _Section:
        values = self.__dict__.get("values")
        if values is None or section not in values:
            raise AttributeError(section)
        return _Section(values[section])

    def resolve(self, value: str) -> Path:
        """A path from the file, taken relative to the file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def database_path(self) -> Path:
        return self.resolve(self.storage.database)

    @property
    def files_dir(self) -> Path:
        return self.resolve(self.storage.files)

    @property
    def outbox_dir(self) -> Path:
        return self.resolve(self.storage.outbox)

    @property
    def from_address(self) -> str:
        return self.email.from_address or self.firm.email or "no-reply@localhost"

    @property
    def from_name(self) -> str:
        return self.email.from_name or self.firm.name

    @property
    def reply_to(self) -> str:
        return self.email.reply_to or self.firm.email

    def smtp_password(self) -> str:
        if self.email.password_env:
            return os.environ.get(self.email.password_env, "")
        return self.email.password


class _Section:
    def __init__(self, values: dict[str, Any]):
        self._values = values

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None


def defaults() -> dict[str, dict[str, Any]]:
    return {
        section: {key: _copy(default) for key, (default, _help) in keys.items()}
        for section, keys in SCHEMA.items()
    }


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def find_config(explicit: str | os.PathLike | None) -> Path:
    """--config, else $MONTHLYDOCS_CONFIG, else ./monthlydocs.toml."""
    if explicit:
        path = Path(explicit)
    elif os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    else:
        path = Path(CONFIG_FILENAME)
        if not path.exists():
            raise ConfigNotFound(
                f"No {CONFIG_FILENAME} here. Create a workspace with "
                "`monthlydocs init DIR`, then run commands inside DIR or pass "
                "--config DIR/monthlydocs.toml."
            )
    if not path.is_file():
        raise ConfigNotFound(
            f"Configuration file {path} does not exist. Create one with "
            "`monthlydocs init DIR`."
        )
    return path


def load_settings(
    explicit: str | os.PathLike | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    path = find_config(explicit).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text") from exc
    return settings_from_dict(data, path=path, environ=environ)


def settings_from_dict(
    data: dict[str, Any],
    path: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    values = defaults()
    where = path or "the configuration"
    for section, keys in data.items():
        if section not in SCHEMA:
            # Unknown sections belong to later features or plugins; keep them readable.
            values[section] = dict(keys) if isinstance(keys, dict) else keys
            continue
        if not isinstance(keys, dict):
            raise ConfigError(f"[{section}] in {where} must be a table")
        for key, value in keys.items():
            if key not in SCHEMA[section]:
                raise ConfigError(f"Unknown setting {section}.{key} in {where}")
            values[section][key] = _check(section, key, value, where)
    _apply_environment(values, os.environ if environ is None else environ)
    _validate(values)
    root = path.parent if path else Path.cwd()
    return Settings(values=values, path=path, root=root)


def _check(section: str, key: str, value: Any, where: object) -> Any:
    default = SCHEMA[section][key][0]
    expected = type(default)
    if expected is int and isinstance(value, bool):
        ok = False
    elif expected is list:
        item = type(default[0]) if default else int
        ok = isinstance(value, list) and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value
        )
    else:
        ok = isinstance(value, expected)
    if not ok:
        kind = {str: "text", int: "a whole number", bool: "true or false"}.get(
            expected, "a list"
        )
        raise ConfigError(f"{section}.{key} in {where} must be {kind}, not {value!r}")
    return value


def _apply_environment(values: dict[str, dict[str, Any]], environ) -> None:
    for section, keys in SCHEMA.items():
        for key, (default, _help) in keys.items():
            name = f"MONTHLYDOCS_{section.upper()}_{key.upper()}"
            if name not in environ:
                continue
            raw = environ[name]
            values[section][key] = _parse_env(name, raw, default)


def _parse_env(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError
            return lowered in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, list):
            item = type(default[0]) if default else int
            return [item(part) for part in raw.replace(" ", "").split(",") if part]
    except ValueError:
        raise ConfigError(f"Environment variable {name}={raw!r} is not valid") from None
    return raw


def _validate(values: dict[str, dict[str, Any]]) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(values["firm"]["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"firm.timezone {values['firm']['timezone']!r} is not an IANA time zone "
            "(for example Europe/Paris)"
        ) from None
    if values["firm"]["default_language"] not in LANGUAGES:
        raise ConfigError(
            f"firm.default_language must be one of {', '.join(LANGUAGES)}"
        )
    if values["email"]["backend"] not in {"file", "smtp"}:
        raise ConfigError('email.backend must be "file" or "smtp"')
    if values["email"]["security"] not in {"none", "starttls", "ssl"}:
        raise ConfigError('email.security must be "none", "starttls" or "ssl"')
    if values["storage"]["max_upload_mb"] <= 0:
        raise ConfigError("storage.max_upload_mb must be more than 0")
    if any(day < 0 for day in values["reminders"]["days"]):
        raise ConfigError("reminders.days must not be negative")
    parse_send_hours(values["reminders"]["send_hours"])
    for section, key in (("notifications", "digest_at"), ("daemon", "generate_at")):
        parse_clock(values[section][key], f"{section}.{key}")
    if values["sms"]["backend"] not in {"none", "file", "twilio"}:
        raise ConfigError('sms.backend must be "none", "file" or "twilio"')
    unknown = set(values["notifications"]["on"]) - {"completed", "uploaded", "digest"}
    if unknown:
        raise ConfigError(
            f"notifications.on may hold completed, uploaded and digest, not "
            f"{', '.join(sorted(unknown))}"
        )
    if values["daemon"]["remind_every_minutes"] < 1:
        raise ConfigError("daemon.remind_every_minutes must be at least 1")


def parse_send_hours(text: str) -> tuple[int, int]:
    """'08:00-19:00' -> minutes since midnight (480, 1140)."""
    try:
        start, end = text.split("-")
        first = _minutes(start)
        last = _minutes(end)
    except ValueError:
        raise ConfigError(
            f"reminders.send_hours {text!r} must look like 08:00-19:00"
        ) from None
    if first >= last:
        raise ConfigError(f"reminders.send_hours {text!r} must end after it starts")
    return first, last


def _minutes(text: str) -> int:
    hours, minutes = text.strip().split(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= 24 * 60 or not 0 <= int(minutes) < 60:
        raise ValueError(text)
    return value


def parse_clock(text: str, name: str) -> int:
    """'08:00' -> minutes since midnight, or ConfigError naming the setting."""
    try:
        return _minutes(text)
    except ValueError:
        raise ConfigError(f"{name} {text!r} must be a time like 08:00") from None
