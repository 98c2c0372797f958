"""Follow-ups: the rules as a table, then whole runs against a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import html
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import SmtpSink, example_wording, use_smtp
from monthlydocs import checklists, clients, notifications, outbox, reminders, templates
from monthlydocs.config import load_settings
from monthlydocs.db import open_db
from monthlydocs.events import Event
from monthlydocs.i18n import format_day, period_label, translations
from monthlydocs.links import link_for
from monthlydocs.reminders import ChecklistState, client_hold, decide, next_send_time
from monthlydocs.timeutil import iso
from monthlydocs.workspace import create_workspace, example_templates_path, set_value

PARIS = ZoneInfo("Europe/Paris")
LANGUAGES = ["en", "fr", "de", "es", "id"]

SENT_ON = date(2026, 12, 1)
# Link sent on 1 December 2026 (a Tuesday) at 09:00 Paris time.
LINK_SENT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def local(day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment ``day`` days after the link was sent, at a Paris wall-clock time."""
    moment = datetime(2026, 12, 1, hour, minute, tzinfo=PARIS)
    return (moment + timedelta(days=day)).astimezone(UTC)


def as_of(moment: datetime) -> str:
    """``moment`` as `remind --as-of` takes it (with its offset)."""
    return moment.isoformat()


def configure(config: Path, section: str, key: str, value) -> None:
    config.write_text(
        set_value(config.read_text(encoding="utf-8"), section, key, value)
    )


# -- the rules, as a table -------------------------------------------------------------

# For days [3, 5, 7]: (steps already recorded) -> {day: (step to send, steps skipped)}
EXPECTED = {
    (): {
        0: None,
        1: None,
        2: None,
        3: (1, ()),
        4: (1, ()),
        5: (2, (1,)),
        6: (2, (1,)),
        7: (3, (1, 2)),
        8: (3, (1, 2)),
        9: (3, (1, 2)),
        10: (3, (1, 2)),
    },
    (1,): {
        0: None,
        1: None,
        2: None,
        3: None,
        4: None,
        5: (2, ()),
        6: (2, ()),
        7: (3, (2,)),
        8: (3, (2,)),
        9: (3, (2,)),
        10: (3, (2,)),
    },
    (1, 2): {**{d: None for d in range(7)}, **{d: (3, ()) for d in range(7, 11)}},
    (1, 2, 3): {d: None for d in range(11)},
    (2,): {**{d: None for d in range(7)}, **{d: (3, ()) for d in range(7, 11)}},
}


@pytest.mark.parametrize("recorded", list(EXPECTED))
@pytest.mark.parametrize("day", range(11))
@pytest.mark.parametrize("complete", [False, True])
def test_decide_table(recorded, day, complete):
    state = ChecklistState(1, 1, (3, 5, 7), SENT_ON, complete, frozenset(recorded))
    decision = decide(state, SENT_ON + timedelta(days=day))
    expected = None if complete else EXPECTED[recorded][day]
    if expected is None:
        assert decision.step is None
        if complete:
            assert decision.reason == reminders.COMPLETE
        else:
            assert decision.reason in (reminders.NOT_YET, reminders.DONE)
    else:
        assert (decision.step, decision.skip) == expected
        assert decision.last == (expected[0] == 3)


def test_no_reminder_before_the_link_is_sent():
    state = ChecklistState(1, 1, (3, 5, 7), None, False, frozenset())
    assert decide(state, SENT_ON + timedelta(days=9)).reason == reminders.NOT_SENT


HOURS = (8 * 60, 19 * 60)


@pytest.mark.parametrize(
    "moment, weekdays_only, paused, last_hours_ago, held",
    [
        (datetime(2026, 12, 4, 7, 59), False, False, None, reminders.OUTSIDE_HOURS),
        (datetime(2026, 12, 4, 8, 0), False, False, None, None),
        (datetime(2026, 12, 4, 18, 59), False, False, None, None),
        (datetime(2026, 12, 4, 19, 0), False, False, None, reminders.OUTSIDE_HOURS),
        (datetime(2026, 12, 4, 3, 0), False, False, None, reminders.OUTSIDE_HOURS),
        (datetime(2026, 12, 5, 10, 0), True, False, None, reminders.WEEKEND),
        (datetime(2026, 12, 5, 10, 0), False, False, None, None),
        (datetime(2026, 12, 7, 10, 0), True, False, None, None),
        (datetime(2026, 12, 4, 10, 0), False, True, None, reminders.PAUSED),
        (
            datetime(2026, 12, 4, 10, 0),
            False,
            False,
            19,
            "reminded less than 20 hours ago",
        ),
        (datetime(2026, 12, 4, 10, 0), False, False, 21, None),
    ],
)
def test_client_hold_table(moment, weekdays_only, paused, last_hours_ago, held):
    last = moment - timedelta(hours=last_hours_ago) if last_hours_ago else None
    assert (
        client_hold(
            moment,
            send_hours=HOURS,
            weekdays_only=weekdays_only,
            paused=paused,
            last_reminder_at=last,
            min_gap=timedelta(hours=20),
        )
        == held
    )


@pytest.mark.parametrize(
    "moment, weekdays_only, opens",
    [
        # Friday 4 December 2026, send hours 08:00-19:00.
        (datetime(2026, 12, 4, 10, 0), False, None),
        (datetime(2026, 12, 4, 7, 59), False, datetime(2026, 12, 4, 8, 0)),
        (datetime(2026, 12, 4, 19, 0), False, datetime(2026, 12, 5, 8, 0)),
        (datetime(2026, 12, 4, 23, 30), True, datetime(2026, 12, 7, 8, 0)),
        (datetime(2026, 12, 5, 10, 0), True, datetime(2026, 12, 7, 8, 0)),
        (datetime(2026, 12, 5, 10, 0), False, None),
        (datetime(2026, 12, 6, 3, 0), True, datetime(2026, 12, 7, 8, 0)),
    ],
)
def test_next_send_time_table(moment, weekdays_only, opens):
    found = next_send_time(
        moment.replace(tzinfo=PARIS), send_hours=HOURS, weekdays_only=weekdays_only
    )
    assert found == (opens.replace(tzinfo=PARIS) if opens else None)


