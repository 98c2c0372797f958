"""Follow-ups: the rules, as pure functions of time and state, and the run that applies them.

A checklist's reminder steps come from ``[reminders] days`` (or its template's own list),
counted in calendar days in the firm's time zone from the day its link was first sent. A
run sends, per client, at most one message covering every checklist that has a step due,
and only the most recent due step of each: earlier ones missed by the run are recorded as
skipped. Each step is recorded once (the table's primary key is the guard), in the same
transaction as the message that announces it, so overlapping runs cannot both send it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from .config import Settings, parse_send_hours
from .db import write_transaction
from .events import Event, record
from .i18n import pick_language
from .timeutil import iso, parse_iso, utcnow

# Reasons a checklist or client gets no reminder now, shown by `remind --dry-run`.
COMPLETE = "complete"
NOT_SENT = "link never sent"
NOT_YET = "no step due yet"
DONE = "step already sent"
PAUSED = "reminders paused"
OUTSIDE_HOURS = "outside send hours"
WEEKEND = "weekend"
TOO_SOON = "reminded less than {hours} hours ago"
ARCHIVED = "archived"


@dataclass(frozen=True)
class ChecklistState:
    """What the rules need to know about one checklist."""

    checklist_id: int
    client_id: int
    days: tuple[int, ...]
    link_sent_on: date | None
    complete: bool
    recorded: frozenset[int]  # steps already sent or skipped


@dataclass(frozen=True)
class Decision:
    checklist_id: int
    client_id: int
    step: int | None  # the step to send now, if any
    skip: tuple[int, ...] = ()  # earlier steps to record as skipped
    reason: str = ""
    last: bool = False  # step is the final automatic one
    day: int | None = None  # the step's day number


def decide(state: ChecklistState, today: date) -> Decision:
    """Which step of one checklist is due on ``today`` (a local date)."""
    base = Decision(state.checklist_id, state.client_id, None)
    if state.complete:
        return _with(base, reason=COMPLETE)
    if state.link_sent_on is None:
        return _with(base, reason=NOT_SENT)
    elapsed = (today - state.link_sent_on).days
    due = [step for step, day in enumerate(state.days, 1) if day <= elapsed]
    if not due:
        return _with(base, reason=NOT_YET)
    latest = due[-1]
    if latest in state.recorded or any(step > latest for step in state.recorded):
        return _with(base, reason=DONE)
    # Steps before the latest recorded one are history, not missed runs.
    floor = max(state.recorded, default=0)
    skipped = tuple(step for step in due[:-1] if step > floor)
    return Decision(
        state.checklist_id,
        state.client_id,
        latest,
        skip=skipped,
        reason="due",
        last=latest == len(state.days),
        day=state.days[latest - 1],
    )


def _with(decision: Decision, **changes: Any) -> Decision:
    return Decision(**{**decision.__dict__, **changes})


def client_hold(
    local_now: datetime,
    *,
    send_hours: tuple[int, int],
    weekdays_only: bool,
    paused: bool,
    last_reminder_at: datetime | None,
    min_gap: timedelta,
) -> str | None:
    """Why a client must not be reminded at ``local_now`` (None: they may be)."""
    if paused:
        return PAUSED
    minute = local_now.hour * 60 + local_now.minute
    if not send_hours[0] <= minute < send_hours[1]:
        return OUTSIDE_HOURS
    if weekdays_only and local_now.weekday() >= 5:
        return WEEKEND
    if last_reminder_at is not None and local_now - last_reminder_at < min_gap:
        return TOO_SOON.format(hours=int(min_gap.total_seconds() // 3600))
    return None


def next_send_time(
    local_now: datetime, *, send_hours: tuple[int, int], weekdays_only: bool
) -> datetime | None:
    """None when a reminder may go at ``local_now`` (an aware local time); otherwise
    the first moment it may: the opening of the send hours, today or on the next day
    allowed (Monday to Friday with ``weekdays_only``)."""
    start, end = send_hours
    minute = local_now.hour * 60 + local_now.minute

    def open_on(day: date) -> bool:
        return not weekdays_only or day.weekday() < 5

    day = local_now.date()
    if start <= minute < end and open_on(day):
        return None
    if minute >= start:
        day += timedelta(days=1)
    while not open_on(day):
        day += timedelta(days=1)
    return datetime.combine(day, time(start // 60, start % 60), tzinfo=local_now.tzinfo)


# -- planning a run -----------------------------------------------------------------------


@dataclass
class ClientPlan:
    client: dict[str, Any]
    decisions: list[Decision]
    sms: bool = False

    @property
    def step(self) -> int:
        return max(d.step or 0 for d in self.decisions)

    @property
    def last(self) -> bool:
        return any(d.last for d in self.decisions)


@dataclass
class Plan:
    clients: list[ClientPlan] = field(default_factory=list)
    held: list[tuple[dict[str, Any], str]] = field(
        default_factory=list
    )  # (client, why)
    quiet: list[Decision] = field(default_factory=list)  # checklists with nothing due


_OPEN_SQL = """
SELECT c.id, c.client_id, c.link_sent_at, c.completed_at, t.reminder_days,
       (SELECT group_concat(step) FROM reminder_steps r WHERE r.checklist_id = c.id)
           AS recorded
