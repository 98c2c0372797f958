"""Document templates ("monthly bookkeeping", "VAT") and their slots.

A checklist copies its template's slots when it is generated, so editing a template changes
only the checklists generated afterwards.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .config import LANGUAGES
from .db import write_transaction
from .errors import TemplateError, TemplateNotFound
from .events import Event, record
from .periods import CADENCES
from .timeutil import iso

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def check_slug(slug: str) -> str:
    text = slug.strip().lower()
    if not SLUG_RE.match(text):
        raise TemplateError(
            f"Template slug {slug!r} must be 1 to 40 lower-case letters, digits, - or _"
        )
    return text


def _check_fields(cadence: str | None, due_day: int | None) -> None:
    if cadence is not None and cadence not in CADENCES:
        raise TemplateError(f"Cadence {cadence!r} is not one of {', '.join(CADENCES)}")
    if due_day is not None and not 1 <= due_day <= 31:
        raise TemplateError(f"Due day {due_day} must be between 1 and 31")


TRANSLATION_KEYS = ("name", "description")


def check_translations(value: Any, where: str) -> dict[str, dict[str, str]]:
    """``value`` as stored: {language: {"name": ..., "description": ...}}, only the
    known languages and keys, text only; empty texts are left out (the base text shows).
    Raises TemplateError naming ``where`` and the wrong key."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TemplateError(f"{where}: translations must be a table of languages")
    clean: dict[str, dict[str, str]] = {}
    for language, texts in value.items():
        if language not in LANGUAGES:
            raise TemplateError(
                f"{where}: unknown language {language!r} in translations"
                f" (known: {', '.join(LANGUAGES)})"
            )
        if not isinstance(texts, dict):
            raise TemplateError(
                f"{where}: translations.{language} must be a table with name"
                " and description"
            )
        unknown = set(texts) - set(TRANSLATION_KEYS)
        if unknown:
            raise TemplateError(
                f"{where}: unknown key(s) {', '.join(sorted(unknown))}"
                f" in translations.{language} (known: name, description)"
            )
        entry = {}
        for key in TRANSLATION_KEYS:
            text = texts.get(key)
            if text is None:
                continue
            if not isinstance(text, str):
                raise TemplateError(
                    f"{where}: translations.{language}.{key} must be text"
                )
            text = " ".join(text.split()) if key == "name" else text.strip()
            if text:
                entry[key] = text
        if entry:
            clean[language] = entry
    return clean


def translations_of(row: dict[str, Any], column: str = "translations") -> dict:
    """The stored translations of a template, slot, checklist or item row."""
    raw = row.get(column)
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def localized(row: dict[str, Any], language: str | None) -> tuple[str, str]:
    """(name, description) of a template, slot or checklist item as a client reading
    ``language`` sees them: its translation, else the firm's own wording, key by key.

    A checklist row gives its template's name (``template_name`` and
    ``template_translations``, copied at generation) and an empty description.
    """
    if "template_name" in row and "name" not in row:
        base = (row["template_name"] or "", "")
        texts = translations_of(row, "template_translations").get(language or "", {})
    else:
        base = (row.get("name") or "", row.get("description") or "")
        texts = translations_of(row).get(language or "", {})
    return (texts.get("name") or base[0], texts.get("description") or base[1])


def languages_of(row: dict[str, Any]) -> list[str]:
    """The languages a template or slot row has a translation for, in LANGUAGES order."""
    texts = translations_of(row)
    return [language for language in LANGUAGES if texts.get(language)]


def get_template(db: Database, slug: str) -> dict[str, Any]:
    rows = list(
        db.query(
            "SELECT * FROM templates WHERE slug = ? AND archived_at IS NULL",
            [slug.strip().lower()],
        )
    )
    if not rows:
        known = ", ".join(t["slug"] for t in list_templates(db)) or "none yet"
        raise TemplateNotFound(f"No template {slug!r} (known: {known})")
    return rows[0]


def list_templates(db: Database) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT t.*, (SELECT count(*) FROM template_slots s"
            " WHERE s.template_id = t.id) AS slot_count,"
            " (SELECT count(*) FROM assignments a JOIN clients c ON c.id = a.client_id"
            "  WHERE a.template_id = t.id AND c.status = 'active') AS client_count"
            " FROM templates t WHERE t.archived_at IS NULL ORDER BY t.slug"
        )
    )