# -- the rules over a database, as a cross-product -------------------------------------

RULE_DAYS = (3, 5, 7)  # the default [reminders] days


def expected_now(day: int, missed: bool, inside: bool) -> tuple[int | None, set[int]]:
    """(step sent by the run at ``day``, steps it records as skipped) for one open
    checklist, by the rules as the issue states them. Without missed runs, a run at
    10:00 every day before ``day`` sent each step on its day."""
    due = [step for step, at in enumerate(RULE_DAYS, 1) if at <= day]
    if not due or not inside:
        return None, set()
    if missed:  # nothing ran since the link was sent: catch up
        return due[-1], set(due[:-1])
    return (due[-1], set()) if RULE_DAYS[due[-1] - 1] == day else (None, set())


@pytest.fixture(scope="module")
def rules_workspace(tmp_path_factory):
    """One client with two checklists (monthly, payroll), links sent on 1 December at
    09:00 Paris time; each case starts from a copy of this database."""
    folder = tmp_path_factory.mktemp("rules")
    settings = create_workspace(folder / "ws", {"firm": {"name": "Cabinet Martin"}})
    db = open_db(settings.database_path)
    templates.load_file(db, example_templates_path(), LINK_SENT)
    client_id = clients.add_client(
        db, clients.ClientInput("Client", "client@example.com"), LINK_SENT, region="FR"
    )
    for slug in ("monthly", "payroll"):
        template = templates.get_template(db, slug)
        clients.assign(db, [client_id], template["id"], LINK_SENT)
        checklists.generate(
            db, [checklists.Request(template)], LINK_SENT, SENT_ON, send=False
        )
    db.execute("UPDATE checklists SET link_sent_at = ?", [iso(LINK_SENT)])
    db.conn.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return settings


@pytest.mark.parametrize("lists", [1, 2])
@pytest.mark.parametrize("missed", [False, True], ids=["every-day", "catch-up"])
@pytest.mark.parametrize("inside", [True, False], ids=["10h00", "22h00"])
@pytest.mark.parametrize("completion", ["none", "partial", "complete"])
@pytest.mark.parametrize("day", range(11))
def test_rules_cross_product(
    rules_workspace, tmp_path, day, completion, inside, missed, lists
):
    settings = rules_workspace
    copy = tmp_path / "case.db"
    shutil.copy(settings.database_path, copy)
    db = open_db(copy)
    ids = [row[0] for row in db.execute("SELECT id FROM checklists ORDER BY id")]
    if lists == 1:
        db.execute("DELETE FROM checklists WHERE id = ?", [ids.pop()])
    done = set()
    if completion == "complete":
        done = set(ids)
    elif completion == "partial":  # something received; with two lists, one complete
        db.execute(
            "UPDATE checklist_items SET state = 'received' WHERE id = (SELECT min(id)"
            " FROM checklist_items WHERE checklist_id = ?)",
            [ids[-1]],
        )
        done = set(ids[:-1])
    for checklist_id in done:
        db.execute(
            "UPDATE checklists SET completed_at = ? WHERE id = ?",
            [iso(LINK_SENT + timedelta(hours=2)), checklist_id],
        )
    db.conn.commit()
    if not missed:
        for earlier in range(day):
            reminders.queue(db, settings, local(earlier, 10))
    moment = local(day, 10 if inside else 22)
    open_ids = [i for i in ids if i not in done]
    step, skipped = expected_now(day, missed, inside)
    expected = {i: (step, skipped) for i in open_ids} if step else {}

    planned = reminders.plan(db, settings, moment)
    assert {
        d.checklist_id: (d.step, set(d.skip))
        for client_plan in planned.clients
        for d in client_plan.decisions
    } == expected
    pending = expected_now(day, missed, True)[0] is not None and open_ids
    assert [why for _client, why in planned.held] == (
        [reminders.OUTSIDE_HOURS] if pending and not inside else []
    )

    queued = reminders.queue(db, settings, moment)
    now_rows = db.execute(
        "SELECT checklist_id, step, outcome FROM reminder_steps WHERE decided_at = ?",
        [iso(moment)],
    ).fetchall()
    assert {(c, s) for c, s, outcome in now_rows if outcome == "sent"} == {
        (c, s) for c, (s, _skip) in expected.items()
    }
    assert {(c, s) for c, s, outcome in now_rows if outcome == "skipped"} == {
        (c, s) for c, (_step, skip) in expected.items() for s in skip
    }
    messages = db.execute(
        "SELECT checklist_ids FROM messages WHERE kind = 'reminder' AND created_at = ?",
        [iso(moment)],
    ).fetchall()
    # One message for the client, covering every checklist with a step now.
    assert [json.loads(m[0]) for m in messages] == (
        [sorted(expected)] if expected else []
    )
    assert queued.reminded == (1 if expected else 0)
    assert queued.escalated == sum(1 for s, _ in expected.values() if s == 3)
    db.close()


# -- runs against a database -------------------------------------------------------------


