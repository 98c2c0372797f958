"""The variables each kind of message is rendered with, read from the database."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from .. import checklists, links
from ..config import Settings
from ..i18n import format_day, period_label


def firm_context(settings: Settings) -> dict[str, Any]:
    firm = settings.firm
    return {
        "name": firm.name,
        "email": firm.email,
        "phone": firm.phone,
        "signature": firm.signature or firm.name,
    }


def checklist_context(
    db: Database, settings: Settings, checklist: dict[str, Any], language: str
) -> dict[str, Any]:
    from datetime import date

    item_rows = checklists.items(db, checklist["id"])
    return {
        "id": checklist["id"],
        "template_name": checklist["template_name"],
        "period": checklist["period"],
        "period_label": period_label(checklist["period"], language),
        "due_on": checklist["due_on"],
        "due_label": format_day(date.fromisoformat(checklist["due_on"]), language),
        "link": links.link_for(settings.portal.base_url, checklist["token"]),
        "documents": item_rows,
        "missing": [
            row for row in item_rows if row["state"] in ("to_send", "rejected")
        ],
    }


def link_context(
    db: Database,
    settings: Settings,
    client: dict[str, Any],
    checklist_ids: list[int],
    language: str,
) -> dict[str, Any]:
    rows = [checklists.get_checklist(db, cid) for cid in checklist_ids]
    return {
        "language": language,
        "firm": firm_context(settings),
        "client": client,
        "checklists": [checklist_context(db, settings, row, language) for row in rows],
    }
