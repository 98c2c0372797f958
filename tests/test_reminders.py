"""Follow-ups: the rules as a table, then whole runs against a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from conftest import SmtpSink, use_smtp
from monthlydocs import checklists, clients, outbox, reminders, templates
from monthlydocs.config import load_settings
from monthlydocs.db import open_db
from monthlydocs.reminders import ChecklistState, client_hold, decide
from monthlydocs.workspace import example_templates_path

SENT_ON = date(2026, 12, 1)
# Link sent on 1 December 2026 (a Tuesday) at 09:00 Paris time.
LINK_SENT = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def local(day: int, hour: int = 10, minute: int = 0) -> datetime:
    """A moment ``day`` days after the link was sent, at a Paris wall-clock time."""
    from zoneinfo import ZoneInfo

    moment = datetime(2026, 12, 1, hour, minute, tzinfo=ZoneInfo("Europe/Paris"))
    return (moment + timedelta(days=day)).astimezone(UTC)


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


def test_first_and_second_subjects(firm, smtp_server):
    use_smtp(firm.config, smtp_server.port)
    firm.seed()
    firm.run(local(3))
    firm.run(local(5))
    subjects = [m["Subject"] for m in smtp_server.parsed()]
    assert subjects == [
        "Reminder: your documents for December 2026",
        "Second reminder: your documents for December 2026",
    ]


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


def test_failed_links_are_retried_by_remind(firm, cli):
    template = templates.get_template(firm.db, "payroll")
    client_id = clients.add_client(
        firm.db, clients.ClientInput("A", "a@example.com"), LINK_SENT, region="FR"
    )
    clients.assign(firm.db, [client_id], template["id"], LINK_SENT)
    down = SmtpSink()
    use_smtp(firm.config, down.port)
    down.down()
    failed = cli("generate", "--template", "payroll", "--period", "2026-12")
    assert failed.exit_code == 2
    sink = SmtpSink()
    try:
        use_smtp(firm.config, sink.port)
        # generate used the real clock; retry an hour later.
        later = (datetime.now(UTC) + timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M+00:00"
        )
        result = cli("remind", "--as-of", later)
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


# -- overlapping and killed runs, with the real program ----------------------------------

SCRIPT = Path(sys.executable).parent / "monthlydocs"


def _remind_process(config: Path, as_of: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(SCRIPT), "--config", str(config), "remind", "--as-of", as_of],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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


@pytest.mark.slow
def test_killed_runs_lose_nothing_and_double_at_most_one_each(firm):
    """SIGKILL at seeded random moments, at least 20 times: while starting, while
    planning, and after a random number of messages has gone out. Each kill may double
    the one message in flight; nothing may be lost."""
    rng = random.Random(20261203)
    settings = firm.settings
    ids = firm.seed(count=90)
    kills = 0

    def written() -> int:
        return sum(1 for _ in settings.outbox_dir.glob("*.eml"))

    for as_of in ["2026-12-04T10:00", "2026-12-06T10:00", "2026-12-08T10:00"]:
        for _attempt in range(8):
            start = written()
            target = start + rng.choice([0, 0, 1, 2, 3, 5, 8, 13])
            process = _remind_process(firm.config, as_of)
            if target == start:
                time.sleep(rng.uniform(0.0, 0.4))  # during start-up or planning
            else:
                deadline = time.monotonic() + 60
                while written() < target and process.poll() is None:
                    assert time.monotonic() < deadline
                    time.sleep(0.001)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate(timeout=60)
        finish = _remind_process(firm.config, as_of)
        _out, err = finish.communicate(timeout=120)
        assert finish.returncode == 0, err
    assert kills >= 20, f"only {kills} kills landed while runs were working"

    per_client: dict[str, int] = {}
    for path in settings.outbox_dir.glob("*.eml"):
        message = email.message_from_bytes(
            path.read_bytes(), policy=email.policy.default
        )
        if "reminder" in message["Subject"].lower():
            key = message["To"].addresses[0].addr_spec
            per_client[key] = per_client.get(key, 0) + 1
    # Every client got each of the three steps: nothing lost ...
    assert len(per_client) == len(ids)
    assert all(count >= 3 for count in per_client.values())
    # ... and at most one extra message per kill.
    assert sum(per_client.values()) - 3 * len(ids) <= kills
    states = {r[0] for r in firm.db.execute("SELECT state FROM messages")}
    assert states == {"sent"}


@pytest.mark.parametrize("language", ["en", "fr", "de", "es", "id"])
@pytest.mark.parametrize("last", [False, True])
@pytest.mark.parametrize("count", [1, 3])
def test_reminder_sms_is_one_gsm7_message(language, last, count):
    from monthlydocs.channels.sms import is_gsm7, sms_parts
    from monthlydocs.messages import render_sms

    link = "https://documents.cabinet-martin.fr/c/" + "x" * 32
    text = render_sms("reminder", language, {
        "firm": {"name": "Cabinet Martin"}, "missing_count": count, "link": link,
        "last": last,
    })
    assert link in text and str(count) in text
    assert is_gsm7(text), text
    assert sms_parts(text) == 1, (len(text), text)
