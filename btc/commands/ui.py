"""The screen: the only place (with `btc/cli.py`) that creates rich consoles.

`out` is stdout (results, tables, `--json`), `err` is stderr (progress, notes, errors).
`RichProgress` implements `btc.progress.Progress` with rich bars on stderr; `--quiet` passes
`SILENT` instead, so the parts run the same way and only the final one-line result is printed.

Both consoles soft-wrap (a long line is never broken mid-sentence) and, when they do not write
to a terminal (piped, redirected to a file) and `COLUMNS` is unset, lay tables out on
`PIPE_WIDTH` columns instead of rich's default 80, which cut the headings of the metrics tables.
"""

from __future__ import annotations

import json
import os
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _RichBars

from btc.progress import SILENT, Progress

PIPE_WIDTH = 160


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


out = _console()
err = _console(stderr=True)


class RichProgress(Progress):
    """Rich progress bars (text, bar, n/N, elapsed, eta, info) and notes printed above them."""

    def __init__(self) -> None:
        self._bars = _RichBars(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=err,
        )
        self._started = False

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._bars.stop()
            self._started = False

    def add(self, description: str, total: float | None = None, *, transient: bool = False) -> int:
        if not self._started:
            self._bars.start()
            self._started = True
        return self._bars.add_task(escape(description), total=total, info="")

    def update(self, task: int, *, advance: float = 0, completed: float | None = None,
               total: float | None = None, info: str | None = None,
               description: str | None = None) -> None:
        fields: dict[str, Any] = {}
        if info is not None:
            fields["info"] = escape(info)
        if completed is not None:
            fields["completed"] = completed
        if total is not None:
            fields["total"] = total
        if description is not None:
            fields["description"] = escape(description)
        self._bars.update(task, advance=advance or None, **fields)

    def remove(self, task: int) -> None:
        self._bars.remove_task(task)

    def note(self, message: str, *, style: str = "") -> None:
        text = escape(message)
        err.print(f"[{style}]{text}[/{style}]" if style else text)


def progress_for(quiet: bool) -> Progress | RichProgress:
    """`SILENT` under --quiet, else rich bars (use as a context manager when it is rich)."""
    return SILENT if quiet else RichProgress()


def print_json(obj: Any) -> None:
    """`--json`: one JSON document on stdout and nothing else there."""
    print(json.dumps(obj, indent=2))


def note(message: str, *, style: str = "") -> None:
    text = escape(message)
    err.print(f"[{style}]{text}[/{style}]" if style else text)
