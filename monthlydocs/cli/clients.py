"""`monthlydocs client ...`: add, list, show, edit, remove, assign, import."""

from __future__ import annotations

import typer

from .importing import import_clients

app = typer.Typer(
    help="Add, list, edit, import and remove clients.", no_args_is_help=True
)
app.command("import")(import_clients)


def _obj(ctx: typer.Context):
    return ctx.find_root().obj


@app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The client's name (company or person)."),
    email: str = typer.Option(
        ..., "--email", "-e", help="Where links and reminders go."
    ),
    phone: str = typer.Option(None, "--phone", "-p", help="Mobile number, for SMS."),
    language: str = typer.Option(
        None, "--language", "-l", help="en, fr, de, es or id."
    ),
    notes: str = typer.Option(None, "--notes", help="Free text for the firm."),
    template: list[str] = typer.Option(
        None, "--template", "-t", help="Assign this template (repeatable)."
    ),
) -> None:
    """Add a client.

    Example: monthlydocs client add "Boulangerie Dupont" --email marie@dupont.fr
    --phone "06 12 34 56 78" --language fr --template monthly
    """
    from ..clients import ClientInput, add_client, assign
    from ..db import write_transaction
    from ..templates import get_template
    from ._output import say

    obj = _obj(ctx)
    db, now = obj.db, obj.now()
    template_rows = [get_template(db, slug) for slug in template or []]
    with write_transaction(db):
        client_id = add_client(
            db,
            ClientInput(name, email, phone, language, notes),
            now,
            region=obj.settings.firm.country,
        )
        for row in template_rows:
            assign(db, [client_id], row["id"], now)
    say(f"Added client #{client_id} {name}")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON instead of a table."
    ),
    archived: bool = typer.Option(
        False, "--archived", help="Include archived clients."
    ),
    pending: bool = typer.Option(
        False, "--pending", help="Only self-registered clients waiting for approval."
    ),
) -> None:
    """List clients.

    Example: monthlydocs client list --json
    """
    from ..clients import list_clients
    from ._output import print_json, table

    rows = list_clients(
        _obj(ctx).db, status="pending" if pending else None, include_archived=archived
    )
    if as_json:
        print_json(rows)
        return
    table(
        f"{len(rows)} clients",
        ["#", "Name", "Email", "Phone", "Lang", "Templates", "Status"],
        [
            (
                r["id"],
                r["name"],
                r["email"],
                r["phone"],
                r["language"],
                r["templates"],
                r["status"],
            )
            for r in rows
        ],
        justify={"#": "right"},
    )


@app.command("show")
def show(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
) -> None:
    """Show a client, their templates, checklists and recent activity.

    Example: monthlydocs client show dupont
    """
    from ..checklists import of_client
    from ..events import for_client
    from ..templates import slugs_of_client
    from ._output import say, table

    obj = _obj(ctx)
    db = obj.db
    row = obj.client(client)
    for label, key in (
        ("Client", "name"),
        ("Email", "email"),
        ("Phone", "phone"),
        ("Language", "language"),
        ("Notes", "notes"),
        ("Status", "status"),
        ("Added", "created_at"),
    ):
        say(f"{label + ':':10} {row[key] if row[key] is not None else '-'}")
    say(f"{'Templates:':10} {', '.join(slugs_of_client(db, row['id'])) or '-'}")
    lists = of_client(db, row["id"])
    if lists:
        table(
            "Checklists",
            ["#", "Template", "Period", "Due", "Link sent", "Completed"],
            [
                (
                    r["id"],
                    r["template_name"],
                    r["period"],
                    r["due_on"],
                    r["link_sent_at"] or "-",
                    r["completed_at"] or "-",
                )
                for r in lists
            ],
        )
    events = for_client(db, row["id"], limit=10)
    if events:
        table(
            "Recent activity",
            ["When", "What", "Who"],
            [(e["at"], e["action"], e["actor"]) for e in events],
        )


