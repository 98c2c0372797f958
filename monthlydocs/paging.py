"""Keyset pages over clients, checklists and events, for the API (later the dashboard).

A page is the rows whose id comes after the last one seen, in id order, so a page costs
the same at row 10 as at row 10,000 and a row added meanwhile is neither skipped nor
shown twice. Each function fetches one row more than asked to tell whether another page
follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlite_utils import Database

from .checklists import DONE_STATES, STATES, state_of


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_after: int | None  # the id to continue after; None on the last page


def _page(rows: list[dict[str, Any]], limit: int) -> Page:
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, rows[-1]["id"])
    return Page(rows, None)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- clients ------------------------------------------------------------------------

_CLIENT_SQL = """
SELECT c.*, (SELECT json_group_array(t.slug) FROM assignments a
             JOIN templates t ON t.id = a.template_id WHERE a.client_id = c.id)
       AS templates
FROM clients c
WHERE {where}
ORDER BY c.id
LIMIT ?
"""


def clients_page(
    db: Database,
    *,
    after: int = 0,
    limit: int = 50,
    status: str | None = None,
    search: str | None = None,
    template_id: int | None = None,
) -> Page:
    """Clients by id. ``status`` None means every client not archived; ``search``
    matches part of the name or email (case-insensitive for ASCII letters)."""
    where, params = ["c.id > ?"], [after]
    if status:
        where.append("c.status = ?")
        params.append(status)
    else:
        where.append("c.status != 'archived'")
    if search:
        where.append("(c.name LIKE ? ESCAPE '\\' OR c.email LIKE ? ESCAPE '\\')")
        params += [_like(search), _like(search)]
    if template_id is not None:
        where.append(
            "EXISTS (SELECT 1 FROM assignments a WHERE a.client_id = c.id"
            " AND a.template_id = ?)"
        )
        params.append(template_id)
    sql = _CLIENT_SQL.format(where=" AND ".join(where))
    rows = [_with_templates(row) for row in db.query(sql, [*params, limit + 1])]
    return _page(rows, limit)


def client(db: Database, client_id: int) -> dict[str, Any] | None:
    """One client with the slugs of the templates assigned to them."""
    rows = list(db.query(_CLIENT_SQL.format(where="c.id = ?"), [client_id, 1]))
    return _with_templates(rows[0]) if rows else None


def _with_templates(row: dict[str, Any]) -> dict[str, Any]:
    row["templates"] = sorted(json.loads(row["templates"] or "[]"))
    return row


# -- checklists -----------------------------------------------------------------------

_DONE = ", ".join(f"'{state}'" for state in DONE_STATES)
# checklists.state_of in SQL, so that a filter on the state can page; a test holds the
# two together. "partial" is any item handled, as state_of reads ``handled``.
_STATE_SQL = f"""CASE
    WHEN c.completed_at IS NOT NULL THEN 'complete'
    WHEN c.due_on < ? THEN 'overdue'
    WHEN EXISTS (SELECT 1 FROM checklist_items h WHERE h.checklist_id = c.id
                 AND h.state IN ({_DONE})) THEN 'partial'
    WHEN c.first_opened_at IS NOT NULL THEN 'opened'
    ELSE 'not_opened' END"""
# The page's ids are picked first, walking the primary key and stopping at the limit;
# only those checklists are then joined and counted (the counts of checklists.status).
_CHECKLIST_SQL = f"""
WITH page AS (
    SELECT c.id FROM checklists c
    WHERE {{where}} AND (? IS NULL OR {_STATE_SQL} = ?)
    ORDER BY c.id
    LIMIT ?
)
SELECT c.id, c.client_id, cl.name AS client, c.template_id, t.slug AS template,
       c.template_name, c.period, c.due_on, c.created_at, c.link_sent_at,
       c.first_opened_at, c.last_opened_at, c.open_count, c.completed_at,
       c.archived_at, c.escalated_at,
       sum(CASE WHEN i.optional = 0 THEN 1 ELSE 0 END) AS required,
       sum(CASE WHEN i.optional = 0 AND i.state IN ({_DONE}) THEN 1 ELSE 0 END)
           AS received,
       sum(CASE WHEN i.state IN ({_DONE}) THEN 1 ELSE 0 END) AS handled,
       count(i.id) AS item_count
FROM page
JOIN checklists c ON c.id = page.id
JOIN clients cl ON cl.id = c.client_id
JOIN templates t ON t.id = c.template_id
LEFT JOIN checklist_items i ON i.checklist_id = c.id
GROUP BY c.id
ORDER BY c.id
"""


def checklists_page(
    db: Database,
    today: date,
    *,
    after: int = 0,
    limit: int = 50,
    period: str | None = None,
    template_id: int | None = None,
    state: str | None = None,
    client_id: int | None = None,
    include_archived: bool = False,
) -> Page:
    """Checklists by id with their progress counts and ``state`` on ``today``."""
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r}")
    where, params = ["c.id > ?"], [after]
    if period:
        where.append("c.period = ?")
        params.append(period.strip().upper() if period != "once" else period)
    if template_id is not None:
        where.append("c.template_id = ?")
        params.append(template_id)
    if client_id is not None:
        where.append("c.client_id = ?")
        params.append(client_id)
    if not include_archived:
        where.append("c.archived_at IS NULL")
    rows = _checklists(
        db, " AND ".join(where), [*params, state, today.isoformat(), state, limit + 1]
    )
    for row in rows:
        row["state"] = state_of(row, today)
    return _page(rows, limit)


def checklist(db: Database, checklist_id: int, today: date) -> dict[str, Any] | None:
    """One checklist as a page row (archived ones included)."""
    rows = _checklists(db, "c.id = ?", [checklist_id, None, today.isoformat(), None, 1])
    if not rows:
        return None
    rows[0]["state"] = state_of(rows[0], today)
    return rows[0]


def _checklists(db: Database, where: str, params: list[Any]) -> list[dict[str, Any]]:
    return list(db.query(_CHECKLIST_SQL.format(where=where), params))


# -- events ---------------------------------------------------------------------------


def events_page(
    db: Database,
    *,
    after: int = 0,
    limit: int = 100,
    actions: list[str] | None = None,
    client_id: int | None = None,
) -> Page:
    """The audit trail from the event after ``after`` on, oldest first."""
    where, params = ["id > ?"], [after]
    if actions:
        where.append("action IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(actions))
    if client_id is not None:
        where.append("client_id = ?")
        params.append(client_id)
    rows = list(
        db.query(
            f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            [*params, limit + 1],
        )
    )
    return _page(rows, limit)
