"""The variables each kind of message is rendered with, read from the database."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database

from .. import checklists, links
from ..config import Settings
from ..i18n import format_day, period_label
from ..templates import localized


def firm_context(settings: Settings) -> dict[str, Any]:
    firm = settings.firm
    return {
        "name": firm.name,
        "email": firm.email,
        "phone": firm.phone,
        "signature": firm.signature or firm.name,
    }


def checklist_context(
    db: Database,
    settings: Settings,
    checklist: dict[str, Any],
    language: str,
    *,
    for_client: bool = True,
) -> dict[str, Any]:
    """One checklist in a message. ``for_client``: the template's and the documents'
    names and descriptions in the client's ``language`` where the template has them
    (else the firm's own wording); the firm's own emails keep the firm's wording."""
    from datetime import date

    item_rows = checklists.items(db, checklist["id"])
    template_name = checklist["template_name"]
    if for_client:
        template_name = localized(checklist, language)[0]
        item_rows = [_in_language(row, language) for row in item_rows]
    return {
        "id": checklist["id"],
        "template_name": template_name,
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


def _in_language(item: dict[str, Any], language: str) -> dict[str, Any]:
    name, description = localized(item, language)
    return {**item, "name": name, "description": description}


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
    """The moment this message is written for: the one the run applies its rules at
    (``as_of``, set by the outbox; ``remind --as-of`` may move it), else its claim."""
    from ..timeutil import parse_iso

    return parse_iso(
        message.get("as_of") or message.get("claimed_at") or message["created_at"]
    )


def _one_sms(text: str) -> bool:
    """Whether ``text``, as it will be sent (spaces collapsed), fits one SMS."""
    from ..channels.sms import sms_parts

    return sms_parts(" ".join(text.split())) == 1


def _steps_announced(message: dict[str, Any]) -> dict[int, int]:
    """The step of each checklist a reminder announces, from its dedupe key
    (``reminder:<channel>:<checklist>.<step>,...``); empty for other messages."""
    kind, _, rest = message["dedupe_key"].partition(":")
    if kind != "reminder" or message["kind"] != "reminder":
        return {}
    steps = {}
    for pair in rest.partition(":")[2].split(","):
        checklist, _, step = pair.partition(".")
        if checklist.isdigit() and step.isdigit():
            steps[int(checklist)] = int(step)
    return steps


def reminder_context(
    db: Database,
    settings: Settings,
    client: dict[str, Any],
    message: dict[str, Any],
    language: str,
) -> dict[str, Any]:
    """A reminder: for each checklist, what arrived, what is missing, what to send again.

    A reminder leaves out the checklists completed since it was queued. Its step (for
    the subject) is the one it announces; the last step says it is the last.
    """
    import json

    from ..timeutil import local_date

    today = local_date(_moment(message), settings.firm.timezone)
    ids = [int(i) for i in json.loads(message["checklist_ids"])]
    announced = _steps_announced(message)
    items = []
    step, last = 0, False
    for checklist_id in ids:
        checklist = checklists.get_checklist(db, checklist_id)
        if message["kind"] == "reminder" and (
            checklist["completed_at"] or checklist["archived_at"]
        ):
            continue
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
        own_step, own_last = _step_of(db, settings, checklist, announced)
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
        "sms_fits": _one_sms,
    }


def _step_of(
    db: Database,
    settings: Settings,
    checklist: dict[str, Any],
    announced: dict[int, int],
) -> tuple[int, bool]:
    """(step, whether it is the last) of one checklist in this message: the step the
    message announces, else the latest one sent."""
    import json

    step = announced.get(checklist["id"])
    if step is None:
        row = db.execute(
            "SELECT max(step) FROM reminder_steps WHERE checklist_id = ?"
            " AND outcome != 'skipped'",
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
            db,
            settings,
            checklists.get_checklist(db, cid),
            message["language"],
            for_client=False,
        )
        for cid in ids
    ]
    if message["kind"] == "notify_uploaded":
        base["uploads"] = _uploads_in(db, message["client_id"], message["dedupe_key"])
    return {**base, "checklists": lists}


def _uploads_in(db: Database, client_id: int, dedupe_key: str) -> list[dict[str, Any]]:
    """The uploads an upload notification covers."""
    from ..notifications import upload_batch
    from ..timeutil import iso, parse_iso

    since, until = (iso(parse_iso(moment)) for moment in upload_batch(dedupe_key))
    return list(
        db.query(
            "SELECT d.original_filename, d.size, i.name AS slot, c.template_name, c.period"
            " FROM documents d JOIN checklist_items i ON i.id = d.item_id"
            " JOIN checklists c ON c.id = i.checklist_id"
            " WHERE c.client_id = ? AND d.uploaded_at >= ? AND d.uploaded_at < ?"
            " ORDER BY d.uploaded_at",
            [client_id, since, until],
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
