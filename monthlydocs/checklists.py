"""Checklists: generation for a period, item states, completion and status summaries."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlite_utils import Database

from . import links
from .db import write_transaction
from .errors import ChecklistNotFound, InvalidPeriod, MonthlydocsError
from .events import Event, record, record_many
from .periods import CADENCES, check_period, current_period, due_date
from .templates import slots as template_slots
from .timeutil import iso, parse_iso

# Item states; "done" ones count towards completion.
TO_SEND, RECEIVED, NOT_APPLICABLE, REJECTED, APPROVED = (
    "to_send",
    "received",
    "not_applicable",
    "rejected",
    "approved",
)
DONE_STATES = (RECEIVED, NOT_APPLICABLE, APPROVED)
STATES = ("complete", "partial", "opened", "not_opened", "overdue")


@dataclass
class Request:
    """Generate ``template`` for ``period`` (None: current) due on ``due_on`` (None: derived)."""

    template: dict[str, Any]
    period: str | None = None
    due_on: date | None = None


@dataclass
class TemplateOutcome:
    slug: str
    period: str
    due_on: date
    created: int = 0
    already: int = 0
    # Of the ``already`` ones: open checklists whose link was never emailed (made with
    # --no-send), whose link email this run queues.
    unsent: int = 0


@dataclass
class GenerateResult:
    outcomes: list[TemplateOutcome] = field(default_factory=list)
    # client id -> ids of the checklists created for them in this run
    created_by_client: dict[int, list[int]] = field(default_factory=dict)
    # client id -> ids of existing checklists whose link this run emails at last
    unsent_by_client: dict[int, list[int]] = field(default_factory=dict)
    messages_queued: int = 0

    @property
    def created(self) -> int:
        return sum(o.created for o in self.outcomes)

    @property
    def already(self) -> int:
        return sum(o.already for o in self.outcomes)

    @property
    def unsent(self) -> int:
        return sum(o.unsent for o in self.outcomes)


class NotAssigned(MonthlydocsError):
    """A client named for generation is not assigned to the template (or not active)."""


class AmbiguousChecklist(MonthlydocsError):
    """Several current checklists could be meant: the template must be named."""


def templates_due(
    db: Database, today: date, *, unsent: bool = False
) -> list[dict[str, Any]]:
    """Templates with clients whose current period has no checklist yet.

    This is what cron runs on the 1st: a quarterly template is due on 1 January,
    1 April..., a monthly one every month. With ``unsent``, also the templates whose
    current period has open checklists whose link was never emailed (made with
    --no-send), so that a run that sends emails them.
    """
    due = []
    for template in db.query(
        "SELECT * FROM templates t WHERE archived_at IS NULL AND EXISTS ("
        " SELECT 1 FROM assignments a JOIN clients c ON c.id = a.client_id"
        " WHERE a.template_id = t.id AND c.status = 'active') ORDER BY slug"
    ):
        period = current_period(template["cadence"], today)
        exists = db.execute(
            "SELECT 1 FROM checklists WHERE template_id = ? AND period = ? LIMIT 1",
            [template["id"], period],
        ).fetchone()
        if not exists or (
            unsent
            and _never_emailed(
                db,
                template["id"],
                period,
                set(_target_clients(db, template["id"], None)),
            )
        ):
            due.append(template)
    return due


def generate(
    db: Database,
    requests: list[Request],
    now: datetime,
    today: date,
    *,
    client_ids: list[int] | None = None,
    send: bool = True,
    dry_run: bool = False,
    default_language: str = "en",
    actor: str = "cli",
) -> GenerateResult:
    """Create the missing checklists, and queue one link email per client.

    Idempotent: a (client, template, period) that exists is left alone; but with ``send``
    an open one whose link was never emailed (generated with ``send=False``) gets its
    link email now, in the same message as the client's new checklists. Everything
    happens in one write transaction, so the checklists and the messages announcing them
    are stored together or not at all; sending is the outbox's job, after the commit.

    ``client_ids`` narrows the run to those clients; each must be active and assigned
    to one of the requested templates, else NotAssigned is raised and nothing is made.
    """
    result = GenerateResult()
    try:
        with write_transaction(db):
            if client_ids is not None and requests:
                _check_named_clients(db, requests, client_ids)
            for request in requests:
                result.outcomes.append(
                    _generate_one(
                        db,
                        request,
                        now,
                        today,
                        client_ids,
                        dry_run,
                        result,
                        actor,
                        send=send,
                    )
                )
            if dry_run:
                raise _RollBack
            if send and (result.created_by_client or result.unsent_by_client):
                result.messages_queued = _queue_links(
                    db,
                    _merged(result.created_by_client, result.unsent_by_client),
                    now,
                    default_language,
                )
    except _RollBack:
        pass
    return result


def _merged(*groups: dict[int, list[int]]) -> dict[int, list[int]]:
    merged: dict[int, list[int]] = {}
    for group in groups:
        for client_id, ids in group.items():
            merged.setdefault(client_id, []).extend(ids)
    return merged


def _check_named_clients(
    db: Database, requests: list[Request], client_ids: list[int]
) -> None:
    """Each named client must be active and assigned to one of the templates: naming a
    client who would get nothing is a mistake to report, not to skip silently."""
    template_ids = [request.template["id"] for request in requests]
    problems = []
    for name, status, assigned in db.execute(
        "SELECT c.name, c.status, EXISTS (SELECT 1 FROM assignments a"
        "  WHERE a.client_id = c.id AND a.template_id IN"
        "  (SELECT value FROM json_each(?))) FROM clients c"
        " WHERE c.id IN (SELECT value FROM json_each(?)) ORDER BY c.id",
        [json.dumps(template_ids), json.dumps(sorted(set(client_ids)))],
    ):
        if status != "active":
            problems.append(f"{name} is {status}")
        elif not assigned:
            problems.append(f"{name} is not assigned to {_either(requests)}")
    if problems:
        slug = requests[0].template["slug"] if len(requests) == 1 else "SLUG"
        raise NotAssigned(
            f"{'; '.join(problems)}: nothing was generated. Assign a template with "
            f"`monthlydocs client assign CLIENT --template {slug}`, or leave that "
            "client out"
        )


def _either(requests: list[Request]) -> str:
    slugs = [request.template["slug"] for request in requests]
    return slugs[0] if len(slugs) == 1 else "any of " + ", ".join(slugs)


class _RollBack(Exception):
    """Raised inside the transaction of a dry run so that nothing is kept."""


def _generate_one(
    db: Database,
    request: Request,
    now: datetime,
    today: date,
    client_ids: list[int] | None,
    dry_run: bool,
    result: GenerateResult,
    actor: str = "cli",
    *,
    send: bool = True,
) -> TemplateOutcome:
    template = request.template
    period = (
        check_period(request.period, template["cadence"])
        if request.period
        else current_period(template["cadence"], today)
    )
    due_on = request.due_on or due_date(template["due_day"], today)
    outcome = TemplateOutcome(template["slug"], period, due_on)

    targets = _target_clients(db, template["id"], client_ids)
    existing = {
        row[0]
        for row in db.execute(
            "SELECT client_id FROM checklists WHERE template_id = ? AND period = ?",
            [template["id"], period],
        )
    }
    new_clients = [cid for cid in targets if cid not in existing]
    outcome.already = len(targets) - len(new_clients)
    outcome.created = len(new_clients)
    if send and outcome.already:
        for checklist_id, client_id in _never_emailed(
            db, template["id"], period, set(targets)
        ):
            result.unsent_by_client.setdefault(client_id, []).append(checklist_id)
            outcome.unsent += 1
    if not new_clients:
        return outcome
    slot_rows = template_slots(db, template["id"])
    if not slot_rows:
        raise MonthlydocsError(
            f"Template {template['slug']!r} has no slots yet: add some with "
            f"`monthlydocs template slot {template['slug']} NAME`"
        )
    if dry_run:
        for cid in new_clients:
            result.created_by_client.setdefault(cid, []).append(0)
        return outcome

    # Ids are assigned here, under the write lock, so items can reference their
    # checklist without reading each row back.
    first_id = db.execute("SELECT coalesce(max(id), 0) + 1 FROM checklists").fetchone()[
        0
    ]
    stamp, due_text = iso(now), due_on.isoformat()
    checklist_rows = []
    for offset, client_id in enumerate(new_clients):
        token, digest = links.new_token()
        checklist_rows.append(
            (
                first_id + offset,
                client_id,
                template["id"],
                template["name"],
                template.get("translations") or "{}",
                period,
                due_text,
                token,
                digest,
                stamp,
            )
        )
    # The template's and slots' translations are copied with their base text: a
    # checklist keeps the wording it was generated with.
    db.conn.executemany(
        "INSERT INTO checklists (id, client_id, template_id, template_name,"
        " template_translations, period, due_on, token, token_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        checklist_rows,
    )
    slot_values = [
        (
            s["name"],
            s["description"],
            s["optional"],
            s["multiple"],
            s["position"],
            s["translations"] or "{}",
        )
        for s in slot_rows
    ]
    db.conn.executemany(
        "INSERT INTO checklist_items (checklist_id, name, description, optional,"
        " multiple, position, translations) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ((row[0], *slot) for row in checklist_rows for slot in slot_values),
    )
    record_many(
        db,
        Event.CHECKLIST_CREATED,
        now,
        ((row[0], row[1]) for row in checklist_rows),
        actor=actor,
        subject_type="checklist",
    )
    for row in checklist_rows:
        result.created_by_client.setdefault(row[1], []).append(row[0])
    return outcome


def _never_emailed(
    db: Database, template_id: int, period: str, clients: set[int]
) -> list[tuple[int, int]]:
    """(checklist id, client id) of the open checklists of a template and period, among
    ``clients``, whose link was never sent and that no link message covers (one queued
    or waiting for a retry is the outbox's to send; one refused for good is not sent
    again)."""
    rows = [
        (checklist_id, client_id)
        for checklist_id, client_id in db.execute(
            "SELECT id, client_id FROM checklists WHERE template_id = ? AND period = ?"
            " AND link_sent_at IS NULL AND completed_at IS NULL AND archived_at IS NULL"
            " ORDER BY id",
            [template_id, period],
        )
        if client_id in clients
    ]
    if not rows:
        return []
    covered = {
        row[0]
        for row in db.execute(
            "SELECT DISTINCT j.value FROM messages m, json_each(m.checklist_ids) j"
            " WHERE m.kind = 'link' AND m.client_id IN (SELECT value FROM json_each(?))",
            [json.dumps(sorted({client_id for _, client_id in rows}))],
        )
    }
    return [(cid, client_id) for cid, client_id in rows if cid not in covered]


def _target_clients(
    db: Database, template_id: int, client_ids: list[int] | None
) -> list[int]:
    """Active clients assigned to the template, optionally narrowed to ``client_ids``."""
    assigned = [
        row[0]
        for row in db.execute(
            "SELECT a.client_id FROM assignments a JOIN clients c ON c.id = a.client_id"
            " WHERE a.template_id = ? AND c.status = 'active' ORDER BY a.client_id",
            [template_id],
        )
    ]
    if client_ids is None:
        return assigned
    wanted = set(client_ids)
    return [cid for cid in assigned if cid in wanted]


def _queue_links(
    db: Database,
    created_by_client: dict[int, list[int]],
    now: datetime,
    default_language: str,
) -> int:
    stamp = iso(now)
    contacts = {
        row[0]: (row[1], row[2])
        for row in db.execute(
            "SELECT id, email, language FROM clients"
            " WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(list(created_by_client))],
        )
    }
    rows = []
    for client_id, checklist_ids in created_by_client.items():
        email, language = contacts[client_id]
        ids = sorted(checklist_ids)
        rows.append(
            (
                "email",
                client_id,
                email,
                "link",
                language or default_language,
                json.dumps(ids),
                f"link:{client_id}:{','.join(map(str, ids))}",
                stamp,
                stamp,
            )
        )
    db.conn.executemany(
        "INSERT OR IGNORE INTO messages (channel, client_id, recipient, kind, language,"
        " checklist_ids, dedupe_key, created_at, next_attempt_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def get_checklist(db: Database, checklist_id: int) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM checklists WHERE id = ?", [checklist_id]))
    if not rows:
        raise ChecklistNotFound(f"No checklist #{checklist_id}")
    return rows[0]


def items(db: Database, checklist_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT * FROM checklist_items WHERE checklist_id = ? ORDER BY position, id",
            [checklist_id],
        )
    )


def check_any_period(period: str, cadence: str | None = None) -> str:
    """``period`` normalised for ``cadence``, or for whichever cadence it fits; raises
    InvalidPeriod naming the forms when it fits none."""
    if cadence is not None:
        return check_period(period, cadence)
    for each in CADENCES:
        try:
            return check_period(period, each)
        except InvalidPeriod:
            continue
    raise InvalidPeriod(
        f"Period {period!r} is not a period: write it like 2026-12, 2026-Q4, 2026 "
        "or once"
    )


def find_for_client(
    db: Database,
    client_id: int,
    template_id: int | None = None,
    period: str | None = None,
) -> dict[str, Any]:
    """The client's checklist for a template and period (the latest period if not given).

    Without a template: the latest checklist of the client's only template; with several
    templates, the only one of their latest checklists still open. When several are
    open (or none is, and several templates have one), AmbiguousChecklist asks for the
    template instead of picking one.
    """
    sql = "SELECT * FROM checklists WHERE client_id = ?"
    params: list[Any] = [client_id]
    if template_id is not None:
        sql += " AND template_id = ?"
        params.append(template_id)
    if period:
        sql += " AND period = ?"
        params.append(check_any_period(period))
    rows = list(db.query(sql + " ORDER BY period DESC, id DESC", params))
    if not rows:
        raise ChecklistNotFound(
            "This client has no checklist"
            + (" for that template/period" if template_id or period else "")
            + ": create one with `monthlydocs generate`"
        )
    latest: dict[int, dict[str, Any]] = {}
    for row in rows:
        latest.setdefault(row["template_id"], row)
    if len(latest) == 1:
        return rows[0]
    current = [
        row
        for row in latest.values()
        if not row["completed_at"] and not row["archived_at"]
    ]
    if len(current) == 1:
        return current[0]
    slugs = dict(
        db.execute(
            "SELECT id, slug FROM templates WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(list(latest))],
        ).fetchall()
    )
    listed = sorted(
        f"{slugs.get(row['template_id'], row['template_name'])} {row['period']}"
        for row in current or latest.values()
    )
    raise AmbiguousChecklist(
        f"This client has several current checklists ({', '.join(listed)}): "
        "choose one with --template"
    )


def refresh_completion(
    db: Database, checklist_id: int, now: datetime, actor: str = "client"
) -> bool:
    """Set or clear ``completed_at`` from the items' states. Returns True if complete.

    Complete means every required item is received, approved or not applicable (for a
    checklist made only of optional items: every item is).
    """
    rows = items(db, checklist_id)
    required = [row for row in rows if not row["optional"]] or rows
    complete = bool(required) and all(row["state"] in DONE_STATES for row in required)
    checklist = get_checklist(db, checklist_id)
    if complete and not checklist["completed_at"]:
        db.execute(
            "UPDATE checklists SET completed_at = ? WHERE id = ? AND completed_at IS NULL",
            [iso(now), checklist_id],
        )
        record(
            db,
            Event.CHECKLIST_COMPLETED,
            now,
            actor=actor,
            subject_type="checklist",
            subject_id=checklist_id,
            client_id=checklist["client_id"],
        )
    elif not complete and checklist["completed_at"]:
        db.execute(
            "UPDATE checklists SET completed_at = NULL WHERE id = ?", [checklist_id]
        )
    return complete


# -- status -------------------------------------------------------------------------

_STATUS_SQL = """
SELECT c.id, c.client_id, cl.name AS client, cl.email, cl.phone, t.slug AS template,
       c.template_name, c.period, c.due_on, c.created_at, c.link_sent_at,
       c.first_opened_at, c.last_opened_at, c.open_count, c.completed_at,
       c.escalated_at, t.reminder_days, cl.reminders_paused_at,
       (SELECT max(r.step) FROM reminder_steps r WHERE r.checklist_id = c.id
           AND r.outcome != 'skipped') AS last_step,
       (SELECT group_concat(r.step) FROM reminder_steps r
           WHERE r.checklist_id = c.id) AS recorded_steps,
       sum(CASE WHEN i.optional = 0 THEN 1 ELSE 0 END) AS required,
       sum(CASE WHEN i.optional = 0 AND i.state IN ('received', 'approved',
           'not_applicable') THEN 1 ELSE 0 END) AS received,
       sum(CASE WHEN i.state IN ('received', 'approved', 'not_applicable')
           THEN 1 ELSE 0 END) AS handled,
       count(i.id) AS item_count
