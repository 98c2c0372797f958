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


def _moment(message: dict[str, Any]):
    """The time this message is being sent (its claim), as the reference for "now"."""
    from ..timeutil import parse_iso

    return parse_iso(message.get("claimed_at") or message["created_at"])


def reminder_context(
    db: Database,
    settings: Settings,
    client: dict[str, Any],
    message: dict[str, Any],
    language: str,
) -> dict[str, Any]:
    """A reminder: for each checklist, what arrived, what is missing, what to send again."""
    import json

    from ..timeutil import local_date

    today = local_date(_moment(message), settings.firm.timezone)
    ids = [int(i) for i in json.loads(message["checklist_ids"])]
    items = []
    step, last = 0, False
    for checklist_id in ids:
        checklist = checklists.get_checklist(db, checklist_id)
        context = checklist_context(db, settings, checklist, language)
        rows = context["documents"]
        context["received"] = [
            r for r in rows if r["state"] in ("received", "approved")
        ]
        context["not_applicable"] = [r for r in rows if r["state"] == "not_applicable"]
        context["to_send"] = [r for r in rows if r["state"] == "to_send"]
        context["again"] = [r for r in rows if r["state"] == "rejected"]
        context["overdue"] = checklist["due_on"] < today.isoformat()
        items.append(context)
        own_step, own_last = _step_of(db, settings, checklist)
        step, last = max(step, own_step), last or own_last
    return {
        "language": language,
        "firm": firm_context(settings),
        "client": client,
        "checklists": items,
        "step": step,
        "last": last,
        "overdue": any(c["overdue"] for c in items),
        "link": items[0]["link"] if items else "",
        "missing_count": sum(len(c["to_send"]) + len(c["again"]) for c in items),
    }


def _step_of(
    db: Database, settings: Settings, checklist: dict[str, Any]
) -> tuple[int, bool]:
    import json

    row = db.execute(
        "SELECT max(step) FROM reminder_steps WHERE checklist_id = ? AND outcome != 'skipped'",
        [checklist["id"]],
    ).fetchone()
    step = row[0] or 0
    own = db.execute(
        "SELECT reminder_days FROM templates WHERE id = ?", [checklist["template_id"]]
    ).fetchone()[0]
    days = json.loads(own) if own else settings.reminders.days
    return step, step >= len(days)


def firm_notification_context(
    db: Database, settings: Settings, message: dict[str, Any], ids: list[int]
) -> dict[str, Any]:
    """The firm's own emails: a completed checklist, new uploads, the daily digest."""
    base = {"language": message["language"], "firm": firm_context(settings)}
    if message["kind"] == "digest":
        return {**base, **digest_context(db, settings, _moment(message))}
    client = db.execute(
        "SELECT id, name, email, phone FROM clients WHERE id = ?",
        [message["client_id"]],
    ).fetchone()
    if client is None:
        from ..errors import PermanentDeliveryError

        raise PermanentDeliveryError("the client no longer exists")
    base["client"] = dict(zip(("id", "name", "email", "phone"), client, strict=True))
    lists = [
        checklist_context(
            db, settings, checklists.get_checklist(db, cid), message["language"]
        )
        for cid in ids
    ]
    if message["kind"] == "notify_uploaded":
        start = message["dedupe_key"].split(":", 3)[
            3
        ]  # notify:uploaded:<client>:<start>
        base["uploads"] = _uploads_since(db, message["client_id"], start)
    return {**base, "checklists": lists}


def _uploads_since(db: Database, client_id: int, start: str) -> list[dict[str, Any]]:
    from ..notifications import UPLOAD_WINDOW
    from ..timeutil import iso, parse_iso

    end = iso(parse_iso(start) + UPLOAD_WINDOW)
    start_text = iso(parse_iso(start))
    return list(
        db.query(
            "SELECT d.original_filename, d.size, i.name AS slot, c.template_name, c.period"
            " FROM documents d JOIN checklist_items i ON i.id = d.item_id"
            " JOIN checklists c ON c.id = i.checklist_id"
            " WHERE c.client_id = ? AND d.uploaded_at >= ? AND d.uploaded_at < ?"
            " ORDER BY d.uploaded_at",
            [client_id, start_text, end],
        )
    )


def digest_context(db: Database, settings: Settings, moment) -> dict[str, Any]:
    """Completed in the last day, still missing, and whom to call."""
    from datetime import timedelta

    from ..timeutil import iso, local_date

    today = local_date(moment, settings.firm.timezone)
    completed = list(
        db.query(
            "SELECT cl.name AS client, c.template_name, c.period, c.completed_at"
            " FROM checklists c JOIN clients cl ON cl.id = c.client_id"
            " WHERE c.completed_at >= ? ORDER BY c.completed_at",
            [iso(moment - timedelta(days=1))],
        )
    )
    _counts, rows = checklists.status(db, today)
    open_rows = [r for r in rows if r["state"] != "complete"]
    to_call = []
    for row in open_rows:
        if not row.get("escalated_at"):
            continue
        missing = [
            i["name"]
            for i in checklists.items(db, row["id"])
            if not i["optional"] and i["state"] in ("to_send", "rejected")
        ]
        to_call.append({**row, "missing": missing})
    return {
        "today": format_day(today, settings.firm.default_language),
        "completed": completed,
        "open": open_rows,
        "to_call": to_call,
    }