def slots(db: Database, template_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM template_slots WHERE template_id = ? ORDER BY position, id",
            [template_id],
        )
    )


def save_template(
    db: Database,
    slug: str,
    now: datetime,
    *,
    name: str | None = None,
    cadence: str | None = None,
    due_day: int | None = None,
    description: str | None = None,
    translations: dict[str, dict[str, str]] | None = None,
    actor: str = "cli",
) -> tuple[int, bool]:
    """Create the template, or update the fields given. Returns (id, created).

    ``translations`` ({language: {"name", "description"}}) replaces the stored ones."""
    slug = check_slug(slug)
    _check_fields(cadence, due_day)
    stored = (
        None
        if translations is None
        else json.dumps(check_translations(translations, slug), ensure_ascii=False)
    )
    stamp = iso(now)
    with write_transaction(db):
        rows = list(db.query("SELECT * FROM templates WHERE slug = ?", [slug]))
        if rows:
            template_id = rows[0]["id"]
            changes = {
                key: value
                for key, value in (
                    ("name", name),
                    ("cadence", cadence),
                    ("due_day", due_day),
                    ("description", description),
                    ("translations", stored),
                )
                if value is not None
            }
            db["templates"].update(
                template_id, {**changes, "updated_at": stamp, "archived_at": None}
            )
            created = False
        else:
            if not name:
                raise TemplateError(
                    f"A new template needs a name (--name) for {slug!r}"
                )
            template_id = db.execute(
                "INSERT INTO templates (slug, name, description, cadence, due_day,"
                " translations, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    slug,
                    name,
                    description or "",
                    cadence or "monthly",
                    due_day or 10,
                    stored or "{}",
                    stamp,
                    stamp,
                ],
            ).lastrowid
            created = True
        record(
            db,
            Event.TEMPLATE_SAVED,
            now,
            actor=actor,
            subject_type="template",
            subject_id=template_id,
            data={"slug": slug},
        )
    return template_id, created


SLOT_FIELDS = ("description", "optional", "multiple", "position", "translations")


def save_slot(
    db: Database,
    slug: str,
    name: str,
    *,
    description: str | None = None,
    optional: bool | None = None,
    multiple: bool | None = None,
    position: int | None = None,
    translations: dict[str, dict[str, str]] | None = None,
    now: datetime | None = None,
    actor: str = "cli",
) -> tuple[int, bool]:
    """Add a slot at the end of the template, or update the slot of that name.

    ``translations`` ({language: {"name", "description"}}) replaces the stored ones.

    With ``now``, the audit trail records the addition, or the fields that changed,
    under ``actor``. Returns (slot id, created).
    """
    template = get_template(db, slug)
    name = " ".join(name.split())
    if not name:
        raise TemplateError("A slot needs a name")
    given = {
        "description": description,
        "optional": None if optional is None else int(optional),
        "multiple": None if multiple is None else int(multiple),
        "position": position,
        "translations": None
        if translations is None
        else json.dumps(
            check_translations(translations, f"{slug}, slot {name!r}"),
            ensure_ascii=False,
        ),
    }
    with write_transaction(db):
        existing = list(
            db.query(
                "SELECT * FROM template_slots WHERE template_id = ? AND name = ?",
                [template["id"], name],
            )
        )
        if existing:
            current = existing[0]
            changes = {
                key: value
                for key, value in given.items()
                if value is not None and value != current[key]
            }
            if changes:
                db["template_slots"].update(current["id"], changes)
                _record_slot(
                    db, Event.SLOT_CHANGED, now, actor, template, name, changes
                )
            return current["id"], False
        if position is None:
            position = db.execute(
                "SELECT coalesce(max(position), 0) + 1 FROM template_slots"
                " WHERE template_id = ?",
                [template["id"]],
            ).fetchone()[0]
        values = {
            "description": description or "",
            "optional": int(bool(optional)),
            "multiple": int(bool(multiple)),
            "position": position,
            "translations": given["translations"] or "{}",
        }
        slot_id = db.execute(
            "INSERT INTO template_slots (template_id, name, description, optional,"
            " multiple, position, translations) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [template["id"], name, *values.values()],
        ).lastrowid
        _record_slot(db, Event.SLOT_ADDED, now, actor, template, name, values)
    return slot_id, True


