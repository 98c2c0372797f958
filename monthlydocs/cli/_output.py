"""The only module that imports rich; commands import it inside their functions so that
``monthlydocs --help`` (started often by cron) stays fast."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    justify: dict[str, str] | None = None,
) -> None:
    justify = justify or {}
    out = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        out.add_column(column, justify=justify.get(column, "left"), overflow="fold")
    for row in rows:
        out.add_row(*("" if value is None else str(value) for value in row))
    console.print(out)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def say(text: str) -> None:
    console.print(text, markup=False)


def warn(text: str) -> None:
    err_console.print(text, markup=False)


def progress(total: int, description: str):
    """A progress bar on stderr, only when stderr is a terminal (not under cron)."""
    from rich.progress import Progress

    return Progress(
        console=err_console, transient=True, disable=not err_console.is_terminal
    )
