"""Deleting what the firm no longer has to keep: closed checklists past the retention.

A checklist goes with everything recorded about it: its items and documents, the
messages sent about it alone, and the audit events about it, its items, its documents and
those messages (a rejection's note, a document's checksum). One summary event with counts
and no personal data says that a purge happened and who ran it.

Rows go first, in one transaction; files follow. A crash in between leaves orphan files
(found by a later purge of the same folders), never rows pointing at nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .db import write_transaction
from .errors import MonthlydocsError
from .events import Event, record
from .periods import period_start
from .timeutil import parse_iso


@dataclass
class PurgePlan:
    checklists: list[dict[str, Any]]
    documents: list[dict[str, Any]]
    messages: int = 0
    events: int = 0

    @property
    def bytes(self) -> int:
        return sum(d["size"] for d in self.documents)


@dataclass
class Purged:
    checklists: int
    documents: int
    messages: int
    events: int


def earliest_allowed(today: date, retention_years: int) -> date:
    """Periods starting before this date are past the retention."""
    try:
        return today.replace(year=today.year - retention_years, day=1)
    except ValueError:  # 29 February
        return today.replace(year=today.year - retention_years, day=1, month=3)


def plan(db: Database, before: str, today: date, retention_years: int) -> PurgePlan:
    """Closed (complete or archived) checklists whose period starts before ``before``;
    a one-off checklist, which has no period, counts from the day it was closed."""
    start = _start(before)
    limit = earliest_allowed(today, retention_years)
    if start > limit:
        raise MonthlydocsError(
            f"Documents are kept {retention_years} years (storage.retention_years): "
            f"you can purge periods before {limit.strftime('%Y-%m')} at the latest"
        )
    closed = [
        row
        for row in db.query(
            "SELECT c.id, c.period, c.template_name, cl.name AS client,"
            " coalesce(c.completed_at, c.archived_at,"
            "  CASE WHEN cl.status = 'archived' THEN cl.updated_at END) AS closed_at"
            " FROM checklists c JOIN clients cl ON cl.id = c.client_id"
            " WHERE c.completed_at IS NOT NULL OR c.archived_at IS NOT NULL"
            "  OR cl.status = 'archived'"
            " ORDER BY c.period, cl.name"
        )
        if _starts(row) < start
    ]
    ids = [row["id"] for row in closed]
    related = _related(db, ids)
    documents = list(
        db.query(
            "SELECT id, stored_path, size FROM documents"
            " WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(related["documents"])],
        )
    )
    return PurgePlan(
        closed, documents, len(related["messages"]), len(related["events"])
    )


def _starts(row: dict[str, Any]) -> date:
    """When a checklist's time began to run: its period's first day, or for a one-off,
    the day it was closed."""
    if row["period"] != "once":
        return period_start(row["period"])
    return parse_iso(row["closed_at"]).date()


def _start(period: str) -> date:
    text = period.strip().upper()
    try:
        start = period_start(text)
    except ValueError:
        start = None
    if start is None:
        raise MonthlydocsError(
            f"{period!r} is not a period like 2019-12, 2019-Q4 or 2019"
        )
    return start


def _related(db: Database, checklist_ids: list[int]) -> dict[str, list[int]]:
    """Ids of the rows that belong to these checklists and go with them.

    Messages go when every checklist they were about goes (one email may cover several
    checklists of a client). Document events are found by the document's id, and for
    documents the client removed earlier, by the item they were in.
    """
    chosen = json.dumps(checklist_ids)
    purged = set(checklist_ids)
    items = [
        row[0]
        for row in db.execute(
            "SELECT id FROM checklist_items"
            " WHERE checklist_id IN (SELECT value FROM json_each(?))",
            [chosen],
        )
    ]
    documents = {
        row[0]
        for row in db.execute(
            "SELECT d.id FROM documents d JOIN checklist_items i ON i.id = d.item_id"
            " WHERE i.checklist_id IN (SELECT value FROM json_each(?))",
            [chosen],
        )
    }
    documents.update(
        row[0]
        for row in db.execute(
            "SELECT subject_id FROM events WHERE subject_type = 'document'"
            " AND json_extract(data, '$.item_id') IN (SELECT value FROM json_each(?))",
            [json.dumps(items)],
        )
    )
    shared, messages = [], []
    for message_id, about in db.execute(
        "SELECT m.id, m.checklist_ids FROM messages m WHERE EXISTS"
        " (SELECT 1 FROM json_each(m.checklist_ids) j"
        "  WHERE j.value IN (SELECT value FROM json_each(?)))",
        [chosen],
    ):
        if set(json.loads(about)) <= purged:
            messages.append(message_id)
        else:
            shared.append(message_id)
    events = []
    for subject_type, subject_ids in (
        ("checklist", checklist_ids),
        ("item", items),
        ("document", sorted(documents)),
        ("message", messages),
    ):
        events += [
            row[0]
            for row in db.execute(
                "SELECT id FROM events WHERE subject_type = ?"
                " AND subject_id IN (SELECT value FROM json_each(?))",
                [subject_type, json.dumps(subject_ids)],
            )
        ]
    events += _reminder_events(db, purged)
    return {
        "items": items,
        "documents": sorted(documents),
        "messages": messages,
        "shared_messages": shared,
        "events": sorted(set(events)),
    }


def _reminder_events(db: Database, purged: set[int]) -> list[int]:
    """reminder:queued events (recorded per client) whose steps were all about these
    checklists."""
    found = []
    for event_id, data in db.execute(
        "SELECT id, data FROM events WHERE action = ? AND client_id IN"
        " (SELECT client_id FROM checklists WHERE id IN"
        "  (SELECT value FROM json_each(?)))",
        [str(Event.REMINDER_QUEUED), json.dumps(sorted(purged))],
    ):
        steps = (json.loads(data) if data else {}).get("steps") or {}
        if steps and {int(key) for key in steps} <= purged:
            found.append(event_id)
    return found


def execute(
    db: Database,
    files_dir: Path,
    purge_plan: PurgePlan,
    now: datetime,
    actor: str = "cli",
) -> Purged:
    """Delete the planned checklists and what goes with them; returns the counts.

    What belongs to them is looked up again inside the transaction, so a document
    uploaded since the plan was shown goes with its checklist, file included.
    """
    ids = [row["id"] for row in purge_plan.checklists]
    with write_transaction(db):
        related = _related(db, ids)
        files = [
            row[0]
            for row in db.execute(
                "SELECT stored_path FROM documents"
                " WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(related["documents"])],
            )
        ]
        for table, key in (("events", "events"), ("messages", "messages")):
            db.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(related[key])],
            )
        # A message that was also about a checklist that stays keeps only that one.
        db.execute(
            "UPDATE messages SET checklist_ids = (SELECT json_group_array(j.value)"
            "  FROM json_each(messages.checklist_ids) j"
            "  WHERE j.value NOT IN (SELECT value FROM json_each(?)))"
            " WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids), json.dumps(related["shared_messages"])],
        )
        db.execute(
            "DELETE FROM checklists WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        )
        purged = Purged(
            len(ids), len(files), len(related["messages"]), len(related["events"])
        )
        record(
            db,
            Event.CHECKLISTS_PURGED,
            now,
            actor=actor,
            subject_type="checklist",
            data={
                "checklists": purged.checklists,
                "documents": purged.documents,
                "messages": purged.messages,
                "events": purged.events,
            },
        )
    for stored_path in files:
        (files_dir / stored_path).unlink(missing_ok=True)
    return purged
