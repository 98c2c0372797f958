"""What the staff dashboard shows, without any web in it.

The overview: counts by state for a period and template, and one page of the
checklist table, filtered, searched and sorted in SQL so that a page stays fast at
10,000 checklists. Then the timeline of one checklist (its events and its messages),
the feed of new events the dashboard polls, and the few lists the management pages need.

A checklist's state is computed exactly as ``checklists.state_of`` does, but in SQL;
"to call" (the last automatic reminder went out and the checklist is still open) is a
flag on top of the state, as in ``monthlydocs status``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlite_utils import Database

from . import checklists, reminders
from .clients import fold, get_client
from .config import Settings
from .errors import ChecklistNotFound, MonthlydocsError
from .events import Event, record

STATES = checklists.STATES  # complete, partial, opened, not_opened, overdue
TO_CALL = "to_call"
FILTERS = (*STATES, TO_CALL)
# The order of urgency used by the default sort: whom to call first, done last.
URGENCY = (TO_CALL, "overdue", "not_opened", "opened", "partial", "complete")
SORTS = ("state", "client", "template", "period", "due", "activity")
PER_PAGE = 50
MAX_PER_PAGE = 200
CLIENT_STATUSES = ("active", "pending", "archived")

_DONE = "('received', 'approved', 'not_applicable')"
# Mirrors checklists.state_of; the handled count is read from the progress index.
_STATE_SQL = f"""CASE
    WHEN c.completed_at IS NOT NULL THEN 'complete'
    WHEN c.due_on < :today THEN 'overdue'
    WHEN EXISTS (SELECT 1 FROM checklist_items i WHERE i.checklist_id = c.id
                 AND i.state IN {_DONE}) THEN 'partial'
    WHEN c.first_opened_at IS NOT NULL THEN 'opened'
    ELSE 'not_opened' END"""
_TO_CALL_SQL = "(c.escalated_at IS NOT NULL AND c.completed_at IS NULL)"
_ACTIVITY_SQL = """max(c.created_at, coalesce(c.link_sent_at, ''),
    coalesce(c.last_opened_at, ''),
    coalesce((SELECT max(i.updated_at) FROM checklist_items i
              WHERE i.checklist_id = c.id), ''))"""
_URGENCY_SQL = "CASE WHEN b.to_call THEN 0 ELSE {cases} END".format(
    cases="CASE b.state "
    + " ".join(f"WHEN '{s}' THEN {n}" for n, s in enumerate(URGENCY) if s != TO_CALL)
    + " END"
)
_ORDER = {
    "state": f"{_URGENCY_SQL} {{dir}}, b.due_on, cl.name COLLATE NOCASE, b.id",
    "client": "cl.name COLLATE NOCASE {dir}, b.period DESC, b.id",
    "template": "b.template_name COLLATE NOCASE {dir}, cl.name COLLATE NOCASE, b.id",
    "period": "b.period {dir}, cl.name COLLATE NOCASE, b.id",
    "due": "b.due_on {dir}, cl.name COLLATE NOCASE, b.id",
    "activity": "b.activity_at {dir}, b.id {dir}",
}
_FOLD_FUNCTION = "monthlydocs_fold"


class ItemNotFound(MonthlydocsError):
    pass


class NothingToRemind(MonthlydocsError):
    """A reminder was asked for a checklist that is complete or archived."""


# -- the overview ----------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """What the overview shows: filters, search, sort and page (1-based)."""

    period: str | None = None
    template_id: int | None = None
    state: str | None = None
    search: str = ""
    sort: str = "state"
    descending: bool = False
    page: int = 1
    per_page: int = PER_PAGE

    def __post_init__(self):
        if self.state is not None and self.state not in FILTERS:
            raise MonthlydocsError(f"Unknown state {self.state!r}: use one of "
                                   f"{', '.join(FILTERS)}")
        if self.sort not in SORTS:
            raise MonthlydocsError(f"Unknown sort {self.sort!r}: use one of "
                                   f"{', '.join(SORTS)}")


@dataclass
class Overview:
    query: Query
    counts: dict[str, int]  # each state, to_call and total, ignoring state and search
    rows: list[dict[str, Any]]  # this page, each with progress and reminders
    matching: int  # rows across all pages for the whole query
    page: int  # the page shown (the query's, brought within range)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.query.per_page))


def _base_sql(query: Query, with_activity: bool) -> tuple[str, dict[str, Any]]:
    where = ["c.archived_at IS NULL"]
    params: dict[str, Any] = {}
    if query.period:
        where.append("c.period = :period")
        params["period"] = query.period
    if query.template_id is not None:
        where.append("c.template_id = :template_id")
        params["template_id"] = query.template_id
    activity = f", {_ACTIVITY_SQL} AS activity_at" if with_activity else ""
    sql = (
        "SELECT c.id, c.client_id, c.template_id, c.template_name, c.period, c.due_on,"
        " c.link_sent_at, c.first_opened_at, c.last_opened_at, c.completed_at,"
        f" c.escalated_at, c.created_at, {_STATE_SQL} AS state,"
        f" {_TO_CALL_SQL} AS to_call{activity}"
        " FROM checklists c WHERE " + " AND ".join(where)
    )
    return sql, params


def counts_sql(query: Query) -> tuple[str, dict[str, Any]]:
    """The statement behind the counts (the benchmark runs it raw)."""
    base, params = _base_sql(query, with_activity=False)
    return (
        f"WITH b AS ({base})"
        " SELECT state, count(*), sum(to_call) FROM b GROUP BY state",
        params,
    )


def page_sql(query: Query, page: int) -> tuple[str, dict[str, Any]]:
    """The statement behind one page of the table."""
    sql, params = _filtered_sql(query)
    order = _ORDER[query.sort].format(dir="DESC" if query.descending else "ASC")
    params["limit"] = query.per_page
    params["offset"] = (page - 1) * query.per_page
    return f"{sql} ORDER BY {order} LIMIT :limit OFFSET :offset", params


def matching_sql(query: Query) -> tuple[str, dict[str, Any]]:
    """How many rows the whole query matches (needed only when searching: the counts
    give it otherwise)."""
    sql, params = _filtered_sql(query)
    return f"SELECT count(*) FROM ({sql})", params


def _filtered_sql(query: Query) -> tuple[str, dict[str, Any]]:
    base, params = _base_sql(query, with_activity=query.sort == "activity")
    where = []
    if query.state == TO_CALL:
        where.append("b.to_call")
    elif query.state:
        where.append("b.state = :state")
        params["state"] = query.state
    if query.search.strip():
        where.append(_search_sql("cl"))
        params.update(_search_params(query.search))
    sql = (
        f"WITH b AS ({base}) SELECT b.*, cl.name AS client, cl.email, cl.phone,"
        " cl.language FROM b JOIN clients cl ON cl.id = b.client_id"
        + (" WHERE " + " AND ".join(where) if where else "")
    )
    return sql, params


DETAILS_SQL = f"""
SELECT c.id, t.reminder_days,
    (SELECT cl.reminders_paused_at FROM clients cl WHERE cl.id = c.client_id)
        AS reminders_paused_at,
    (SELECT sum(i.optional = 0) FROM checklist_items i WHERE i.checklist_id = c.id)
        AS required,
    (SELECT sum(i.optional = 0 AND i.state IN {_DONE}) FROM checklist_items i
        WHERE i.checklist_id = c.id) AS received,
    (SELECT count(*) FROM checklist_items i WHERE i.checklist_id = c.id) AS item_count,
    (SELECT group_concat(r.step) FROM reminder_steps r WHERE r.checklist_id = c.id)
        AS recorded_steps,
    (SELECT max(r.step) FROM reminder_steps r WHERE r.checklist_id = c.id
        AND r.outcome != 'skipped') AS last_step,
    (SELECT max(r.decided_at) FROM reminder_steps r WHERE r.checklist_id = c.id
        AND r.outcome != 'skipped') AS last_reminder_at,
    {_ACTIVITY_SQL} AS activity_at
