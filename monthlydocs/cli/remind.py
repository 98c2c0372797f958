"""`monthlydocs remind` (cron), `monthlydocs send` (a reminder now), pause and resume."""

from __future__ import annotations

import typer


def register(app: typer.Typer, clients_app: typer.Typer) -> None:
    app.command("remind")(remind)
    app.command("send")(send)
    clients_app.command("pause")(pause)
    clients_app.command("resume")(resume)


def _obj(ctx: typer.Context):
    return ctx.find_root().obj


def _as_of(obj, text: str | None):
    if not text:
        return obj.now()
    from ..timeutil import parse_moment

    try:
        return parse_moment(text, obj.settings.firm.timezone)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a date and time like 2026-12-06T10:00"
        ) from None


def remind(
    ctx: typer.Context,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be sent; change nothing."
    ),
    as_of: str = typer.Option(
        None,
        "--as-of",
        help="Apply the rules at this moment, e.g. 2026-12-06T10:00 (firm's local "
        "time unless it has an offset).",
    ),
    client: str = typer.Option(None, "--client", "-c", help="Only this client."),
) -> None:
    """Send the reminders that are due now, the firm's notifications, and retry
    messages that failed earlier. Safe to run from cron every few minutes.

    Example: monthlydocs remind --dry-run --as-of 2026-12-06T10:00
    """
    from .. import reminders
    from ._output import count, say

    obj = _obj(ctx)
    db, settings = obj.db, obj.settings
    now = _as_of(obj, as_of)
    client_id = obj.client(client)["id"] if client else None
    if dry_run:
        _show_plan(reminders.plan(db, settings, now, client_id), db, now, client_id)
        return
    report = reminders.run(db, settings, now, client_id=client_id)
    queued, delivery = report.queued, report.delivery
    say(
        f"Reminded {count(queued.reminded, 'client')} ({count(queued.steps, 'step')}, "
        f"{count(queued.skipped, 'missed step')} skipped, {queued.escalated} now to "
        f"call, {queued.sms} SMS); {count(report.notifications, 'notification')}; "
        f"sent {delivery.sent}, failed "
        f"{delivery.failed}{_held_back(delivery)}."
    )
    _fail_on_errors(obj, delivery, "they will be retried by the next run")


def _held_back(delivery) -> str:
    text = ""
    if delivery.dropped:
        text += f", dropped {delivery.dropped} (complete, paused or archived)"
    if delivery.deferred:
        text += f", {delivery.deferred} held until the send hours"
    return text


def _fail_on_errors(obj, delivery, retry: str) -> None:
    """One error line on stderr and exit 2 when something was not sent (each failure
    listed before it with --verbose)."""
    if not delivery.failed:
        return
    if obj.verbose:
        for _id, recipient, error in delivery.errors:
            typer.echo(f"  {recipient}: {error}", err=True)
    if delivery.unreachable:
        channel, error = next(iter(delivery.unreachable.items()))
        typer.echo(
            f"Error: {error}; sending by {channel} stopped there, {delivery.left} "
            "messages wait for the next run.",
            err=True,
        )
    else:
        typer.echo(
            f"Error: {delivery.failed} messages could not be sent (first: "
            f"{delivery.errors[0][1]}: {delivery.errors[0][2]}); {retry}.",
            err=True,
        )
    raise typer.Exit(2)


def _show_plan(plan, db, now, client_id) -> None:
    from .. import outbox
    from ..checklists import labels
    from ._output import count, say, table

    names = labels(db, [d.checklist_id for p in plan.clients for d in p.decisions])
    rows = []
    for client_plan in plan.clients:
        for decision in client_plan.decisions:
            name, period = names[decision.checklist_id]
            rows.append(
                (
                    client_plan.client["name"],
                    f"{name} {period}",
                    f"{decision.step}{' (last)' if decision.last else ''}",
                    ", ".join(map(str, decision.skip)) or "-",
                    "email + SMS" if client_plan.sms else "email",
                )
            )
    table(
        "Would send (dry run)",
        ["Client", "Checklist", "Step", "Skipped steps", "Channel"],
        rows,
    )
    if plan.held:
        table(
            "Held back",
            ["Client", "Why"],
            [(client["name"], why) for client, why in plan.held],
        )
    retries = sum(
        len(outbox.due_ids(db, now, channel, client_id=client_id))
        for channel in outbox.CHANNELS
    )
    say(
        f"{count(len(plan.clients), 'client')} would be reminded; "
        f"{count(retries, 'queued or failed message')} would be (re)sent."
    )


def send(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
    template: str = typer.Option(None, "--template", "-t"),
    period: str = typer.Option(None, "--period"),
) -> None:
    """Send a reminder to one client now, whatever the hour; it counts as the next
    step of their sequence (never past the last one, which flags them to call).

    Example: monthlydocs send dupont --template vat
    """
    from .. import checklists, outbox, reminders
    from ..errors import MonthlydocsError
    from ..templates import get_template
    from ._output import say

    obj = _obj(ctx)
    db, settings, now = obj.db, obj.settings, obj.now()
    row = obj.client(client)
    if template or period:
        template_id = get_template(db, template)["id"] if template else None
        targets = [checklists.find_for_client(db, row["id"], template_id, period)]
    else:
        targets = checklists.remindable(db, row["id"])
    if not targets:
        raise MonthlydocsError(
            f"{row['name']} has no open checklist whose link was sent: nothing to "
            "remind them of"
        )
    count = reminders.queue_manual(db, settings, now, row, [c["id"] for c in targets])
    if not count:
        raise MonthlydocsError(
            f"{row['name']} has had every reminder of the sequence already: nothing "
            "more to send; `monthlydocs status` lists them to call"
        )
    report = outbox.deliver_all(db, settings, now, client_id=row["id"])
    if report.failed:
        raise MonthlydocsError(
            f"The reminder could not be sent ({report.errors[0][2]}); the next "
            "`monthlydocs remind` will retry it"
        )
    say(f"Reminder sent to {row['name']} for {count} checklist(s).")


def pause(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
) -> None:
    """Stop a client's automatic reminders until `client resume`.

    Example: monthlydocs client pause dupont
    """
    _set_paused(ctx, client, True)


def resume(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
) -> None:
    """Restart a client's automatic reminders.

    Example: monthlydocs client resume dupont
    """
    _set_paused(ctx, client, False)


def _set_paused(ctx: typer.Context, client: str, paused: bool) -> None:
    from ..clients import set_paused
    from ._output import say

    obj = _obj(ctx)
    row = obj.client(client)
    set_paused(obj.db, row["id"], paused, obj.now())
    say(
        f"Reminders {'paused' if paused else 'resumed'} for #{row['id']} {row['name']}."
    )