def remove_slot(
    db: Database,
    slug: str,
    name: str,
    now: datetime | None = None,
    actor: str = "cli",
) -> None:
    """Remove a slot; checklists generated before keep their item. With ``now``, the
    audit trail records it under ``actor``."""
    template = get_template(db, slug)
    with write_transaction(db):
        removed = db.execute(
            "DELETE FROM template_slots WHERE template_id = ? AND name = ?",
            [template["id"], name],
        ).rowcount
        if not removed:
            raise TemplateError(f"Template {slug!r} has no slot named {name!r}")
        _record_slot(db, Event.SLOT_REMOVED, now, actor, template, name)


def move_slot(
    db: Database, slug: str, name: str, offset: int, now: datetime, actor: str = "cli"
) -> bool:
    """Move a slot ``offset`` places (-1 up, 1 down), then number them all 1, 2, 3...

    Returns whether it moved: the first slot cannot go up, nor the last one down.
    """
    template = get_template(db, slug)
    with write_transaction(db):
        names = [slot["name"] for slot in slots(db, template["id"])]
        if name not in names:
            raise TemplateError(f"Template {slug!r} has no slot named {name!r}")
        index = names.index(name)
        target = index + offset
        moved = target != index and 0 <= target < len(names)
        if moved:
            names.insert(target, names.pop(index))
        db.conn.executemany(
            "UPDATE template_slots SET position = ? WHERE template_id = ? AND name = ?",
            [(position, template["id"], n) for position, n in enumerate(names, 1)],
        )
        if moved:
            changes = {"position": target + 1}
            _record_slot(db, Event.SLOT_CHANGED, now, actor, template, name, changes)
    return moved


def replace_slots(
    db: Database,
    slug: str,
    wanted: list[dict[str, Any]],
    now: datetime,
    actor: str = "cli",
) -> None:
    """Make the template's slots exactly ``wanted`` (dicts with a name, and optionally
    description, optional, multiple), in that order; one audit event lists them."""
    template = get_template(db, slug)
    with write_transaction(db):
        names = [" ".join(slot["name"].split()) for slot in wanted]
        for existing in slots(db, template["id"]):
            if existing["name"] not in names:
                remove_slot(db, slug, existing["name"])
        for position, slot in enumerate(wanted, 1):
            fields = {key: slot[key] for key in SLOT_FIELDS if key in slot}
            save_slot(db, slug, slot["name"], **{**fields, "position": position})
        record(
            db,
            Event.SLOTS_REPLACED,
            now,
            actor=actor,
            subject_type="template",
            subject_id=template["id"],
            data={"slug": template["slug"], "slots": names},
        )


def _record_slot(
    db: Database,
    action: Event,
    now: datetime | None,
    actor: str,
    template: dict[str, Any],
    name: str,
    changes: dict[str, Any] | None = None,
) -> None:
    if now is None:  # seeding and TOML loading: template:saved covers them
        return
    data: dict[str, Any] = {"slug": template["slug"], "slot": name}
    if changes:
        data["changes"] = {key: _as_read(key, value) for key, value in changes.items()}
    record(
        db,
        action,
        now,
        actor=actor,
        subject_type="template",
        subject_id=template["id"],
        data=data,
    )


def _as_read(key: str, value: Any) -> Any:
    """A slot column's stored value as the audit trail shows it."""
    if key in ("optional", "multiple"):
        return bool(value)
    if key == "translations":
        return json.loads(value)
    return value


def remove_template(db: Database, slug: str, now: datetime, actor: str = "cli") -> str:
    """Delete a template never used; archive one that has checklists (they stay)."""
    template = get_template(db, slug)
    used = db.execute(
        "SELECT count(*) FROM checklists WHERE template_id = ?", [template["id"]]
    ).fetchone()[0]
    with write_transaction(db):
        if used:
            db.execute(
                "UPDATE templates SET archived_at = ? WHERE id = ?",
                [iso(now), template["id"]],
            )
            db.execute(
                "DELETE FROM assignments WHERE template_id = ?", [template["id"]]
            )
            outcome = "archived"
        else:
            db.execute("DELETE FROM templates WHERE id = ?", [template["id"]])
            outcome = "deleted"
        record(
            db,
            Event.TEMPLATE_REMOVED,
            now,
            actor=actor,
            subject_type="template",
            subject_id=template["id"],
            data={"slug": template["slug"], "outcome": outcome},
        )
    return outcome