FROM checklists c
JOIN clients cl ON cl.id = c.client_id
JOIN templates t ON t.id = c.template_id
LEFT JOIN checklist_items i ON i.checklist_id = c.id
{where}
GROUP BY c.id
ORDER BY c.period DESC, t.slug, cl.name COLLATE NOCASE
"""


def state_of(row: dict[str, Any], today: date) -> str:
    """complete / overdue / partial / opened / not_opened, in that order of precedence."""
    if row["completed_at"]:
        return "complete"
    if row["due_on"] < today.isoformat():
        return "overdue"
    if row["handled"]:
        return "partial"
    if row["first_opened_at"]:
        return "opened"
    return "not_opened"


def status(
    db: Database,
    today: date,
    *,
    period: str | None = None,
    template_id: int | None = None,
    include_archived: bool = False,
) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Counts by state and one row per checklist."""
    where, params = [], []
    if period:
        where.append("c.period = ?")
        params.append(check_any_period(period))
    if template_id is not None:
        where.append("c.template_id = ?")
        params.append(template_id)
    if not include_archived:
        where.append("c.archived_at IS NULL")
    sql = _STATUS_SQL.format(where=("WHERE " + " AND ".join(where)) if where else "")
    counts = {state: 0 for state in STATES}
    rows = []
    for row in db.query(sql, params):
        row["state"] = state_of(row, today)
        counts[row["state"]] += 1
        rows.append(row)
    return counts, rows