FROM checklists c
JOIN templates t ON t.id = c.template_id
JOIN clients cl ON cl.id = c.client_id
WHERE c.completed_at IS NULL AND c.archived_at IS NULL AND cl.status = 'active'
{client_filter}
ORDER BY c.client_id, c.id
"""


def plan(
    db: Database, settings: Settings, now: datetime, client_id: int | None = None
) -> Plan:
    """Decide, for every open checklist, what a run at ``now`` would send."""
    zone = ZoneInfo(settings.firm.timezone)
    local_now = now.astimezone(zone)
    today = local_now.date()
    default_days = tuple(settings.reminders.days)
    by_client: dict[int, list[Decision]] = defaultdict(list)
    result = Plan()
    sql = _OPEN_SQL.format(client_filter="AND c.client_id = ?" if client_id else "")
    for row in db.execute(sql, [client_id] if client_id else []):
        checklist_id, owner, sent_at, completed_at, own_days, recorded = row
        sent = parse_iso(sent_at)
        state = ChecklistState(
            checklist_id=checklist_id,
            client_id=owner,
            days=tuple(json.loads(own_days)) if own_days else default_days,
            link_sent_on=sent.astimezone(zone).date() if sent else None,
            complete=completed_at is not None,
            recorded=frozenset(int(s) for s in recorded.split(","))
            if recorded
            else frozenset(),
        )
        decision = decide(state, today)
        if decision.step is None:
            result.quiet.append(decision)
        else:
            by_client[owner].append(decision)
    if not by_client:
        return result
    clients = _clients(db, list(by_client))
    last_sent = _last_reminders(db, list(by_client))
    hours = parse_send_hours(settings.reminders.send_hours)
    gap = timedelta(hours=settings.reminders.min_hours_between)
    sms_days = set(settings.reminders.sms_days)
    for owner, decisions in by_client.items():
        client = clients[owner]
        last = last_sent.get(owner)
        why = client_hold(
            local_now,
            send_hours=hours,
            weekdays_only=settings.reminders.weekdays_only,
            paused=client["reminders_paused_at"] is not None,
            last_reminder_at=last.astimezone(zone) if last else None,
            min_gap=gap,
        )
        if why:
            result.held.append((client, why))
            continue
        sms = (
            settings.sms.backend != "none"
            and bool(client["phone"])
            and any(d.day in sms_days for d in decisions)
        )
        result.clients.append(ClientPlan(client, decisions, sms))
    return result


def _clients(db: Database, ids: list[int]) -> dict[int, dict[str, Any]]:
    return {
        row["id"]: row
        for row in db.query(
            "SELECT * FROM clients WHERE id IN (SELECT value FROM json_each(?))",
            [json.dumps(ids)],
        )
    }


def _last_reminders(db: Database, ids: list[int]) -> dict[int, datetime]:
    """When each client was last reminded (the message queued, whatever its channel)."""
    return {
        client_id: parse_iso(stamp)
        for client_id, stamp in db.execute(
            "SELECT client_id, max(created_at) FROM messages WHERE kind = 'reminder'"
            " AND client_id IN (SELECT value FROM json_each(?)) GROUP BY client_id",
            [json.dumps(ids)],
        )
    }


# -- queueing ------------------------------------------------------------------------------


@dataclass
class QueueResult:
    plan: Plan
    reminded: int = 0  # clients who get a message
    steps: int = 0
    skipped: int = 0
    escalated: int = 0
    sms: int = 0


def queue(
    db: Database, settings: Settings, now: datetime, client_id: int | None = None
) -> QueueResult:
    """Plan and record this run's reminders with their messages, in one transaction.

    Planning happens inside the write lock, so a second run started at the same moment
    waits, then finds every step already recorded.
    """
    with write_transaction(db):
        result = QueueResult(plan(db, settings, now, client_id))
        for client_plan in result.plan.clients:
            _queue_client(db, settings, now, client_plan, result)
    return result


def _queue_client(
    db: Database,
    settings: Settings,
    now: datetime,
    client_plan: ClientPlan,
    result: QueueResult,
    outcome: str = "sent",
) -> None:
    """Record the plan's steps and queue its message (``outcome`` "manual": asked for
    by the firm, sent whatever the hour)."""
    client = client_plan.client
    stamp = iso(now)
    won = []
    for decision in client_plan.decisions:
        inserted = db.execute(
            "INSERT OR IGNORE INTO reminder_steps (checklist_id, step, outcome,"
            " decided_at) VALUES (?, ?, ?, ?)",
            [decision.checklist_id, decision.step, outcome, stamp],
        ).rowcount
        if not inserted:
            continue  # recorded by another run in the meantime
        won.append(decision)
        for step in decision.skip:
            result.skipped += db.execute(
                "INSERT OR IGNORE INTO reminder_steps (checklist_id, step, outcome,"
                " decided_at) VALUES (?, ?, 'skipped', ?)",
                [decision.checklist_id, step, stamp],
            ).rowcount
        if decision.last:
            result.escalated += db.execute(
                "UPDATE checklists SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL",
                [stamp, decision.checklist_id],
            ).rowcount
    if not won:
        return
    from .outbox import supersede

    supersede(db, client["id"], now)
    ids = sorted(d.checklist_id for d in won)
    language = pick_language(client["language"], settings.firm.default_language)
    key = ",".join(
        f"{d.checklist_id}.{d.step}" for d in sorted(won, key=lambda d: d.checklist_id)
    )
    channels = [("email", client["email"])]
    if client_plan.sms:
        channels.append(("sms", client["phone"]))
    for channel, recipient in channels:
        message_id = db.execute(
            "INSERT INTO messages (channel, client_id, recipient, kind, language,"
            " checklist_ids, dedupe_key, created_at, next_attempt_at, manual)"
            " VALUES (?, ?, ?, 'reminder', ?, ?, ?, ?, ?, ?)",
            [
                channel,
                client["id"],
                recipient,
                language,
                json.dumps(ids),
                f"reminder:{channel}:{key}",
                stamp,
                stamp,
                int(outcome == "manual"),
            ],
        ).lastrowid
        if channel == "email":
            db.conn.executemany(
                "UPDATE reminder_steps SET message_id = ? WHERE checklist_id = ?"
                " AND step = ?",
                [(message_id, d.checklist_id, d.step) for d in won],
            )
        else:
            result.sms += 1
    record(
        db,
        Event.REMINDER_QUEUED,
        now,
        subject_type="client",
        subject_id=client["id"],
        client_id=client["id"],
        data={
            "steps": {str(d.checklist_id): d.step for d in won},
            "sms": client_plan.sms,
        },
    )
    result.reminded += 1
    result.steps += len(won)


def queue_manual(
    db: Database,
    settings: Settings,
    now: datetime,
    client: dict[str, Any],
    checklist_ids: list[int],
) -> int:
    """A reminder the firm asks for now: the next step of each checklist, whatever the
    hour or the last reminder. It counts in the sequence: never past the last step, the
    last one says so and flags the checklist to call, and an SMS goes with it when that
    step's day is in ``sms_days``. Returns how many checklists it covers (0 when every
    step has been sent already)."""
    decisions = []
    with write_transaction(db):
        for checklist_id, (days, done) in _sequences(db, settings, checklist_ids):
            count = max(len(days), 1)  # with no automatic steps, one manual reminder
            step = max(done, default=0) + 1
            if step > count:
                continue  # the sequence is over: the checklist is on the list to call
            decisions.append(
                Decision(
                    checklist_id,
                    client["id"],
                    step,
                    reason="manual",
                    last=step == count,
                    day=days[step - 1] if step <= len(days) else None,
                )
            )
        if not decisions:
            return 0
        sms_days = set(settings.reminders.sms_days)
        sms = (
            settings.sms.backend != "none"
            and bool(client["phone"])
            and any(d.day in sms_days for d in decisions)
        )
        result = QueueResult(Plan())
        _queue_client(
            db,
            settings,
            now,
            ClientPlan(client, decisions, sms),
            result,
            outcome="manual",
        )
    return result.steps


def _sequences(
    db: Database, settings: Settings, checklist_ids: list[int]
) -> list[tuple[int, tuple[tuple[int, ...], set[int]]]]:
    """Each checklist's reminder days and the steps already recorded."""
    default = tuple(settings.reminders.days)
    found = []
    for checklist_id, own_days, recorded in db.execute(
        "SELECT c.id, t.reminder_days, (SELECT group_concat(step) FROM reminder_steps r"
        " WHERE r.checklist_id = c.id) FROM checklists c"
        " JOIN templates t ON t.id = c.template_id"
        " WHERE c.id IN (SELECT value FROM json_each(?)) ORDER BY c.id",
        [json.dumps(checklist_ids)],
    ):
        days = tuple(json.loads(own_days)) if own_days else default
        done = {int(step) for step in recorded.split(",")} if recorded else set()
        found.append((checklist_id, (days, done)))
    return found