def load_file(db: Database, path: Path, now: datetime) -> list[tuple[str, bool]]:
    """Create or update every template in a TOML file; slots follow the file exactly.

    The whole file is checked before anything is written, and written in one
    transaction: a mistake on line 80 leaves the database as it was.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"No such file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path} is not valid TOML: {exc}") from None
    entries = data.get("template")
    if not isinstance(entries, list) or not entries:
        raise TemplateError(
            f"{path} has no [[template]] tables: see templates.example.toml"
        )
    parsed = [
        _parse_entry(entry, index, path) for index, entry in enumerate(entries, 1)
    ]
    outcome = []
    with write_transaction(db):
        for fields, slot_list in parsed:
            slug = fields.pop("slug")
            template_id, created = save_template(db, slug, now, **fields)
            names = [slot["name"] for slot in slot_list]
            placeholders = ", ".join("?" for _ in names)
            db.execute(
                "DELETE FROM template_slots WHERE template_id = ?"
                f" AND name NOT IN ({placeholders})",
                [template_id, *names],
            )
            for position, slot in enumerate(slot_list, 1):
                save_slot(
                    db,
                    slug,
                    slot["name"],
                    description=slot["description"],
                    optional=slot["optional"],
                    multiple=slot["multiple"],
                    position=position,
                    translations=slot["translations"],
                )
            outcome.append((slug, created))
    return outcome


def _parse_entry(entry: Any, index: int, path: Path) -> tuple[dict, list[dict]]:
    where = f"{path}, template #{index}"
    if not isinstance(entry, dict):
        raise TemplateError(f"{where} must be a table")
    known = {
        "slug",
        "name",
        "description",
        "cadence",
        "due_day",
        "slot",
        "translations",
    }
    unknown = set(entry) - known
    if unknown:
        raise TemplateError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    if "slug" not in entry or "name" not in entry:
        raise TemplateError(f"{where} needs a slug and a name")
    fields = {
        "slug": check_slug(str(entry["slug"])),
        "name": str(entry["name"]),
        "description": str(entry.get("description", "")),
        "cadence": str(entry.get("cadence", "monthly")),
        "due_day": entry.get("due_day", 10),
    }
    where = f"{where} ({fields['slug']})"
    fields["translations"] = check_translations(entry.get("translations", {}), where)
    if not isinstance(fields["due_day"], int):
        raise TemplateError(f"{where}: due_day must be a whole number")
    _check_fields(fields["cadence"], fields["due_day"])
    raw_slots = entry.get("slot", [])
    if not isinstance(raw_slots, list) or not raw_slots:
        raise TemplateError(f"{where} needs at least one [[template.slot]]")
    slot_list = []
    for number, slot in enumerate(raw_slots, 1):
        if not isinstance(slot, dict) or not str(slot.get("name", "")).strip():
            raise TemplateError(f"{where}, slot #{number} needs a name")
        extra = set(slot) - {
            "name",
            "description",
            "optional",
            "multiple",
            "translations",
        }
        name = " ".join(str(slot["name"]).split())
        if extra:
            raise TemplateError(
                f"{where}, slot #{number} ({name}): unknown key(s)"
                f" {', '.join(sorted(extra))}"
            )
        slot_list.append(
            {
                "name": name,
                "description": str(slot.get("description", "")),
                "optional": bool(slot.get("optional", False)),
                "multiple": bool(slot.get("multiple", True)),
                "translations": check_translations(
                    slot.get("translations", {}), f"{where}, slot {name!r}"
                ),
            }
        )
    names = [slot["name"] for slot in slot_list]
    if len(set(names)) != len(names):
        raise TemplateError(f"{where} names a slot twice")
    return fields, slot_list


def slugs_of_client(db: Database, client_id: int) -> list[str]:
    return [
        row[0]
        for row in db.execute(
            "SELECT t.slug FROM assignments a JOIN templates t ON t.id = a.template_id"
            " WHERE a.client_id = ? ORDER BY t.slug",
            [client_id],
        )
    ]