def parse_ids(text: str) -> list[int]:
    return [int(value) for value in json.loads(text or "[]")]


def group_by_client(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["client_id"]].append(row)
    return grouped


def of_client(db: Database, client_id: int) -> list[dict[str, Any]]:
    """A client's checklists, newest period first."""
    return list(
        db.query(
            "SELECT * FROM checklists WHERE client_id = ? ORDER BY period DESC, id DESC",
            [client_id],
        )
    )


def remindable(db: Database, client_id: int) -> list[dict[str, Any]]:
    """A client's checklists that a reminder can be about: open, link already sent."""
    return [
        row
        for row in of_client(db, client_id)
        if not row["completed_at"] and not row["archived_at"] and row["link_sent_at"]
    ]


def labels(db: Database, ids: list[int]) -> dict[int, tuple[str, str]]:
    """Template name and period of each checklist id, for display."""
    return {
        row[0]: (row[1], row[2])
        for row in db.execute(
            "SELECT id, template_name, period FROM checklists"
            " WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        )
    }


def links_by_id(db: Database, base_url: str) -> dict[int, str]:
    """The portal link of every checklist (for the demo's printout)."""
    return {
        row[0]: links.link_for(base_url, row[1])
        for row in db.execute("SELECT id, token FROM checklists")
    }


def waiting_links(
    db: Database, now: datetime, exclude: Iterable[int] = ()
) -> tuple[int, datetime | None]:
    """Link emails that failed and wait for their next try after ``now`` (leaving out
    the message ids in ``exclude``): how many, and the earliest moment one may be tried
    again."""
    from .outbox import MAX_ATTEMPTS

    count, first = db.execute(
        "SELECT count(*), min(next_attempt_at) FROM messages WHERE kind = 'link'"
        " AND state = 'failed' AND attempts < ? AND next_attempt_at > ?"
        " AND id NOT IN (SELECT value FROM json_each(?))",
        [MAX_ATTEMPTS, iso(now), json.dumps(sorted(exclude))],
    ).fetchone()
    return count, parse_iso(first)
