"""`monthlydocs client import FILE`: parse the options, call the importer, print."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def import_clients(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="CSV or text file exported from Excel or an accounting tool.",
            dir_okay=False,
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show the mapping and the outcome; write nothing."
        ),
    ] = False,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="COLUMN=FIELD",
            help="Map a column to a field (name, first_name, last_name, company, email, "
            "phone, mobile, language, notes, ignore). Repeatable.",
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            "-t",
            metavar="SLUG",
            help="Assign every imported client to this template.",
        ),
    ] = None,
) -> None:
    """Import clients from a CSV file; clients already there (same email) are updated.

    Exits with code 1 when a row was rejected; the other rows are imported.

    Example: monthlydocs client import clients.csv --dry-run --map "Courriel=email"
    """
    from ..importing import import_clients as run_import
    from ..importing import parse_overrides
    from ..templates import get_template

    overrides = parse_overrides(map_ or [])
    obj = ctx.obj
    db = obj.db
    # Looked up first so that an unknown slug stops the import before it writes.
    template_row = get_template(db, template) if template else None
    result = run_import(
        db,
        file,
        obj.now(),
        region=obj.settings.firm.country,
        overrides=overrides,
        dry_run=dry_run,
        template_id=template_row["id"] if template_row else None,
    )

    _print_result(result, template_row)
    if result.rejected:
        raise typer.Exit(1)


def _print_result(result, template_row) -> None:
    from ..importing import describe_delimiter, describe_encoding
    from ._output import say, table, warn

    say(
        f"{result.file_name}: {describe_encoding(result.encoding)}, "
        f"{describe_delimiter(result.delimiter)}-separated, header on line "
        f"{result.header_line}"
    )
    table("Columns", ["Column", "Field"], result.mapping)
    typed = {column for pair in result.typed_phones for column in pair}
    if result.typed_phones:
        say(
            "Phone numbers read by their type, mobile first: "
            + ", ".join(f"{kind} / {value}" for kind, value in result.typed_phones)
        )
    ignored = [column for column in result.ignored if column not in typed]
    if ignored:
        say("Ignored columns: " + ", ".join(ignored))
    table(
        "Outcome",
        ["Outcome", "Rows"],
        [(outcome.value, count) for outcome, count in result.counts.items()],
        justify={"Rows": "right"},
    )
    if result.dry_run:
        say("Dry run: nothing was written.")
    if template_row:
        slug = template_row["slug"]
        if result.dry_run:
            would = len(result.rows) - len(result.rejected)
            say(f"Template {slug}: {_clients(would)} would be assigned")
        else:
            say(f"Template {slug}: {_clients(result.assigned)} newly assigned")
    if result.rejected:
        table(
            "Rejected rows",
            ["Line", "Reason"],
            [(row.line, row.reason) for row in result.rejected],
            justify={"Line": "right"},
        )
        count = len(result.rejected)
        warn(
            f"{count} {'row' if count == 1 else 'rows'} rejected: correct them and "
            "import the file again (clients already imported are updated, not "
            "duplicated)."
        )


def _clients(count: int) -> str:
    return f"{count} client" if count == 1 else f"{count} clients"
