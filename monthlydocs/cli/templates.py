"""`monthlydocs template ...`: document templates and their slots."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Define the documents you ask for.", no_args_is_help=True)


def _obj(ctx: typer.Context):
    return ctx.find_root().obj


@app.command("add")
def add(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Short name used in commands, e.g. vat."),
    name: str = typer.Option(..., "--name", "-n", help="Name clients see."),
    cadence: str = typer.Option(
        None, help="monthly, quarterly, yearly or once (new templates: monthly)."
    ),
    due_day: int = typer.Option(
        None, "--due-day", help="Day of the month documents are due (new: 10)."
    ),
    description: str = typer.Option(None, "--description", "-d"),
) -> None:
    """Create a template, or update it if the slug exists (only the options given).

    Example: monthlydocs template add vat --name "VAT return" --cadence quarterly
    """
    from ..templates import save_template
    from ._output import say

    obj = _obj(ctx)
    _id, created = save_template(
        obj.db,
        slug,
        obj.now(),
        name=name,
        cadence=cadence,
        due_day=due_day,
        description=description,
    )
    say(f"{'Created' if created else 'Updated'} template {slug.lower()}")


@app.command("slot")
def slot(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Template slug."),
    name: str = typer.Argument(..., help="Document name, e.g. 'Bank statements'."),
    description: str = typer.Option(
        None, "--description", "-d", help="What the client should send, in their words."
    ),
    optional: bool = typer.Option(None, "--optional/--required"),
    multiple: bool = typer.Option(
        None, "--multiple/--single", help="Whether several files are allowed."
    ),
    remove: bool = typer.Option(False, "--remove", help="Remove this slot."),
) -> None:
    """Add a document slot to a template, change it, or --remove it.

    Example: monthlydocs template slot vat "Sales ledger" -d "Your sales list" --multiple
    """
    from ..templates import remove_slot, save_slot
    from ._output import say

    db, moment = _obj(ctx).db, _obj(ctx).now()
    if remove:
        remove_slot(db, slug, name, moment)  # audited under "cli"
        say(f"Removed slot {name!r} from {slug}")
        return
    _id, created = save_slot(
        db,
        slug,
        name,
        description=description,
        optional=optional,
        multiple=multiple,
        now=moment,
    )
    say(f"{'Added' if created else 'Updated'} slot {name!r} in {slug}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List templates.

    Example: monthlydocs template list
    """
    from ..templates import list_templates
    from ._output import table

    rows = list_templates(_obj(ctx).db)
    table(
        f"{len(rows)} templates",
        ["Slug", "Name", "Cadence", "Due day", "Slots", "Clients"],
        [
            (
                r["slug"],
                r["name"],
                r["cadence"],
                r["due_day"],
                r["slot_count"],
                r["client_count"],
            )
            for r in rows
        ],
    )


@app.command("show")
def show(ctx: typer.Context, slug: str = typer.Argument(...)) -> None:
    """Show a template and its slots.

    Example: monthlydocs template show monthly
    """
    from ..templates import get_template, languages_of, slots
    from ._output import say, table

    db = _obj(ctx).db
    row = get_template(db, slug)
    say(f"{row['name']} ({row['slug']}): {row['cadence']}, due on day {row['due_day']}")
    if row["description"]:
        say(row["description"])
    say(f"Translated into: {' '.join(languages_of(row)) or 'none'}")
    table(
        None,
        ["#", "Slot", "Description", "Optional", "Multiple", "Translations"],
        [
            (
                s["position"],
                s["name"],
                s["description"],
                "yes" if s["optional"] else "",
                "yes" if s["multiple"] else "",
                " ".join(languages_of(s)),
            )
            for s in slots(db, row["id"])
        ],
    )


@app.command("remove")
def remove(ctx: typer.Context, slug: str = typer.Argument(...)) -> None:
    """Remove a template. One with checklists is archived and they are kept.

    Example: monthlydocs template remove payroll
    """
    from ..templates import remove_template
    from ._output import say

    obj = _obj(ctx)
    outcome = remove_template(obj.db, slug, obj.now())
    say(f"Template {slug} {outcome}")


@app.command("load")
def load(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="TOML file with [[template]] tables."),
) -> None:
    """Create or update templates from a TOML file (keep it under version control).

    Example: monthlydocs template load templates.example.toml
    """
    from ..templates import load_file
    from ._output import say

    obj = _obj(ctx)
    for slug, created in load_file(obj.db, file, obj.now()):
        say(f"{'Created' if created else 'Updated'} template {slug}")