FROM checklists c JOIN templates t ON t.id = c.template_id
WHERE c.id IN (SELECT value FROM json_each(:ids))
"""


def overview(db: Database, settings: Settings, today: date, query: Query) -> Overview:
    """Counts and one page of the table for ``query``, as of the local ``today``."""
    _install_fold(db)
    today_text = today.isoformat()
    sql, params = counts_sql(query)
    counts = dict.fromkeys((*STATES, TO_CALL), 0)
    for state, number, to_call in db.execute(sql, {**params, "today": today_text}):
        counts[state] = number
        counts[TO_CALL] += to_call or 0
    counts["total"] = sum(counts[state] for state in STATES)

    matching = _matching(db, query, counts, today_text)
    pages = max(1, math.ceil(matching / query.per_page))
    # A page past the end (rows went away since the link was made): the last one.
    page = min(max(1, query.page), pages)
    sql, params = page_sql(query, page)
    rows = list(db.query(sql, {**params, "today": today_text}))
    _add_details(db, settings, rows)
    return Overview(query, counts, rows, matching, page)


def _matching(db: Database, query: Query, counts: dict[str, int], today: str) -> int:
    if query.search.strip():
        sql, params = matching_sql(query)
        return db.execute(sql, {**params, "today": today}).fetchone()[0]
    return counts[query.state] if query.state else counts["total"]


def _add_details(
    db: Database, settings: Settings, rows: list[dict[str, Any]]
) -> None:
    """Progress, last and next reminder for the rows of one page."""
    if not rows:
        return
    details = {
        row["id"]: row
        for row in db.query(DETAILS_SQL, {"ids": json.dumps([r["id"] for r in rows])})
    }
    for row in rows:
        extra = details[row["id"]]
        row.update({k: v for k, v in extra.items() if k not in ("id", *row)})
        row["required"] = row["required"] or 0
        row["received"] = row["received"] or 0
        row["to_call"] = bool(row["to_call"])
    reminders.annotate(rows, settings)
    for row in rows:
        # annotate() sets this from the columns; keep the one computed in SQL.
        row["to_call"] = bool(row["escalated_at"]) and not row["completed_at"]


def _search_sql(alias: str) -> str:
    """Part of a name (accents and case ignored) or of an email address.

    Names written in plain ASCII are compared by LIKE, which ignores ASCII case; only
    the others go through Python's fold(), which costs a call per row.
    """
    return (
        f"({alias}.email LIKE :like ESCAPE '\\' OR CASE"
        f" WHEN {alias}.name GLOB '*[^ -~]*'"
        f" THEN {_FOLD_FUNCTION}({alias}.name) LIKE :folded ESCAPE '\\'"
        f" ELSE {alias}.name LIKE :folded ESCAPE '\\' END)"
    )


def _search_params(search: str) -> dict[str, str]:
    return {"like": _like(search.strip()), "folded": _like(fold(search))}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _install_fold(db: Database) -> None:
    """Accent- and case-blind search: 'muller' finds 'Müller', 'ELODIE' 'Élodie'."""
    db.conn.create_function(
        _FOLD_FUNCTION, 1, lambda text: fold(text) if text else text,
        deterministic=True,
    )


def periods(db: Database) -> list[str]:
    """Periods that have checklists, the latest first (from the period index alone:
    a period whose checklists are all archived still shows, with nothing in it)."""
    return [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT period FROM checklists ORDER BY period DESC"
        )
    ]


def template_choices(db: Database) -> list[dict[str, Any]]:
    """Templates in use, for a filter: id, slug and name only (no counts to compute)."""
    return list(
        db.query(
            "SELECT id, slug, name FROM templates WHERE archived_at IS NULL"
            " ORDER BY name COLLATE NOCASE"
        )
    )


def default_period(db: Database, today: date) -> str | None:
    """The period the firm works on now: this month when it has checklists (monthly
    templates are the common case), else the period generated last."""
    month = f"{today.year:04d}-{today.month:02d}"
    if db.execute(
        "SELECT 1 FROM checklists WHERE period = ? AND archived_at IS NULL LIMIT 1",
        [month],
    ).fetchone():
        return month
    row = db.execute(
        "SELECT period FROM checklists WHERE archived_at IS NULL"
        " ORDER BY created_at DESC, id DESC LIMIT 1"
    ).fetchone()
    return row[0] if row else None


# -- one checklist ---------------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """One line of a checklist's timeline.

    ``kind`` is an event name (``document:uploaded``...) or, for a message, its kind
    (``link``, ``reminder``, ``rejection``); ``details`` holds what the line shows: the
    file name, the note, the channel and delivery state, the reminder step.
    """

    at: str
    kind: str
    actor: str
    details: dict[str, Any] = field(default_factory=dict)


# Events shown on a timeline; message events are shown through the messages themselves.
TIMELINE_EVENTS = (
    Event.CHECKLIST_CREATED,
    Event.CHECKLIST_OPENED,
    Event.CHECKLIST_COMPLETED,
    Event.LINK_ROTATED,
    Event.DOCUMENT_UPLOADED,
    Event.DOCUMENT_REMOVED,
    Event.DOCUMENT_APPROVED,
    Event.DOCUMENT_REJECTED,
    Event.ITEM_NOT_APPLICABLE,
    Event.ITEM_REOPENED,
    Event.REMINDER_REQUESTED,
)


def timeline(db: Database, checklist_id: int) -> list[Moment]:
    """What happened to a checklist, the latest first: link sent, opened, uploads,
    reminders with their channel and delivery state, reviews, not-applicable marks."""
    checklist = checklists.get_checklist(db, checklist_id)
    item_ids = {
        row[0]
        for row in db.execute(
            "SELECT id FROM checklist_items WHERE checklist_id = ?", [checklist_id]
        )
    }
    files = {
        row[0]: (row[1], row[2])
        for row in db.execute(
            "SELECT d.id, d.original_filename, d.item_id FROM documents d"
            " JOIN checklist_items i ON i.id = d.item_id WHERE i.checklist_id = ?",
            [checklist_id],
        )
    }
    moments = []
    for event in db.query(
        "SELECT * FROM events WHERE client_id = ? AND action IN"
        " (SELECT value FROM json_each(?)) ORDER BY id",
        [checklist["client_id"], json.dumps([str(e) for e in TIMELINE_EVENTS])],
    ):
        data = json.loads(event["data"]) if event["data"] else {}
        subject, subject_id = event["subject_type"], event["subject_id"]
        details = dict(data)
        if subject == "checklist":
            if subject_id != checklist_id:
                continue
        elif subject == "item":
            if subject_id not in item_ids:
                continue
        elif subject == "document":
            if subject_id in files:
                details["file"] = files[subject_id][0]
            elif data.get("item_id") not in item_ids:
                continue
        else:
            continue
        moments.append(Moment(event["at"], event["action"], event["actor"], details))
    moments.extend(_message_moments(db, checklist))
    # The latest first; at the same second, the one recorded later first.
    order = {id(moment): n for n, moment in enumerate(moments)}
    moments.sort(key=lambda moment: (moment.at, order[id(moment)]), reverse=True)
    return moments


def _message_moments(db: Database, checklist: dict[str, Any]) -> list[Moment]:
    moments = []
    for message in db.query(
        "SELECT m.*, (SELECT r.step FROM reminder_steps r WHERE r.message_id = m.id"
        " AND r.checklist_id = :checklist) AS step FROM messages m"
        " WHERE m.client_id = :client AND m.kind IN ('link', 'reminder', 'rejection')"
        " AND EXISTS (SELECT 1 FROM json_each(m.checklist_ids)"
        " WHERE value = :checklist) ORDER BY m.id",
        {"client": checklist["client_id"], "checklist": checklist["id"]},
    ):
        details = {
            "channel": message["channel"],
            "state": message["state"],
            "recipient": message["recipient"],
            "attempts": message["attempts"],
            "error": message["last_error"],
            "step": message["step"],
        }
        at = message["sent_at"] or message["created_at"]
        moments.append(Moment(at, message["kind"], "system", details))
    return moments


def checklist_state(db: Database, checklist_id: int, today: date) -> tuple[str, bool]:
    """(state, to call) of one checklist, as the overview computes them."""
    row = db.execute(
        f"SELECT {_STATE_SQL}, {_TO_CALL_SQL} FROM checklists c WHERE c.id = :id",
        {"id": checklist_id, "today": today.isoformat()},
    ).fetchone()
    if row is None:
        raise ChecklistNotFound(f"No checklist #{checklist_id}")
    return row[0], bool(row[1])


def checklist_of_item(db: Database, item_id: int) -> int:
    """The checklist an item belongs to."""
    row = db.execute(
        "SELECT checklist_id FROM checklist_items WHERE id = ?", [item_id]
    ).fetchone()
    if row is None:
        raise ItemNotFound(f"No item #{item_id}")
    return row[0]


def remind_now(
    db: Database, settings: Settings, now: datetime, checklist_id: int, actor: str
) -> int:
    """Queue the next reminder of a checklist now ("Send a reminder now"), recording who
    asked for it. Returns how many checklists the message covers; sending is the
    outbox's job."""
    checklist = checklists.get_checklist(db, checklist_id)
    if checklist["completed_at"] or checklist["archived_at"]:
        raise NothingToRemind(
            f"Checklist #{checklist_id} is complete or archived: nothing to remind"
        )
    client = get_client(db, checklist["client_id"])
    if client["status"] != "active":
        raise NothingToRemind(f"{client['name']} is {client['status']}")
    queued = reminders.queue_manual(db, settings, now, client, [checklist_id])
    record(
        db, Event.REMINDER_REQUESTED, now, actor=actor, subject_type="checklist",
        subject_id=checklist_id, client_id=client["id"],
    )
    return queued