@pytest.fixture
def firm(workspace):
    """A workspace with the example templates and a `seed` helper; links sent 1 Dec."""
    settings = load_settings(workspace, environ={})
    db = open_db(settings.database_path)
    templates.load_file(db, example_templates_path(), LINK_SENT)

    class Firm:
        pass

    firm = Firm()
    firm.settings, firm.db, firm.config = settings, db, workspace

    def seed(
        count=1, languages=("en",), slugs=("monthly",), sent_at=LINK_SENT, phone=None
    ):
        ids = []
        for number in range(count):
            client_id = clients.add_client(
                db,
                clients.ClientInput(
                    f"Client {len(ids)}-{number}",
                    f"c{number}-{os.urandom(3).hex()}@example.com",
                    phone=phone,
                    language=languages[number % len(languages)],
                ),
                LINK_SENT,
                region="FR",
            )
            ids.append(client_id)
        for slug in slugs:
            template = templates.get_template(db, slug)
            clients.assign(db, ids, template["id"], LINK_SENT)
            checklists.generate(
                db,
                [checklists.Request(template)],
                LINK_SENT,
                SENT_ON,
                client_ids=ids,
                send=False,
            )
        db.execute(
            "UPDATE checklists SET link_sent_at = ? WHERE client_id IN"
            " (SELECT value FROM json_each(?))",
            [sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"), json.dumps(ids)],
        )
        db.conn.commit()
        return ids

    firm.seed = seed

    def run(moment):
        return reminders.run(db, load_settings(workspace, environ={}), moment)

    firm.run = run
    yield firm
    db.close()


def reminder_rows(db):
    return db.execute(
        "SELECT client_id, checklist_ids, channel FROM messages WHERE kind = 'reminder'"
        " ORDER BY id"
    ).fetchall()


def steps(db, outcome=None):
    sql = "SELECT checklist_id, step, outcome FROM reminder_steps"
    return db.execute(sql + " ORDER BY checklist_id, step").fetchall()


def test_a_sequence_of_runs_sends_each_step_once(firm):
    [client_id] = firm.seed()
    for day in range(0, 11):
        for hour in (7, 10, 15, 21):
            firm.run(local(day, hour))
    rows = reminder_rows(firm.db)
    assert len(rows) == 3
    assert [s[1:] for s in steps(firm.db)] == [(1, "sent"), (2, "sent"), (3, "sent")]
    sent = [
        r[0]
        for r in firm.db.execute(
            "SELECT created_at FROM messages WHERE kind = 'reminder' ORDER BY id"
        )
    ]
    assert [s[:10] for s in sent] == ["2026-12-04", "2026-12-06", "2026-12-08"]
    assert firm.db.execute("SELECT escalated_at FROM checklists").fetchone()[0]


def test_missed_runs_send_only_the_latest_step(firm):
    firm.seed()
    report = firm.run(local(8))
    assert (report.queued.steps, report.queued.skipped, report.queued.escalated) == (
        1,
        2,
        1,
    )
    assert [s[1:] for s in steps(firm.db)] == [
        (1, "skipped"),
        (2, "skipped"),
        (3, "sent"),
    ]
    assert firm.run(local(9)).queued.steps == 0


def test_complete_checklists_are_not_reminded(firm):
    [client_id] = firm.seed()
    firm.db.execute("UPDATE checklists SET completed_at = '2026-12-03T10:00:00Z'")
    firm.db.conn.commit()
    assert firm.run(local(3)).queued.steps == 0


def test_several_checklists_make_one_message(firm, smtp_server):
    use_smtp(firm.config, smtp_server.port)
    firm.seed(slugs=("monthly", "payroll"))
    report = firm.run(local(3))
    assert report.queued.reminded == 1 and report.queued.steps == 2
    assert len(smtp_server.messages) == 1
    plain = smtp_server.parsed()[0].get_body("plain").get_content()
    assert "Monthly bookkeeping" in plain and "Payroll" in plain


def test_twenty_hours_between_reminders(firm):
    firm.seed(slugs=("monthly",), sent_at=LINK_SENT)
    firm.seed(slugs=("payroll",), sent_at=LINK_SENT + timedelta(days=1))
    # Put both checklists on the first client.
    first = firm.db.execute("SELECT min(client_id) FROM checklists").fetchone()[0]
    firm.db.execute("UPDATE checklists SET client_id = ?", [first])
    firm.db.conn.commit()
    assert firm.run(local(3, 18)).queued.steps == 1  # monthly, day 3
    held = firm.run(local(4, 9))  # payroll's day 3, but only 15 hours later
    assert held.queued.steps == 0
    assert held.queued.plan.held[0][1] == "reminded less than 20 hours ago"
    assert firm.run(local(4, 15)).queued.steps == 1


def test_pause_and_resume(firm, cli):
    [client_id] = firm.seed()
    assert "Reminders paused" in cli("client", "pause", str(client_id)).stdout
    assert firm.run(local(3)).queued.plan.held[0][1] == reminders.PAUSED
    cli("client", "resume", str(client_id))
    assert firm.run(local(3)).queued.steps == 1


def test_template_days_override(firm):
    firm.db.execute("UPDATE templates SET reminder_days = '[2]' WHERE slug = 'monthly'")
    firm.db.conn.commit()
    firm.seed()
    assert firm.run(local(2)).queued.escalated == 1


def test_reminder_content_lists_received_missing_and_again(firm, smtp_server):
    use_smtp(firm.config, smtp_server.port)
    [client_id] = firm.seed()
    items = {
        r[1]: r[0] for r in firm.db.execute("SELECT id, name FROM checklist_items")
    }
    firm.db.execute(
        "UPDATE checklist_items SET state = 'received' WHERE id = ?",
        [items["Bank statements"]],
    )
    firm.db.execute(
        "UPDATE checklist_items SET state = 'rejected', note = ? WHERE id = ?",
        ["Page 2 is missing", items["Sales invoices"]],
    )
    firm.db.conn.commit()
    firm.run(local(9))
    [message] = smtp_server.parsed()
    assert message["Subject"] == "Last reminder: your documents for December 2026"
    plain = message.get_body("plain").get_content()
    html = message.get_body("html").get_content()
    for text in (plain, html):
        assert "Page 2 is missing" in text
        assert "Supplier invoices" in text
        assert "Every bill you received" in text
        assert "last automatic reminder" in text
        assert "Was due on December 10, 2026" not in text  # not yet overdue on the 10th
    received = plain.split("Already received, thank you:")[1]
    assert "Bank statements" in received
    missing = plain.split("Still missing:")[1].split("Already received")[0]
    assert "Bank statements" not in missing
    assert "Due by December 10, 2026" in plain


def test_overdue_wording_after_the_due_date(firm, smtp_server):
    use_smtp(firm.config, smtp_server.port)
    firm.seed()
    firm.db.execute("UPDATE checklists SET due_on = '2026-12-05'")
    firm.db.conn.commit()
    firm.run(local(5))
    [message] = smtp_server.parsed()
    assert message["Subject"].startswith("Overdue:")
    assert "Was due on December 5, 2026" in message.get_body("plain").get_content()


SUBJECTS = [
    "Reminder: your documents for %(what)s",
    "Second reminder: your documents for %(what)s",
    "Third reminder: your documents for %(what)s",
    "Reminder %(step)d: your documents for %(what)s",
    "Last reminder: your documents for %(what)s",
]


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_subject_per_step(firm, smtp_server, language):
    """Five steps, one a day: each its own subject, in the client's language."""
    use_smtp(firm.config, smtp_server.port)
    firm.db.execute(
        "UPDATE templates SET reminder_days = '[1, 2, 3, 4, 5]' WHERE slug = 'monthly'"
    )
    firm.db.conn.commit()
    firm.seed(languages=(language,))
    for day in range(1, 6):
        firm.run(local(day))
    catalog = translations(language)
    what = period_label("2026-12", language)
    expected = [
        catalog.gettext(subject) % {"what": what, "step": 4} for subject in SUBJECTS
    ]
    assert [m["Subject"] for m in smtp_server.parsed()] == expected
    if language == "en":
        assert expected[3] == "Reminder 4: your documents for December 2026"
    else:  # translated, not left in English
        assert all(catalog.gettext(subject) != subject for subject in SUBJECTS)


@pytest.mark.parametrize(
    "language, subject",
    [
        ("fr", "Rappel"),
        ("de", "Erinnerung"),
        ("es", "Recordatorio"),
        ("id", "Pengingat"),
    ],
)
def test_reminders_in_the_clients_language(firm, smtp_server, language, subject):
    use_smtp(firm.config, smtp_server.port)
    firm.seed(languages=(language,))
    firm.run(local(3))
    [message] = smtp_server.parsed()
    assert message["Content-Language"] == language
    assert message["Subject"].startswith(subject), message["Subject"]
    assert "still missing" not in message.get_body("plain").get_content()


def test_dry_run_changes_nothing(firm, cli):
    firm.seed(count=2)
    result = cli("remind", "--dry-run", "--as-of", "2026-12-04T10:00")
    assert result.exit_code == 0, result.output
    assert "2 clients would be reminded" in result.stdout
    assert "Monthly bookkeeping 2026-12" in result.stdout
    assert steps(firm.db) == [] and reminder_rows(firm.db) == []
    held = cli("remind", "--dry-run", "--as-of", "2026-12-04T22:00").stdout
    assert "outside send hours" in held


def test_one_client_is_counted_in_the_singular(firm, cli):
    firm.seed()
    dry = cli("remind", "--dry-run", "--as-of", "2026-12-04T10:00").stdout
    assert "1 client would be reminded; 0 queued or failed messages" in dry
    done = cli("remind", "--as-of", "2026-12-04T10:00").stdout
    assert "Reminded 1 client (1 step, 0 missed steps skipped" in done


def test_remind_command_and_status(firm, cli):
    firm.seed(count=2)
    result = cli("remind", "--as-of", "2026-12-08T10:00")
    assert result.exit_code == 0, result.output
    assert "Reminded 2 clients (2 steps, 4 missed steps skipped, 2 now to call" in (
        result.stdout
    )
    data = json.loads(cli("status", "--json").stdout)
    assert data["counts"]["to_call"] == 2
    row = data["checklists"][0]
    assert row["last_step"] == 3 and row["steps"] == 3 and row["to_call"] is True
    table = cli("status").stdout
    assert "3/3" in table and "call" in table


def test_next_reminder_date_in_status(firm, cli):
    firm.seed()
    firm.run(local(3))
    row = json.loads(cli("status", "--json").stdout)["checklists"][0]
    assert row["next_reminder_on"] == "2026-12-06"
    assert row["last_step"] == 1


def test_status_shows_a_paused_client_without_a_next_reminder(firm, cli):
    [client_id] = firm.seed()
    firm.run(local(3))
    assert cli("client", "pause", str(client_id)).exit_code == 0
    row = json.loads(cli("status", "--json").stdout)["checklists"][0]
    assert row["paused"] is True and row["next_reminder_on"] is None
    assert "paused" in cli("status").stdout
    assert cli("client", "resume", str(client_id)).exit_code == 0
    row = json.loads(cli("status", "--json").stdout)["checklists"][0]
    assert row["paused"] is False and row["next_reminder_on"] == "2026-12-06"


def test_bad_as_of_is_one_line(firm, cli):
    result = cli("remind", "--as-of", "next tuesday")
    assert result.exit_code != 0
    assert (
        "is not a date and time like 2026-12-06T10:00" in result.output + result.stderr
    )


def test_send_now_counts_in_the_sequence(firm, cli):
    [client_id] = firm.seed()
    result = cli("send", str(client_id))
    assert result.exit_code == 0, result.output
    assert [s[1:] for s in steps(firm.db)] == [(1, "manual")]
    assert firm.run(local(3)).queued.steps == 0  # step 1 is done already
    assert firm.run(local(5)).queued.steps == 1


def test_failed_links_are_retried_by_remind(firm, cli, clock):
    template = templates.get_template(firm.db, "payroll")
    client_id = clients.add_client(
        firm.db, clients.ClientInput("A", "a@example.com"), LINK_SENT, region="FR"
    )
    clients.assign(firm.db, [client_id], template["id"], LINK_SENT)
    down = SmtpSink()
    use_smtp(firm.config, down.port)
    down.down()
    clock.set(local(0, 9))
    failed = cli("generate", "--template", "payroll", "--period", "2026-12")
    assert failed.exit_code == 2
    sink = SmtpSink()
    try:
        use_smtp(firm.config, sink.port)
        clock.advance(hours=1)
        result = cli("remind")
        assert result.exit_code == 0, result.output
        [message] = sink.parsed()
        assert message["Subject"].startswith("Documents for December 2026")
        assert (
            firm.db.execute(
                "SELECT count(*) FROM checklists WHERE link_sent_at IS NULL"
            ).fetchone()[0]
            == 0
        )
    finally:
        sink.down()


def test_refused_and_dropped_connections_are_recorded_then_retried(firm, cli):
    firm.seed(count=4)
    sink = SmtpSink()
    use_smtp(firm.config, sink.port)
    sink.refuse = "c1-"
    sink.drop_after = 2  # the server hangs up after two messages
    try:
        result = cli("remind", "--as-of", "2026-12-04T10:00")
        assert result.exit_code == 2
        assert "550" in result.stderr
        assert len(sink.messages) == 3  # the dropped connection was reopened
        failed = outbox.failed_messages(firm.db)
        assert [m["last_error"][:20] for m in failed] == ["Address refused by t"]
    finally:
        sink.down()


class FlakySink(SmtpSink):
    """An SMTP server that says "try again later" (451) to some addresses and hangs up
    during DATA for others, until told to behave."""

    def __init__(self):
        super().__init__()
        self.later: str | None = None  # 451 at RCPT for addresses containing this
        self.hang_up: str | None = None  # close the connection during DATA for these

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.later and self.later in address:
            return "451 4.7.1 Greylisted, try again later"
        return await super().handle_RCPT(
            server, session, envelope, address, rcpt_options
        )

    async def handle_DATA(self, server, session, envelope):
        if self.hang_up and any(self.hang_up in r for r in envelope.rcpt_tos):
            server.transport.close()
            return "421 closing"
        return await super().handle_DATA(server, session, envelope)


def test_transient_refusals_and_hang_ups_are_retried_and_sent_once(firm, cli):
    ids = firm.seed(count=4)
    address = {
        row[0]: row[1] for row in firm.db.execute("SELECT id, email FROM clients")
    }
    sink = FlakySink()
    use_smtp(firm.config, sink.port)
    sink.later = address[ids[1]]  # 451 at RCPT: greylisting
    sink.hang_up = address[ids[2]]  # connection dropped during DATA, twice
    sink.refuse = address[ids[3]]  # 550: for good
    try:
        first = cli("remind", "--as-of", "2026-12-04T10:00")
        assert first.exit_code == 2
        assert [envelope[1] for envelope in sink.envelopes] == [[address[ids[0]]]]
        rows = {
            row[0]: row[1:]
            for row in firm.db.execute(
                "SELECT client_id, state, attempts, last_error FROM messages"
            )
        }
        assert rows[ids[0]][:2] == ("sent", 1)
        assert rows[ids[1]][:2] == ("failed", 1) and "451" in rows[ids[1]][2]
        assert rows[ids[2]][:2] == ("failed", 1)
        assert "dropped" in rows[ids[2]][2]
        assert rows[ids[3]][:2] == ("failed", outbox.MAX_ATTEMPTS)

        sink.later = sink.hang_up = None  # the server is fine again
        second = cli("remind", "--as-of", "2026-12-04T10:15")
        assert second.exit_code == 0, second.output
        received = [envelope[1][0] for envelope in sink.envelopes]
        assert sorted(received) == sorted(address[i] for i in ids[:3])
        third = cli("remind", "--as-of", "2026-12-04T12:00")
        assert third.exit_code == 0
        assert len(sink.envelopes) == 3  # each sent exactly once; the 550 never again
    finally:
        sink.down()


def test_an_unreachable_server_is_tried_once_per_run(firm, cli):
    """A server that accepts the connection and never answers: the run waits for the
    timeout once, not once per message, and leaves every message for the next run."""
    firm.seed(count=5)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    use_smtp(firm.config, listener.getsockname()[1])
    configure(firm.config, "email", "timeout", 1)
    try:
        result = cli("remind", "--as-of", "2026-12-04T10:00")
        listener.setblocking(False)
        connections = 0
        while True:
            try:
                listener.accept()[0].close()
            except BlockingIOError:
                break
            connections += 1
    finally:
        listener.close()
    assert connections == 1
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: SMTP server 127.0.0.1") and "timed out" in line
    assert line.endswith(
        "sending by email stopped there, 5 messages wait for the next run."
    )
    rows = firm.db.execute(
        "SELECT state, attempts, last_error IS NOT NULL FROM messages ORDER BY id"
    ).fetchall()
    assert rows == [("failed", 0, 1)] + [("pending", 0, 0)] * 4
    # The next run, with the server back, sends them all.
    sink = SmtpSink()
    try:
        use_smtp(firm.config, sink.port)
        assert cli("remind", "--as-of", "2026-12-04T10:15").exit_code == 0
        assert len(sink.messages) == 5
    finally:
        sink.down()


def test_retries_follow_the_rules_of_the_moment_they_are_sent(firm, cli):
    """SMTP down at 10:00 leaves reminders queued; then one client completes, one is
    paused. A run at 23:30 sends nothing: the first two are dropped with their
    reason, the third waits for 08:00."""
    ids = firm.seed(count=3)
    down = SmtpSink()
    use_smtp(firm.config, down.port)
    down.down()
    assert cli("remind", "--as-of", "2026-12-04T10:00").exit_code == 2
    firm.db.execute(
        "UPDATE checklists SET completed_at = ? WHERE client_id = ?",
        [iso(local(4, 12)), ids[0]],
    )
    firm.db.conn.commit()
    assert cli("client", "pause", str(ids[1])).exit_code == 0
    sink = SmtpSink()
    try:
        use_smtp(firm.config, sink.port)
        night = cli("remind", "--as-of", "2026-12-07T23:30")
        assert night.exit_code == 0, night.output
        assert "dropped 2 (complete, paused or archived), 1 held until" in night.stdout
        assert sink.messages == []
        rows = {
            row[0]: row[1:]
            for row in firm.db.execute(
                "SELECT client_id, state, drop_reason, not_before FROM messages"
            )
        }
        assert rows[ids[0]] == ("dropped", outbox.DROP_COMPLETE, None)
        assert rows[ids[1]] == ("dropped", outbox.DROP_PAUSED, None)
        # Held until the send hours open: 08:00 in Paris on Tuesday 8 December.
        assert rows[ids[2]] == ("pending", None, "2026-12-08T07:00:00Z")
        dropped = firm.db.execute(
            "SELECT client_id, data FROM events WHERE action = ? ORDER BY id",
            [str(Event.MESSAGE_DROPPED)],
        ).fetchall()
        assert [(c, json.loads(d)["reason"]) for c, d in dropped] == [
            (ids[0], outbox.DROP_COMPLETE),
            (ids[1], outbox.DROP_PAUSED),
        ]
        # The paused client's step is not counted as sent.
        outcomes = firm.db.execute(
            "SELECT outcome FROM reminder_steps r JOIN checklists c"
            " ON c.id = r.checklist_id WHERE c.client_id = ?",
            [ids[1]],
        ).fetchall()
        assert outcomes == [("skipped",)]
        assert cli("remind", "--as-of", "2026-12-08T07:59").exit_code == 0
        assert sink.messages == []
        # At 08:00 the third client's rules are applied again: its step 3 is due, and
        # that message takes the place of the old one: one email, not two.
        assert cli("remind", "--as-of", "2026-12-08T08:00").exit_code == 0
        [message] = sink.parsed()
        assert message["Subject"].startswith("Last reminder")
        [(state, reason)] = firm.db.execute(
            "SELECT state, drop_reason FROM messages WHERE client_id = ? AND id ="
            " (SELECT min(id) FROM messages WHERE client_id = ?)",
            [ids[2], ids[2]],
        ).fetchall()
        assert (state, reason) == ("dropped", outbox.DROP_SUPERSEDED)
    finally:
        sink.down()


def test_a_held_reminder_goes_when_the_send_hours_open(firm):
    configure(firm.config, "reminders", "weekdays_only", True)
    settings = load_settings(firm.config, environ={})
    firm.seed()
    reminders.queue(firm.db, settings, local(3))  # Friday 4 December, 10:00
    friday_night, saturday = local(3, 23, 30), local(4, 10)
    assert outbox.deliver_all(firm.db, settings, friday_night).deferred == 1
    assert outbox.deliver_all(firm.db, settings, saturday).sent == 0
    [[not_before]] = firm.db.execute("SELECT not_before FROM messages").fetchall()
    assert not_before == iso(local(6, 8))  # Monday 08:00 in Paris
    assert outbox.deliver_all(firm.db, settings, local(6, 7, 59)).sent == 0
    assert outbox.deliver_all(firm.db, settings, local(6, 8)).sent == 1


def test_links_ignore_send_hours_but_not_archiving(firm):
    """A link email goes when generate runs, at any hour; not to a client archived
    before it left."""
    ids = [
        clients.add_client(
            firm.db,
            clients.ClientInput(f"Client {n}", f"new{n}@example.com"),
            LINK_SENT,
            region="FR",
        )
        for n in range(3)
    ]
    template = templates.get_template(firm.db, "monthly")
    clients.assign(firm.db, ids, template["id"], LINK_SENT)
    night = local(3, 23, 30)
    checklists.generate(
        firm.db, [checklists.Request(template)], night, SENT_ON, client_ids=ids
    )
    clients.archive_client(firm.db, ids[2], night)
    report = outbox.deliver_all(firm.db, firm.settings, night)
    assert (report.sent, report.dropped, report.deferred, report.failed) == (2, 1, 0, 0)
    states = dict(firm.db.execute("SELECT client_id, state FROM messages"))
    assert states == {ids[0]: "sent", ids[1]: "sent", ids[2]: "dropped"}


def test_remind_and_send_for_one_client_send_only_theirs(firm, cli, clock, smtp_server):
    ids = firm.seed(count=3)
    use_smtp(firm.config, smtp_server.port)
    reminders.queue(firm.db, firm.settings, local(3))  # queued for all three
    address = dict(firm.db.execute("SELECT id, email FROM clients"))
    result = cli("remind", "--client", str(ids[0]), "--as-of", as_of(local(3, 11)))
    assert result.exit_code == 0, result.output
    assert [e[1] for e in smtp_server.envelopes] == [[address[ids[0]]]]
    clock.set(local(3, 12))
    assert cli("send", str(ids[1])).exit_code == 0
    assert [e[1] for e in smtp_server.envelopes] == [
        [address[ids[0]]],
        [address[ids[1]]],
    ]
    [[state]] = firm.db.execute(
        "SELECT state FROM messages WHERE client_id = ?", [ids[2]]
    ).fetchall()
    assert state == "pending"


def test_manual_sends_stop_at_the_last_step_and_escalate(firm, cli, clock):
    configure(firm.config, "sms", "backend", "file")
    [client_id] = firm.seed(phone="+33612345678")
    clock.set(local(1, 22))  # outside the send hours: the firm asked, it goes
    for _ in range(3):
        result = cli("send", str(client_id))
        assert result.exit_code == 0, result.output
        clock.advance(hours=1)
    assert [s[1:] for s in steps(firm.db)] == [
        (1, "manual"),
        (2, "manual"),
        (3, "manual"),
    ]
    row = json.loads(cli("status", "--json").stdout)["checklists"][0]
    assert (row["last_step"], row["steps"], row["to_call"]) == (3, 3, True)
    assert "3/3" in cli("status").stdout
    fourth = cli("send", str(client_id))
    assert fourth.exit_code == 1
    [line] = fourth.stderr.strip().splitlines()
    assert "every reminder of the sequence already" in line
    # An SMS only with the step whose day is in sms_days ([7]: the third).
    sms = sorted(firm.settings.outbox_dir.glob("sms-*.txt"))
    assert len(sms) == 1
    channels = firm.db.execute(
        "SELECT dedupe_key FROM messages WHERE channel = 'sms'"
    ).fetchall()
    assert channels == [(f"reminder:sms:{steps(firm.db)[0][0]}.3",)]
    subjects = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"]
        for p in firm.settings.outbox_dir.glob("*.eml")
    ]
    assert sum(s.startswith("Last reminder") for s in subjects) == 1


