"""`monthlydocs init` and `monthlydocs demo`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("demo")(demo)


def init(
    folder: Path = typer.Argument(..., help="Folder for the new workspace."),
) -> None:
    """Create a workspace: configuration with a fresh secret key, database, folders.

    Example: monthlydocs init ~/clients-docs
    """
    from ..workspace import create_workspace
    from ._output import say

    settings = create_workspace(folder)
    say(f"Created workspace in {folder}")
    say(f"  configuration  {settings.path}")
    say(f"  database       {settings.database_path}")
    say(f"  documents      {settings.files_dir}")
    say(f"  outbox         {settings.outbox_dir}")
    say(
        "Next: edit [firm] and [email] in the configuration, then "
        "`monthlydocs template load templates.example.toml`."
    )


def demo(
    ctx: typer.Context,
    folder: Path = typer.Argument(
        Path("monthlydocs-demo"), help="Folder for the demo workspace."
    ),
    reset: bool = typer.Option(
        False, "--reset", help="Delete the folder's demo workspace first."
    ),
    serve: bool = typer.Option(
        False, "--serve", help="Then serve the portal until Ctrl+C."
    ),
    port: int = typer.Option(8000, "--port", help="Port for --serve."),
) -> None:
    """Build a demo workspace: sample clients in five languages, the example templates,
    this month's checklists, and their link emails written to outbox/.

    Example: monthlydocs demo --reset --serve ./demo
    """
    import shutil

    from ..workspace import build_demo
    from ._output import say

    obj = ctx.find_root().obj
    if reset and (folder / "monthlydocs.toml").exists():
        shutil.rmtree(folder)
    settings, result, report = build_demo(folder, obj.now(), f"http://127.0.0.1:{port}")
    say(f"Demo workspace: {folder} (configuration {settings.path})")
    say(
        f"{result.created} checklists created; {report.sent} emails written to "
        f"{settings.outbox_dir}"
    )
    from ..checklists import links_by_id, status
    from ..db import open_db

    db = open_db(settings.database_path)
    from ..timeutil import local_date

    _counts, rows = status(db, local_date(obj.now(), settings.firm.timezone))
    urls = links_by_id(db, settings.portal.base_url)
    say("Portal links (one per checklist):")
    for r in rows:
        say(f"  {r['client']} ({r['template']} {r['period']}): {urls[r['id']]}")
    from ..workspace import DEMO_STAFF

    say(
        f"Staff dashboard: {settings.portal.base_url}/dashboard/ (sign in as "
        f"{DEMO_STAFF[0]}, password {DEMO_STAFF[1]})"
    )
    say(f"Try: monthlydocs --config {settings.path} status")
    if serve:
        from .serve import run_portal

        run_portal(settings, "127.0.0.1", port, verbose=obj.verbose)