# -- the whole run ---------------------------------------------------------------------------


@dataclass
class RunReport:
    queued: QueueResult
    notifications: int
    delivery: Any  # outbox.DeliveryReport


def run(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    client_id: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_message: Callable[[dict[str, Any], str | None], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> RunReport:
    """What `remind` and the daemon do: queue due reminders and notifications, then send
    everything due (including retries of earlier failures), only ``client_id``'s when
    given. ``now`` is the moment the rules apply at; ``clock`` the wall clock."""
    from . import notifications, outbox, webhooks

    queued = queue(db, settings, now, client_id)
    outbox.fault_point("queued")
    notified = 0 if client_id else notifications.queue_due(db, settings, now)
    delivery = outbox.deliver_all(
        db,
        settings,
        now,
        should_stop=should_stop,
        on_message=on_message,
        client_id=client_id,
        clock=clock,
    )
    webhooks.deliver_quietly(db, now, should_stop=should_stop)
    return RunReport(queued, notified, delivery)


def next_reminder_on(
    link_sent_at: str | None, days: list[int], recorded: set[int], timezone: str
) -> date | None:
    """The local date of the next step not yet recorded, for `status`."""
    sent = parse_iso(link_sent_at)
    if sent is None:
        return None
    start = sent.astimezone(ZoneInfo(timezone)).date()
    latest = max(recorded, default=0)
    for step, day in enumerate(days, 1):
        if step > latest:
            return start + timedelta(days=day)
    return None


def annotate(rows: list[dict[str, Any]], settings: Settings) -> list[dict[str, Any]]:
    """Add each status row's step count, next reminder date (none while the client's
    reminders are paused), pause and call flags."""
    default = settings.reminders.days
    for row in rows:
        days = json.loads(row["reminder_days"]) if row.get("reminder_days") else default
        recorded = {int(s) for s in (row.get("recorded_steps") or "").split(",") if s}
        row["steps"] = len(days)
        row["to_call"] = bool(row.get("escalated_at")) and not row["completed_at"]
        row["paused"] = bool(row.get("reminders_paused_at"))
        row["next_reminder_on"] = (
            None
            if row["completed_at"] or row["paused"]
            else next_reminder_on(
                row["link_sent_at"], days, recorded, settings.firm.timezone
            )
        )
    return rows