def test_a_live_claim_is_never_taken_over(firm):
    firm.seed()
    reminders.queue(firm.db, firm.settings, local(3))
    [message_id] = outbox.due_ids(firm.db, local(3), "email")
    wall = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    mine = outbox.claim(firm.db, message_id, local(3), clock=lambda: wall)
    # Another run a minute later by the wall clock, applying the rules days later
    # (`remind --as-of`), must not take it: the claim is a minute old, not days.
    later = lambda: wall + timedelta(minutes=1)  # noqa: E731
    assert outbox.due_ids(firm.db, local(9), "email", clock=later) == []
    assert outbox.claim(firm.db, message_id, local(9), clock=later) is None
    # A claim made on another machine is taken over once stale by the wall clock;
    # the run that held it can then no longer mark it.
    firm.db.execute(
        "UPDATE messages SET claimed_by = 'elsewhere:123' WHERE id = ?", [message_id]
    )
    firm.db.conn.commit()
    mine["claimed_by"] = "elsewhere:123"
    stale = lambda: wall + outbox.STALE_CLAIM + timedelta(seconds=1)  # noqa: E731
    taken = outbox.claim(firm.db, message_id, local(3), clock=stale)
    assert taken is not None and taken["claimed_by"] == outbox.claimer()
    assert outbox.mark_sent(firm.db, mine, local(3), "x") is False
    assert outbox.mark_failed(firm.db, mine, local(3), "late", False) is False
    row = firm.db.execute(
        "SELECT state, claimed_by FROM messages WHERE id = ?", [message_id]
    ).fetchone()
    assert row == ("sending", outbox.claimer())
    assert outbox.mark_sent(firm.db, taken, local(3), "y") is True


