"""Deleting what the firm no longer has to keep: closed checklists past the retention.

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


@dataclass
class PurgePlan:
    checklists: list[dict[str, Any]]
    documents: list[dict[str, Any]]

    @property
    def bytes(self) -> int:
        return sum(d["size"] for d in self.documents)


def earliest_allowed(today: date, retention_years: int) -> date:
    """Periods starting before this date are past the retention."""
    try:
        return today.replace(year=today.year - retention_years, day=1)
    except ValueError:  # 29 February
        return today.replace(year=today.year - retention_years, day=1, month=3)


def plan(db: Database, before: str, today: date, retention_years: int) -> PurgePlan:
    """Closed (complete or archived) checklists whose period starts before ``before``."""
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
            "SELECT c.id, c.period, c.template_name, cl.name AS client FROM checklists c"
            " JOIN clients cl ON cl.id = c.client_id"
            " WHERE (c.completed_at IS NOT NULL OR c.archived_at IS NOT NULL"
            "  OR cl.status = 'archived') AND c.period != 'once'"
            " ORDER BY c.period, cl.name"
        )
        if period_start(row["period"]) < start
    ]
    ids = [row["id"] for row in closed]
    documents = list(
        db.query(
            "SELECT d.id, d.stored_path, d.size FROM documents d"
            " JOIN checklist_items i ON i.id = d.item_id"
            " WHERE i.checklist_id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        )
    )
    return PurgePlan(closed, documents)


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


def execute(
    db: Database,
    files_dir: Path,
    purge_plan: PurgePlan,
    now: datetime,
    actor: str = "cli",
) -> None:
    ids = [row["id"] for row in purge_plan.checklists]
    with write_transaction(db):
        db.execute(
            "DELETE FROM checklists WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        )
        record(
            db,
            Event.CHECKLISTS_PURGED,
            now,
            actor=actor,
            subject_type="checklist",
            data={"checklists": len(ids), "documents": len(purge_plan.documents)},
        )
    for document in purge_plan.documents:
        (files_dir / document["stored_path"]).unlink(missing_ok=True)
