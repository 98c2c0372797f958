"""`monthlydocs review`, `approve`, `reject`, `export`, `purge`, and `user ...`."""

from __future__ import annotations

from pathlib import Path

import typer

users_app = typer.Typer(help="Staff users of the dashboard.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("review")(review)
    app.command("approve")(approve)
    app.command("reject")(reject)
    app.command("export")(export)
    app.command("purge")(purge)
    app.add_typer(users_app, name="user")


def _obj(ctx: typer.Context):
    return ctx.find_root().obj


def _reviewer() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def review(
    ctx: typer.Context,
    client: str = typer.Argument(..., help="Id, email or part of the name."),
) -> None:
    """List a client's documents with their ids and review states.

    Example: monthlydocs review dupont
    """
    from ..review import documents_of_client
    from ._output import say, table

    obj = _obj(ctx)
    row = obj.client(client)
    documents = documents_of_client(obj.db, row["id"])
    if not documents:
        say(f"{row['name']} has sent no documents yet.")
        return
    table(
        f"Documents of {row['name']}",
        ["Doc", "Checklist", "Slot", "File", "Size", "Uploaded", "Review", "Note"],
        [
            (
                d["id"],
                f"{d['template_name']} {d['period']}",
                d["slot"],
                d["original_filename"],
                _size(d["size"]),
                d["uploaded_at"][:16],
                d["review_state"],
                d["review_note"] or "",
            )
            for d in documents
        ],
        justify={"Doc": "right", "Size": "right"},
    )


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def approve(
    ctx: typer.Context,
    document: int = typer.Argument(..., help="Document id (see `review`)."),
) -> None:
    """Approve a document.

    Example: monthlydocs approve 42
    """
    from ..review import approve as approve_document
    from ._output import say

    obj = _obj(ctx)
    row = approve_document(obj.db, document, _reviewer(), obj.now())
    say(
        f"Approved #{row['id']} {row['original_filename']} ({row['client']}, "
        f"{row['slot']})"
    )


def reject(
    ctx: typer.Context,
    document: int = typer.Argument(..., help="Document id (see `review`)."),
    note: str = typer.Option(
        ..., "--note", "-n", help="What is wrong, in words the client understands."
    ),
) -> None:
    """Reject a document with a note; the client is emailed the note and their link.

    Example: monthlydocs reject 42 --note "Page 2 is missing"
    """
    from ..outbox import deliver_email
    from ..review import reject as reject_document
    from ._output import say

    obj = _obj(ctx)
    row = reject_document(obj.db, obj.settings, document, note, _reviewer(), obj.now())
    report = deliver_email(obj.db, obj.settings, obj.now())
    say(
        f"Rejected #{row['id']} {row['original_filename']} ({row['client']}, "
        f"{row['slot']}); the client "
        + (
            "was emailed."
            if not report.failed
            else "could not be emailed now; `monthlydocs remind` will retry."
        )
    )


def export(
    ctx: typer.Context,
    period: str = typer.Option(None, "--period"),
    template: str = typer.Option(None, "--template", "-t"),
    client: str = typer.Option(None, "--client", "-c"),
    approved_only: bool = typer.Option(
        False, "--approved-only", help="Only documents the firm approved."
    ),
    out: Path = typer.Option(
        None, "--out", "-o", help="ZIP file to write.", dir_okay=False
    ),
    folder: Path = typer.Option(
        None, "--dir", help="Folder to copy the files into.", file_okay=False
    ),
) -> None:
    """Export documents as Client/Period/Template/Slot/file with manifest.csv, as a
    ZIP (--out) or a folder (--dir).

    Example: monthlydocs export --period 2026-12 --approved-only --out december.zip
    """
    from .. import export as exporting
    from ..errors import MonthlydocsError
    from ..templates import get_template
    from ._output import say

    if (out is None) == (folder is None):
        raise typer.BadParameter("give exactly one of --out FILE.zip or --dir DIR")
    obj = _obj(ctx)
    db, settings = obj.db, obj.settings
    selection = exporting.Selection(
        period=period,
        template_id=get_template(db, template)["id"] if template else None,
        client_id=obj.client(client)["id"] if client else None,
        approved_only=approved_only,
    )
    items = exporting.entries(exporting.select(db, selection), settings.files_dir)
    if not items:
        raise MonthlydocsError("No documents match: nothing to export")
    missing = list(exporting.missing_files(items))
    if missing:
        raise MonthlydocsError(
            f"{len(missing)} stored files are missing on disk (first: "
            f"{missing[0].path}); nothing was exported"
        )
    if out is not None:
        size = exporting.write_zip(items, out)
        say(f"Exported {len(items)} documents to {out} ({_size(size)})")
    else:
        size = exporting.write_folder(items, folder)
        say(f"Exported {len(items)} documents to {folder} ({_size(size)})")


def purge(
    ctx: typer.Context,
    before: str = typer.Option(..., "--before", help="Purge periods before this one."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would go."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask to confirm."),
) -> None:
    """Delete the files and records of closed checklists older than the retention
    (storage.retention_years), after showing what will go.

    Example: monthlydocs purge --before 2016-01 --dry-run
    """
    from .. import purge as purging
    from ._output import say, table

    obj = _obj(ctx)
    plan = purging.plan(
        obj.db, before, obj.today(), obj.settings.storage.retention_years
    )
    table(
        f"{len(plan.checklists)} closed checklists before {before}",
        ["Client", "Template", "Period"],
        [(r["client"], r["template_name"], r["period"]) for r in plan.checklists[:50]],
    )
    say(
        f"{len(plan.checklists)} checklists, {len(plan.documents)} documents "
        f"({_size(plan.bytes)}), {plan.messages} messages and {plan.events} audit "
        "events about them would be deleted."
    )
    if dry_run or not plan.checklists:
        return
    if not yes and not typer.confirm("Delete them for good?", default=False):
        raise typer.Exit(1)
    done = purging.execute(
        obj.db, obj.settings.files_dir, plan, obj.now(), actor=_reviewer()
    )
    say(
        f"Deleted {done.checklists} checklists, {done.documents} documents, "
        f"{done.messages} messages and {done.events} audit events."
    )


@users_app.command("add")
def user_add(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The staff member's email (their login)."),
    name: str = typer.Option("", "--name"),
    language: str = typer.Option(
        None, "--language", "-l", help="Dashboard language: en, fr, de, es or id."
    ),
) -> None:
    """Add a dashboard user; the password is asked twice and stored as an argon2 hash.

    Example: monthlydocs user add anne@cabinet.example --name "Anne Martin"
    """
    from ..users import add_user, check_password
    from ._output import say

    obj = _obj(ctx)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    check_password(password)
    user_id = add_user(obj.db, email, password, obj.now(), name=name, language=language)
    say(f"Added user #{user_id} {email}")


@users_app.command("edit")
def user_edit(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The staff member's email (their login)."),
    name: str = typer.Option(None, "--name"),
    language: str = typer.Option(
        None,
        "--language",
        "-l",
        help='Dashboard language: en, fr, de, es or id; "" to follow the browser\'s.',
    ),
) -> None:
    """Change a dashboard user's name or language.

    Example: monthlydocs user edit anne@cabinet.example --language fr
    """
    from ..users import edit_user
    from ._output import say

    if name is None and language is None:
        raise typer.BadParameter("Give --name or --language (or both)")
    user = edit_user(_obj(ctx).db, email, name=name, language=language)
    shown = user["language"] or "the browser's"
    say(f"User {user['email']}: name {user['name']!r}, language {shown}")


@users_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """List dashboard users.

    Example: monthlydocs user list
    """
    from ..users import list_users
    from ._output import table

    rows = list_users(_obj(ctx).db)
    table(
        f"{len(rows)} users",
        ["Email", "Name", "Language", "Added", "Last login"],
        [
            (
                u["email"],
                u["name"],
                u["language"] or "-",
                u["created_at"][:10],
                (u["last_login_at"] or "-")[:16],
            )
            for u in rows
        ],
    )


@users_app.command("remove")
def user_remove(ctx: typer.Context, email: str = typer.Argument(...)) -> None:
    """Remove a dashboard user.

    Example: monthlydocs user remove anne@cabinet.example
    """
    from ..users import remove_user
    from ._output import say

    remove_user(_obj(ctx).db, email)
    say(f"Removed user {email}")