def test_a_claim_of_a_dead_process_is_taken_back_at_once(firm):
    firm.seed()
    reminders.queue(firm.db, firm.settings, local(3))
    [message_id] = outbox.due_ids(firm.db, local(3), "email")
    wall = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    outbox.claim(firm.db, message_id, local(3), clock=lambda: wall)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    firm.db.execute(
        "UPDATE messages SET claimed_by = ? WHERE id = ?",
        [f"{socket.gethostname()}:{gone.stdout.strip()}", message_id],
    )
    firm.db.conn.commit()
    soon = lambda: wall + timedelta(seconds=5)  # noqa: E731
    assert outbox.due_ids(firm.db, local(3), "email", clock=soon) == [message_id]
    assert outbox.claim(firm.db, message_id, local(3), clock=soon) is not None


@pytest.mark.parametrize("language", LANGUAGES)
def test_reminder_content_in_every_language(firm, smtp_server, language):
    """Both parts of the last reminder of two checklists, one overdue: the client's
    name, what is missing, what to send again with the note, the due and overdue
    wordings, the last-reminder line and the links, in the client's words."""
    use_smtp(firm.config, smtp_server.port)
    [client_id] = firm.seed(languages=(language,), slugs=("monthly", "payroll"))
    name = "Émilie Brandt-Öztürk"
    firm.db.execute("UPDATE clients SET name = ? WHERE id = ?", [name, client_id])
    monthly, payroll = [
        row[0] for row in firm.db.execute("SELECT id FROM checklists ORDER BY id")
    ]
    firm.db.execute(
        "UPDATE checklists SET due_on = '2026-12-05' WHERE id = ?", [payroll]
    )
    firm.db.execute(
        "UPDATE checklist_items SET state = 'rejected', note = 'Page 2 is missing'"
        " WHERE checklist_id = ? AND name = 'Sales invoices'",
        [monthly],
    )
    firm.db.conn.commit()
    firm.run(local(8))  # the last step (day 7), caught up
    [message] = smtp_server.parsed()
    plain = message.get_body("plain").get_content()
    rich = html.unescape(message.get_body("html").get_content())
    catalog = translations(language)

    def say(text: str, **values) -> str:
        translated = catalog.gettext(text)
        if language != "en":
            assert translated != text, f"{text!r} is not translated"
        return translated % values if values else translated

    tokens = dict(firm.db.execute("SELECT id, token FROM checklists"))
    expected = [
        say("Hello %(name)s,", name=name),
        say("Please send again:"),
        example_wording("monthly", "Sales invoices", language),
        "Page 2 is missing",
        say("Still missing:"),
        example_wording("monthly", "Supplier invoices", language),
        say("Due by %(due)s", due=format_day(date(2026, 12, 10), language)),
        say("Was due on %(due)s", due=format_day(date(2026, 12, 5), language)),
        say(
            "This is the last automatic reminder. If something is holding you up, "
            "just reply to this email."
        ),
        link_for(firm.settings.portal.base_url, tokens[monthly]),
        link_for(firm.settings.portal.base_url, tokens[payroll]),
    ]
    for part in (plain, rich):
        for text in expected:
            assert text in part, (language, text)
    assert message["Subject"] == say(
        "Last reminder: your documents for %(what)s",
        what=period_label("2026-12", language),
    )


