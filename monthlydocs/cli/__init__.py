"""The ``monthlydocs`` command: one Typer sub-app per command group, assembled here.

Command modules import only typer at the top; everything else is imported inside the
command, because cron starts this program often and ``--help`` must stay fast.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import typer
from typer.core import TyperGroup

from ..errors import MonthlydocsError
from ._context import Context

# Typer's own exits and usage errors (it vendors click, so name them through typer).
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.BadParameter.__mro__[2])


class _Group(TyperGroup):
    """Turns the core's errors into one line on stderr and a non-zero exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MonthlydocsError as exc:
            _fail(ctx, str(exc))
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            # Not raised on purpose: still one line, with the details under --verbose.
            _fail(
                ctx,
                f"unexpected {type(exc).__name__}: {exc} "
                "(run with --verbose for details)",
            )


def _fail(ctx, message: str) -> None:
    obj = ctx.find_root().obj
    if isinstance(obj, Context) and obj.verbose:
        traceback.print_exc(file=sys.stderr)
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


app = typer.Typer(
    cls=_Group,
    name="monthlydocs",
    help="Collect your clients' documents every month, without chasing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Path = typer.Option(
        None,
        "--config",
        "-c",
        envvar="MONTHLYDOCS_CONFIG",
        help="Workspace configuration file (default: ./monthlydocs.toml).",
        dir_okay=False,
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show details, including tracebacks on errors."
    ),
) -> None:
    ctx.obj = Context(config, verbose)


def _register() -> None:
    from . import (
        api,
        clients,
        daemon,
        generate,
        remind,
        review,
        serve,
        templates,
        workspace,
    )

    workspace.register(app)
    app.add_typer(clients.app, name="client")
    app.add_typer(templates.app, name="template")
    generate.register(app)
    remind.register(app, clients.app)
    serve.register(app)
    daemon.register(app)
    review.register(app)
    api.register(app)


_register()


def main() -> None:
    app()