# -- the live feed ---------------------------------------------------------------------


def latest_event_id(db: Database) -> int:
    return db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]


FEED_SQL = """
SELECT e.id, e.at, e.action, e.actor, e.client_id, cl.name AS client,
    d.original_filename AS file,
    CASE e.subject_type
        WHEN 'checklist' THEN e.subject_id
        WHEN 'item' THEN (SELECT i.checklist_id FROM checklist_items i
                          WHERE i.id = e.subject_id)
        WHEN 'document' THEN (SELECT i.checklist_id FROM checklist_items i
                              WHERE i.id = d.item_id)
    END AS checklist_id
FROM events e
LEFT JOIN clients cl ON cl.id = e.client_id
LEFT JOIN documents d ON e.subject_type = 'document' AND d.id = e.subject_id
WHERE e.id > ?
ORDER BY e.id
LIMIT ?
"""


def feed(db: Database, after: int, limit: int = 50) -> list[dict[str, Any]]:
    """Events recorded after the event id ``after``, oldest first, with the client's
    name, the file name of an upload and the checklist concerned (when any)."""
    return list(db.query(FEED_SQL, [max(0, after), limit]))


# -- management lists ------------------------------------------------------------------


@dataclass
class ClientPage:
    rows: list[dict[str, Any]]
    matching: int
    page: int
    per_page: int
    by_status: dict[str, int]

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.per_page))