# -- SMS -----------------------------------------------------------------------------------

LONG_FIRM = "Cabinet d'Expertise Comptable Lefèvre, Martin & Associés"
LONG_BASE_URL = "https://documents.lefevre-martin-associes.fr"  # 44 characters


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    "firm_name, base_url, compact",
    [
        ("Cabinet Martin", "https://docs.martin.fr", False),
        (LONG_FIRM, LONG_BASE_URL, True),
    ],
)
def test_reminder_sms_is_one_gsm7_message(firm, language, firm_name, base_url, compact):
    configure(firm.config, "sms", "backend", "file")
    configure(firm.config, "firm", "name", firm_name)
    configure(firm.config, "portal", "base_url", base_url)
    firm.seed(languages=(language,), phone="+33612345678")
    firm.run(local(7))  # the last step: its day is in sms_days
    from monthlydocs.channels.sms import is_gsm7, sms_parts

    [path] = firm.settings.outbox_dir.glob("sms-*.txt")
    body = path.read_text(encoding="utf-8").split("\n\n", 1)[1].strip()
    [[token]] = firm.db.execute("SELECT token FROM checklists").fetchall()
    assert link_for(base_url, token) in body
    assert is_gsm7(body), body
    assert sms_parts(body) == 1, (len(body), body)
    assert (firm_name in body) is not compact
    assert any(c.isdigit() for c in body.split("http")[0]) is not compact


