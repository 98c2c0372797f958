"""The only module that imports rich; commands import it inside their functions so that
``monthlydocs --help`` (started often by cron) stays fast."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def _width(stream) -> int | None:
    """Terminals give their own width; logs and pipes get room for whole table rows."""
    if stream.isatty() or os.environ.get("COLUMNS"):
        return None
    return 160


console = Console(highlight=False, soft_wrap=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    justify: dict[str, str] | None = None,
) -> None:
    justify = justify or {}
    from rich import box

    out = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for position, column in enumerate(columns):
        # The first column (a name) may wrap; the others are short values kept whole.
        out.add_column(
            column,
            justify=justify.get(column, "left"),
            overflow="fold",
            no_wrap=position > 0,
        )
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
