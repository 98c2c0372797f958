"""`monthlydocs generate`, `link`, `status` and `email-test`."""

from __future__ import annotations

from datetime import date

import typer


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("link")(link)
    app.command("status")(status)
    app.command("email-test")(email_test)


def _obj(ctx: typer.Context):
    return ctx.find_root().obj


def _parse_day(value: str | None, option: str = "--due") -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2026-12-10", param_hint=option
        ) from None


def _usage_error(message: str):
    """A mistake in the options: shown as one line, exit code 2 (see cli._Group)."""
    return typer.BadParameter.__mro__[1](message)


def generate(
    ctx: typer.Context,
    template: str = typer.Option(
        None,
        "--template",
        "-t",
        help="Template slug. Without it: every template whose current period has no "
        "checklists yet (what cron runs on the 1st).",
    ),
    period: str = typer.Option(
        None, "--period", help="2026-12, 2026-Q4, 2026 or once."
    ),
    due: str = typer.Option(None, "--due", help="Due date, e.g. 2026-12-10."),
    client: list[str] = typer.Option(
        None, "--client", "-c", help="Only these clients (repeatable)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be done."),
    no_send: bool = typer.Option(
        False, "--no-send", help="Create checklists, send nothing."
    ),
) -> None:
    """Create this period's checklists and email each client their portal link.

    Running it twice creates nothing new and sends nothing twice; links that could not
    be sent earlier are retried, and links of checklists made with --no-send are sent.

    Example: monthlydocs generate --template vat --period 2026-Q4
    """
    from .. import checklists
    from ..templates import get_template
    from ._output import say, table

    obj = _obj(ctx)
    due_on = _parse_day(due)
    if period and not template:
        raise _usage_error("--period needs --template")
    db, now, today = obj.db, obj.now(), obj.today()
    templates = (
        [get_template(db, template)]
        if template
        else checklists.templates_due(db, today, unsent=not no_send)
    )
    client_ids = [obj.client(ref)["id"] for ref in client] if client else None
    requests = [checklists.Request(t, period, due_on) for t in templates]
    result = checklists.generate(
        db,
        requests,
        now,
        today,
        client_ids=client_ids,
        send=not no_send,
        dry_run=dry_run,
        default_language=obj.settings.firm.default_language,
    )
    report = None
    if not dry_run and not no_send:
        report = _deliver(db, obj.settings, now)
    rows = [
        (o.slug, o.period, o.due_on.isoformat(), o.created, o.already)
        for o in result.outcomes
    ]
    title = "Would create (dry run)" if dry_run else "Generated"
    table(
        title,
        ["Template", "Period", "Due", "Created", "Already there"],
        rows,
        justify={"Created": "right", "Already there": "right"},
    )
    if not result.created and not result.unsent and not template:
        say(
            "Nothing to generate: every template in use already has checklists for "
            "its current period."
        )
    if result.unsent and not no_send:
        say(
            f"Checklists made earlier without email (--no-send): {result.unsent}, "
            + ("their links would be emailed" if dry_run else "their links go out now")
        )
    if report is not None:
        _report_delivery(obj, report, now)


def _report_delivery(obj, report, now) -> None:
    """One line on stdout; when links are not all out, one line on stderr and exit 2
    (the per-recipient errors only under --verbose)."""
    from .. import checklists
    from ._output import say

    # Those that failed in this run are counted as failed, not as waiting.
    waiting, first_retry = checklists.waiting_links(
        obj.db, now, exclude=[message_id for message_id, _to, _error in report.errors]
    )
    say(
        f"Emails sent: {report.sent}, failed: {report.failed}"
        + (f", waiting for a retry: {waiting}" if waiting else "")
    )
    if obj.verbose:
        for _id, recipient, error in report.errors:
            typer.echo(f"  {recipient}: {error}", err=True)
    if report.failed:
        _id, recipient, error = report.errors[0]
        typer.echo(
            f"Error: {report.failed} {_emails(report.failed)} could not be sent "
            f"(first: {recipient}: {error}); the checklists exist and the next "
            "`monthlydocs generate` or `remind` will retry.",
            err=True,
        )
        raise typer.Exit(2)
    if waiting:
        typer.echo(
            f"Error: {waiting} link {_emails(waiting)} waiting to be retried after "
            f"{_local_time(first_retry, now, obj)}; `monthlydocs status` shows the last "
            "error, and `monthlydocs generate` or `remind` retries them then.",
            err=True,
        )
        raise typer.Exit(2)


def _emails(count: int) -> str:
    return "email" if count == 1 else "emails"