# -- the firm's upload notifications ---------------------------------------------------


def test_upload_notifications_are_fifteen_minutes_apart(firm):
    """Uploads every 4 minutes for an hour, runs every minute: each notification
    comes 15 minutes or more after the previous one, and every upload is in one."""
    configure(firm.config, "notifications", "email", "team@dupont.example")
    configure(firm.config, "notifications", "on", ["uploaded"])
    settings = load_settings(firm.config, environ={})
    firm.seed()
    item = firm.db.execute("SELECT id FROM checklist_items LIMIT 1").fetchone()[0]
    start = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    for minute in range(0, 61, 4):
        firm.db.execute(
            "INSERT INTO documents (item_id, original_filename, stored_path, size,"
            " sha256, content_type, uploaded_at) VALUES (?, ?, 'x', 1, ?, 'text/plain', ?)",
            [
                item,
                f"{minute}.pdf",
                str(minute),
                iso(start + timedelta(minutes=minute)),
            ],
        )
    firm.db.conn.commit()
    for minute in range(0, 121):
        notifications.queue_due(firm.db, settings, start + timedelta(minutes=minute))
    queued = [
        datetime.fromisoformat(row[0].replace("Z", "+00:00"))
        for row in firm.db.execute(
            "SELECT created_at FROM messages WHERE kind = 'notify_uploaded' ORDER BY id"
        )
    ]
    assert len(queued) >= 2
    assert all(b - a >= timedelta(minutes=15) for a, b in pairwise(queued))
    outbox.deliver_email(firm.db, settings, start + timedelta(hours=2))
    texts = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        .get_body("plain")
        .get_content()
        for p in settings.outbox_dir.glob("*.eml")
    ]
    for minute in range(0, 61, 4):
        assert sum(f" {minute}.pdf" in text for text in texts) == 1, minute