def clients_page(
    db: Database,
    *,
    status: str = "active",
    search: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> ClientPage:
    """Clients of one status by name, one page, with their templates' names."""
    if status not in CLIENT_STATUSES:
        raise MonthlydocsError(f"Unknown client status {status!r}")
    _install_fold(db)
    by_status = dict.fromkeys(CLIENT_STATUSES, 0)
    for row_status, number in db.execute(
        "SELECT status, count(*) FROM clients GROUP BY status"
    ):
        by_status[row_status] = number
    where, params = ["c.status = :status"], {"status": status}
    if search.strip():
        where.append(_search_sql("c"))
        params.update(_search_params(search))
    page = max(1, page)
    rows = list(
        db.query(
            "SELECT c.*, (SELECT group_concat(t.name, ', ') FROM assignments a"
            " JOIN templates t ON t.id = a.template_id WHERE a.client_id = c.id"
            " AND t.archived_at IS NULL) AS template_names,"
            " count(*) OVER () AS matching FROM clients c WHERE "
            + " AND ".join(where)
            + " ORDER BY c.name COLLATE NOCASE, c.id LIMIT :limit OFFSET :offset",
            {**params, "limit": per_page, "offset": (page - 1) * per_page},
        )
    )
    matching = rows[0]["matching"] if rows else 0
    return ClientPage(rows, matching, page, per_page, by_status)


def client_checklists(
    db: Database, client_id: int, today: date
) -> list[dict[str, Any]]:
    """Every checklist of a client, the latest period first, with its state."""
    sql = (
        "SELECT c.*, " + _STATE_SQL + " AS state, " + _TO_CALL_SQL + " AS to_call"
        " FROM checklists c WHERE c.client_id = :client"
        " ORDER BY c.period DESC, c.template_name"
    )
    return list(db.query(sql, {"client": client_id, "today": today.isoformat()}))


def template_ids_of(db: Database, client_id: int) -> set[int]:
    return {
        row[0]
        for row in db.execute(
            "SELECT template_id FROM assignments WHERE client_id = ?", [client_id]
        )
    }


def client_ids_of(db: Database, template_id: int) -> set[int]:
    return {
        row[0]
        for row in db.execute(
            "SELECT client_id FROM assignments WHERE template_id = ?", [template_id]
        )
    }


def active_clients(db: Database, template_id: int | None = None) -> list[dict]:
    """Active clients by name (only those assigned to ``template_id`` if given)."""
    sql = (
        "SELECT c.id, c.name, c.email, c.language FROM clients c"
        " WHERE c.status = 'active'"
    )
    params: list[Any] = []
    if template_id is not None:
        sql += (
            " AND EXISTS (SELECT 1 FROM assignments a WHERE a.client_id = c.id"
            " AND a.template_id = ?)"
        )
        params.append(template_id)
    return list(db.query(sql + " ORDER BY c.name COLLATE NOCASE, c.id", params))


def set_assignments(
    db: Database,
    now: datetime,
    *,
    template_id: int,
    wanted: set[int],
    among: set[int],
    actor: str,
) -> tuple[int, int]:
    """Make the clients in ``among`` that are assigned to a template exactly ``wanted``.

    Returns (added, removed). Clients outside ``among`` keep their assignment, so a
    form that lists only some clients cannot unassign the others.
    """
    from .clients import assign, unassign

    current = client_ids_of(db, template_id) & among
    added = assign(db, sorted((wanted & among) - current), template_id, now, actor)
    removed = unassign(db, sorted(current - wanted), template_id, now, actor)
    return added, removed