def _local_time(moment, now, obj) -> str:
    """HH:MM in the firm's time zone, with the date when it is not today."""
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(obj.settings.firm.timezone))
    if local.date() == now.astimezone(local.tzinfo).date():
        return local.strftime("%H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def _deliver(db, settings, now):
    """Send every due email with a progress bar; one connection for the run."""
    from .. import outbox
    from ._output import progress

    total = len(outbox.due_ids(db, now, "email"))
    with progress(total, "Sending") as bar:
        task = bar.add_task("Sending links", total=total)
        return outbox.deliver_email(
            db, settings, now, on_message=lambda message, error: bar.advance(task)
        )


def link(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
    template: str = typer.Option(None, "--template", "-t"),
    period: str = typer.Option(None, "--period"),
    whatsapp: bool = typer.Option(
        False, "--whatsapp", help="Print a WhatsApp share link instead."
    ),
    rotate: bool = typer.Option(
        False, "--rotate", help="Replace the token: the old link stops working."
    ),
) -> None:
    """Print a client's portal link, and nothing else (for scripts).

    Without --template: the checklist of the client's only current one; with several
    open (monthly and vat, say), name the template.

    Example: monthlydocs link dupont --template monthly --whatsapp
    """
    from .. import checklists, links

    obj = _obj(ctx)
    db = obj.db
    template_id, period = _template_and_period(db, template, period)
    row = obj.client(client)
    checklist = checklists.find_for_client(db, row["id"], template_id, period)
    token = checklist["token"]
    if rotate:
        token = links.rotate(db, checklist["id"], obj.now())
    url = links.link_for(obj.settings.portal.base_url, token)
    if whatsapp:
        url = links.whatsapp_share(row, url, obj.settings.firm.default_language)
    typer.echo(url)


def status(
    ctx: typer.Context,
    period: str = typer.Option(None, "--period"),
    template: str = typer.Option(None, "--template", "-t"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Where every checklist stands: counts, then one line per checklist.

    Example: monthlydocs status --period 2026-12
    """
    from .. import checklists, outbox, reminders
    from ._output import print_json, say, table

    obj = _obj(ctx)
    db = obj.db
    template_id, period = _template_and_period(db, template, period)
    counts, rows = checklists.status(
        db, obj.today(), period=period, template_id=template_id
    )
    reminders.annotate(rows, obj.settings)
    failed = outbox.failed_messages(db)
    if as_json:
        print_json(
            {
                "counts": {**counts, "to_call": sum(r["to_call"] for r in rows)},
                "checklists": rows,
                "failed_messages": [
                    {
                        k: m[k]
                        for k in (
                            "id",
                            "client",
                            "recipient",
                            "channel",
                            "kind",
                            "attempts",
                            "last_error",
                        )
                    }
                    for m in failed
                ],
            }
        )
        return
    summary = "  ".join(
        f"{state.replace('_', ' ')}: {n}" for state, n in counts.items()
    )
    say(f"{summary}  to call: {sum(r['to_call'] for r in rows)}")
    table(
        None,
        [
            "Client",
            "Template",
            "Period",
            "Due",
            "Received",
            "Link sent",
            "Opened",
            "Reminders",
            "Next",
            "State",
        ],
        [
            (
                r["client"],
                r["template"],
                r["period"],
                r["due_on"],
                f"{r['received']}/{r['required']}",
                _day(r["link_sent_at"]),
                _day(r["first_opened_at"]),
                f"{r['last_step'] or 0}/{r['steps']}",
                "paused" if r["paused"] else (r["next_reminder_on"] or "-"),
                r["state"].replace("_", " ") + (" - call" if r["to_call"] else ""),
            )
            for r in rows
        ],
        justify={"Received": "right"},
    )
    if failed:
        table(
            "Messages not sent",
            ["Client", "To", "Channel", "Kind", "Attempts", "Error"],
            [
                (
                    m["client"],
                    m["recipient"],
                    m["channel"],
                    m["kind"],
                    m["attempts"],
                    m["last_error"],
                )
                for m in failed
            ],
        )


def _template_and_period(db, slug: str | None, period: str | None):
    """The template's id (None without --template) and the period checked against its
    cadence, or against every form without a template."""
    from ..checklists import check_any_period
    from ..templates import get_template

    row = get_template(db, slug) if slug else None
    if period:
        period = check_any_period(period, row["cadence"] if row else None)
    return (row["id"] if row else None), period


def _day(stamp: str | None) -> str:
    return stamp[:10] if stamp else "-"


def email_test(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="Where to send the test message."),
) -> None:
    """Send a test email with the configured backend, reporting each step.

    Example: monthlydocs email-test me@example.com
    """
    from ..channels.email import backend_for, build_message
    from ..clients import normalize_email
    from ..errors import DeliveryError
    from ..messages import Composed
    from ._output import say

    obj = _obj(ctx)
    settings = obj.settings
    address = normalize_email(address)
    composed = Composed(
        subject=f"monthlydocs test message from {settings.firm.name}",
        text="This is a test message. Your email settings work.\n",
        html="<p>This is a test message. Your email settings work.</p>",
    )
    message = build_message(settings, address, address, composed)
    steps = []
    say(f"Backend: {settings.email.backend}")
    try:
        with backend_for(
            settings, report=lambda step: (steps.append(step), say(f"  ok: {step}"))
        ) as backend:
            where = backend.send(message)
    except DeliveryError as exc:
        done = f" (after: {steps[-1]})" if steps else ""
        raise DeliveryError(f"Test message not sent{done}: {exc}") from exc
    if settings.email.backend == "file":
        say(f"  ok: written to {where}")
    say(f"Test message sent to {address}")
