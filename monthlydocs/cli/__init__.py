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
_USAGE_ERROR = typer.BadParameter.__mro__[1]
_PASS_THROUGH = (typer.Exit, typer.Abort, typer.BadParameter.__mro__[2])


class _Group(TyperGroup):
    """Turns the core's errors and mistakes in options into one line on stderr and a
    non-zero exit code (1 for errors, 2 for usage, as click does)."""

    def make_context(self, info_name, args, parent=None, **extra):
        # Options of the program itself (--config DIR, an unknown option) are parsed
        # here, before invoke.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _USAGE_ERROR as exc:
            _usage(exc, verbose=bool({"--verbose", "-v"} & set(args)))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MonthlydocsError as exc:
            _fail(ctx, str(exc))
        except KeyboardInterrupt:
            typer.echo("Interrupted.", err=True)
            raise typer.Exit(130) from None
        except _USAGE_ERROR as exc:
            obj = ctx.find_root().obj
            _usage(exc, verbose=isinstance(obj, Context) and obj.verbose)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            # Not raised on purpose: still one line, with the details under --verbose.
            _fail(
                ctx,
                f"unexpected {type(exc).__name__}: {exc} "
                "(run with --verbose for details)",
            )


def _usage(exc, verbose: bool) -> None:
    """A usage error as one line (click's usage block too under --verbose); exit 2."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # a group without command: its help
        raise exc
    if verbose:
        exc.show()
        raise typer.Exit(exc.exit_code) from None
    hint = ""
    if exc.ctx is not None:
        hint = f" (see `{exc.ctx.command_path} --help`)"
    typer.echo(f"Error: {exc.format_message()}{hint}", err=True)
    raise typer.Exit(exc.exit_code) from None


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
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show details, including tracebacks on errors."
    ),
) -> None:
    if config is not None and config.is_dir():
        raise _USAGE_ERROR(
            f"--config {config} is a folder: give the file, e.g. --config "
            f"{config / 'monthlydocs.toml'}"
        )
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