def test_a_pinned_clock_reaches_every_command(firm, cli, clock):
    firm.seed()
    clock.set(local(4, 11))
    result = cli("remind")
    assert result.exit_code == 0, result.output
    [[created]] = firm.db.execute("SELECT created_at FROM messages").fetchall()
    assert created == iso(local(4, 11))
    clock.set(local(4, 12))
    assert cli("client", "pause", "1").exit_code == 0
    [[paused]] = firm.db.execute("SELECT reminders_paused_at FROM clients").fetchall()
    assert paused == iso(local(4, 12))
    os.environ["MONTHLYDOCS_NOW"] = "soon"
    bad = cli("status")
    assert bad.exit_code != 0
    assert "MONTHLYDOCS_NOW='soon' is not a date and time" in bad.stderr


# -- overlapping and killed runs, with the real program ----------------------------------

SCRIPT = Path(sys.executable).parent / "monthlydocs"


def _remind_process(
    config: Path, when: str, fault: str | None = None
) -> subprocess.Popen:
    env = {**os.environ, outbox.FAULT_ENV: fault} if fault else None
    return subprocess.Popen(
        [str(SCRIPT), "--config", str(config), "remind", "--as-of", when],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.slow
def test_two_overlapping_runs_send_each_reminder_once(firm, smtp_server):
    use_smtp(firm.config, smtp_server.port)
    ids = firm.seed(count=200)
    first = _remind_process(firm.config, "2026-12-04T10:00")
    second = _remind_process(firm.config, "2026-12-04T10:00")
    for process in (first, second):
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    recipients = [envelope[1][0] for envelope in smtp_server.envelopes]
    assert len(recipients) == 200
    assert len(set(recipients)) == 200
    assert len(steps(firm.db)) == 200
    assert {r[0] for r in reminder_rows(firm.db)} == set(ids)


KILL_POINTS = ("queued", "claimed", "sent", "marked")


@pytest.mark.slow
def test_killed_runs_lose_nothing_and_double_at_most_one_each(firm):
    """SIGKILL at seeded points at least 20 times: after the reminders are queued,
    after the k-th claim (the previous message may be on the wire), after the k-th
    message left (before it is marked) and after the k-th is marked. Each kill may
    double the one message in flight; nothing may be lost."""
    rng = random.Random(20261203)
    ids = firm.seed(count=60)
    kills: list[str] = []
    for when in ["2026-12-04T10:00", "2026-12-06T10:00", "2026-12-08T10:00"]:
        for _attempt in range(8):
            point = rng.choice(KILL_POINTS)
            nth = 1 if point == "queued" else rng.choice([1, 2, 3, 5, 8])
            process = _remind_process(firm.config, when, fault=f"kill:{point}:{nth}")
            process.communicate(timeout=60)  # reaped: its claims are known to be dead
            if process.returncode == -signal.SIGKILL:
                kills.append(point)
            else:
                assert process.returncode == 0
        finish = _remind_process(firm.config, when)
        _out, err = finish.communicate(timeout=120)
        assert finish.returncode == 0, err
    assert len(kills) >= 20, kills

    per_client: dict[str, int] = {}
    for path in firm.settings.outbox_dir.glob("*.eml"):
        message = email.message_from_bytes(
            path.read_bytes(), policy=email.policy.default
        )
        key = message["To"].addresses[0].addr_spec
        per_client[key] = per_client.get(key, 0) + 1
    # Every client got each of the three steps: nothing lost ...
    assert len(per_client) == len(ids)
    assert all(count >= 3 for count in per_client.values())
    # ... and at most one extra message per kill: always one for a kill between "sent"
    # and "marked"; perhaps one for a kill at "claimed" (the message before it may be
    # on the wire at that moment); none for the others.
    extra = sum(per_client.values()) - 3 * len(ids)
    assert kills.count("sent") <= extra <= kills.count("sent") + kills.count("claimed")
    states = {r[0] for r in firm.db.execute("SELECT state FROM messages")}
    assert states == {"sent"}
