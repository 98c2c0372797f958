"""Creating a workspace (configuration, database, folders) and the demo one."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from pathlib import Path

from .config import CONFIG_FILENAME, Settings, load_settings
from .errors import WorkspaceExists

DATA_DIR = Path(__file__).parent / "data"


def example_config() -> str:
    return (DATA_DIR / "config.example.toml").read_text(encoding="utf-8")


def example_templates_path() -> Path:
    return DATA_DIR / "templates.example.toml"


def create_workspace(folder: Path, overrides: dict[str, dict[str, str]] | None = None):
    """Write ``folder/monthlydocs.toml`` from the example, then the database and folders.

    Refuses a folder that already holds a configuration or a database.
    """
    folder = folder.expanduser()
    config_path = folder / CONFIG_FILENAME
    if config_path.exists() or (folder / "monthlydocs.db").exists():
        raise WorkspaceExists(
            f"{folder} already holds a monthlydocs workspace; choose another folder "
            "or use the existing one with --config"
        )
    folder.mkdir(parents=True, exist_ok=True)
    text = example_config()
    values = {"firm": {"secret_key": secrets.token_urlsafe(32)}}
    for section, keys in (overrides or {}).items():
        values.setdefault(section, {}).update(keys)
    for section, keys in values.items():
        for key, value in keys.items():
            text = set_value(text, section, key, value)
    config_path.write_text(text, encoding="utf-8")
    config_path.chmod(0o600)  # it holds the secret key
    settings = load_settings(config_path, environ={})
    for path in (settings.files_dir, settings.outbox_dir):
        path.mkdir(parents=True, exist_ok=True)
    from .db import open_db

    open_db(settings.database_path).close()
    return settings


def set_value(text: str, section: str, key: str, value) -> str:
    """Replace ``key = ...`` inside ``[section]`` of a TOML text, keeping its comments."""
    rendered = _toml_value(value)
    pattern = re.compile(
        rf"(^\[{re.escape(section)}\]\s*$.*?^{re.escape(key)}\s*=\s*)(.*?)$",
        re.MULTILINE | re.DOTALL,
    )
    new, count = pattern.subn(lambda m: m.group(1) + rendered, text, count=1)
    if not count:
        raise KeyError(f"{section}.{key} is not in the example configuration")
    return new


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# -- demo -----------------------------------------------------------------------------

DEMO_FIRM = {
    "name": "Cabinet Martin & Associés",
    "email": "contact@cabinet-martin.example",
    "phone": "+33 1 23 45 67 89",
}

# A staff account for trying the dashboard; the demo prints it.
DEMO_STAFF = ("staff@cabinet-martin.example", "try-the-dashboard")

# (name, email, phone, language, templates)
DEMO_CLIENTS = [
    (
        "Boulangerie Dupont",
        "marie@boulangerie-dupont.example",
        "06 12 34 56 78",
        "fr",
        ["monthly", "vat"],
    ),
    (
        "Café Lumière SARL",
        "gerant@cafe-lumiere.example",
        "+33 6 98 76 54 32",
        "fr",
        ["monthly"],
    ),
    (
        "Atelier Nguyen",
        "contact@atelier-nguyen.example",
        "",
        "fr",
        ["monthly", "payroll"],
    ),
    (
        "Müller Handwerk GmbH",
        "info@mueller-handwerk.example",
        "+49 151 23456789",
        "de",
        ["monthly", "vat"],
    ),
    ("Bäckerei Schneider", "anna@baeckerei-schneider.example", "", "de", ["monthly"]),
    (
        "Green Leaf Consulting Ltd",
        "finance@greenleaf.example",
        "+44 7911 123456",
        "en",
        ["monthly", "vat"],
    ),
    ("Oak & Pine Studio", "hello@oakpine.example", "", "en", ["monthly"]),
    (
        "Taller García S.L.",
        "admin@taller-garcia.example",
        "+34 612 34 56 78",
        "es",
        ["monthly", "payroll"],
    ),
    ("Peña Eventos", "lucia@pena-eventos.example", "", "es", ["monthly"]),
    (
        "PT Sinar Jaya",
        "keuangan@sinarjaya.example",
        "+62 812-3456-789",
        "id",
        ["monthly", "vat"],
    ),
    ("Warung Bu Sari", "sari@warung-sari.example", "", "id", ["monthly"]),
    ("Studio Rossi", "giulia@studio-rossi.example", "", None, ["monthly"]),
]


def build_demo(
    folder: Path, now: datetime, base_url: str = "http://127.0.0.1:8000"
) -> tuple[Settings, object, object]:
    """A workspace with sample clients in five languages and this month's checklists.

    Returns (settings, generate result, delivery report). Emails go to outbox/ as files.
    """
    from . import checklists, clients, outbox, templates
    from .db import open_db
    from .timeutil import local_date

    settings = create_workspace(
        folder,
        {"firm": DEMO_FIRM, "email": {"backend": "file"}, "portal": {"base_url": base_url}},
    )
    today = local_date(now, settings.firm.timezone)
    db = open_db(settings.database_path)
    try:
        templates.load_file(db, example_templates_path(), now)
        by_slug = {t["slug"]: t for t in templates.list_templates(db)}
        for name, email, phone, language, slugs in DEMO_CLIENTS:
            client_id = clients.add_client(
                db,
                clients.ClientInput(
                    name=name, email=email, phone=phone, language=language
                ),
                now,
                region=settings.firm.country,
                actor="demo",
            )
            for slug in slugs:
                clients.assign(db, [client_id], by_slug[slug]["id"], now, actor="demo")
        from .users import add_user

        add_user(db, DEMO_STAFF[0], DEMO_STAFF[1], now, name="Demo staff")
        requests = [checklists.Request(template=t) for t in by_slug.values()]
        result = checklists.generate(
            db,
            requests,
            now,
            today,
            default_language=settings.firm.default_language,
            actor="demo",
        )
        report = outbox.deliver_email(db, settings, now)
    finally:
        db.close()
    return settings, result, report