@app.command("edit")
def edit(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
    name: str = typer.Option(None, "--name"),
    email: str = typer.Option(None, "--email", "-e"),
    phone: str = typer.Option(None, "--phone", "-p", help='"" removes the number.'),
    language: str = typer.Option(None, "--language", "-l"),
    notes: str = typer.Option(None, "--notes"),
) -> None:
    """Change a client's details; only the options given change.

    Example: monthlydocs client edit dupont --phone "+33 6 11 22 33 44"
    """
    from ..clients import update_client
    from ._output import say

    obj = _obj(ctx)
    row = obj.client(client)
    changes = {
        "name": name,
        "email": email,
        "phone": phone,
        "language": language,
        "notes": notes,
    }
    diff = update_client(
        obj.db, row["id"], changes, obj.now(), region=obj.settings.firm.country
    )
    if diff:
        say(f"Updated #{row['id']} {row['name']}: {', '.join(diff)}")
    else:
        say(f"Nothing changed for #{row['id']} {row['name']}")


@app.command("remove")
def remove(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
    erase: bool = typer.Option(
        False,
        "--erase",
        help="Delete the client with all documents, files and messages (GDPR erasure).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask to confirm."),
) -> None:
    """Archive a client (history kept), or erase them completely with --erase.

    Example: monthlydocs client remove dupont --erase --yes
    """
    from ..clients import archive_client, erase_client
    from ._output import say

    obj = _obj(ctx)
    row = obj.client(client)
    if not erase:
        archive_client(obj.db, row["id"], obj.now())
        say(
            f"Archived #{row['id']} {row['name']}: no more checklists or reminders; "
            "history kept."
        )
        return
    if not yes and not typer.confirm(
        f"Erase #{row['id']} {row['name']} with every document, file and message? "
        "This cannot be undone",
        default=False,
    ):
        raise typer.Exit(1)
    counts = erase_client(obj.db, row["id"], obj.settings.files_dir, obj.now())
    say(
        f"Erased #{row['id']} {row['name']}: {counts['checklists']} checklists, "
        f"{counts['documents']} documents, {counts['messages']} messages."
    )


@app.command("assign")
def assign_(
    ctx: typer.Context,
    clients: list[str] = typer.Argument(None, help="Clients (id, email or name part)."),
    template: str = typer.Option(..., "--template", "-t", help="Template slug."),
    all_: bool = typer.Option(False, "--all", help="Every active client."),
    remove: bool = typer.Option(False, "--remove", help="Unassign instead."),
) -> None:
    """Assign a template to clients (or to --all of them).

    Example: monthlydocs client assign dupont "Café Lumière" --template vat
    """
    from ..clients import assign, list_clients, unassign
    from ..templates import get_template
    from ._output import say

    if not all_ and not clients:
        # A usage error (one line, exit code 2): like a missing argument.
        raise typer.BadParameter.__mro__[1](
            "name at least one client, or use --all (client assign C... --template SLUG)"
        )
    obj = _obj(ctx)
    db = obj.db
    row = get_template(db, template)
    if all_:
        ids = [c["id"] for c in list_clients(db, status="active")]
    else:
        ids = [obj.client(ref)["id"] for ref in clients]
    if remove:
        count = unassign(db, ids, row["id"], obj.now())
        say(f"Unassigned {row['slug']} from {count} clients")
        return
    count = assign(db, ids, row["id"], obj.now())
    say(
        f"Assigned {row['slug']} to {count} clients ({len(ids) - count} already had it)"
    )


@app.command("approve")
def approve(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
    template: list[str] = typer.Option(
        None, "--template", "-t", help="Also assign this template (repeatable)."
    ),
) -> None:
    """Confirm a client who registered through the invite link.

    Until then they are pending: no checklist is made for them.

    Example: monthlydocs client approve 42 --template monthly
    """
    from ..clients import assign
    from ..portal import approve_client
    from ..templates import get_template
    from ._output import say

    obj = _obj(ctx)
    db, now = obj.db, obj.now()
    row = obj.client(client)
    template_rows = [get_template(db, slug) for slug in template or []]
    approve_client(db, row["id"], now)
    for template_row in template_rows:
        assign(db, [row["id"]], template_row["id"], now)
    say(
        f"Approved #{row['id']} {row['name']}"
        + (
            f"; assigned {', '.join(t['slug'] for t in template_rows)}"
            if template_rows
            else "; assign templates with `monthlydocs client assign`"
        )
    )
