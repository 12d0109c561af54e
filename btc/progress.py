"""Rich progress bars for long work, silenced with `--quiet` (or when output is not a terminal
and the caller asks for quiet)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(stderr=True)


def make_progress(quiet: bool = False, transient: bool = False) -> Progress:
    """A rich Progress with the columns btc uses everywhere (text, bar, n/N, elapsed, eta)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=quiet,
        transient=transient,
    )


@contextmanager
def progress_bar(description: str, total: int | None, quiet: bool = False) -> Iterator[callable]:
    """Context manager yielding `advance(n=1, info='')` for one bar."""
    with make_progress(quiet) as progress:
        task = progress.add_task(description, total=total, info="")

        def advance(n: int = 1, info: str | None = None) -> None:
            if info is None:
                progress.advance(task, n)
            else:
                progress.update(task, advance=n, info=info)

        yield advance


def track(items: Iterable[T], description: str, total: int | None = None, quiet: bool = False) -> Iterator[T]:
    """Iterate over `items` with a progress bar."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(description, total, quiet) as advance:
        for item in items:
            yield item
            advance()
