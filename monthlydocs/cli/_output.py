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


PLAIN_ABOVE_ROWS = 200


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    justify: dict[str, str] | None = None,
) -> None:
    """A table: drawn by rich on a terminal; plain aligned columns for pipes, logs and
    long listings (rich lays out every row first, which takes seconds at 10,000)."""
    justify = justify or {}
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    if not sys.stdout.isatty() or len(cells) > PLAIN_ABOVE_ROWS:
        _plain(title, columns, cells, justify)
        return
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
    for row in cells:
        out.add_row(*row)
    console.print(out)


def _plain(
    title: str | None, columns: Sequence[str], cells: list[list[str]], justify
) -> None:
    widths = [len(column) for column in columns]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if justify.get(column) == "right" else value.ljust(width)
            for value, width, column in zip(values, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(columns), "  ".join("-" * width for width in widths)]
    out += [line(row) for row in cells]
    sys.stdout.write("\n".join(out) + "\n")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def count(number: int, noun: str, plural: str | None = None) -> str:
    """'1 client', '2 clients' (the command line speaks English only)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


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
