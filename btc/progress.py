"""Progress and notes, from the parts to whoever shows them (DESIGN.md: the parts never print).

A long-running part (prepare, decoding, training, a benchmark) takes a `progress: Progress`
argument, `SILENT` by default, and reports through it: bars with `bar()` / `track()` / `add()`,
and lines the user should see while the work goes on (a skipped file, a warning) with `note()`.
This base class does nothing, so the parts are usable as a library without output; the command
layer passes `btc.commands.ui.RichProgress`, which draws rich progress bars on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

Advance = Callable[..., None]


class Progress:
    """Silent progress: every method accepts the call and shows nothing.

    A context manager, so callers can write `with progress:` whichever progress they hold.
    """

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add(self, description: str, total: float | None = None, *, transient: bool = False) -> int:
        """Start a bar; returns its handle for `update` / `remove`."""
        return 0

    def update(self, task: int, *, advance: float = 0, completed: float | None = None,
               total: float | None = None, info: str | None = None,
               description: str | None = None) -> None:
        """Move a bar forward (`advance`), set its position, total, description or info text."""

    def remove(self, task: int) -> None:
        """Take a finished bar off the screen."""

    def note(self, message: str, *, style: str = "") -> None:
        """A line the user should read while the work goes on (warning, skipped input)."""

    @contextmanager
    def bar(self, description: str, total: float | None, *, transient: bool = False) -> Iterator[Advance]:
        """A bar for the duration of the block; yields `advance(n=1, info=None)`."""
        task = self.add(description, total, transient=transient)

        def advance(n: float = 1, info: str | None = None) -> None:
            self.update(task, advance=n, info=info)

        try:
            yield advance
        finally:
            if transient:
                self.remove(task)

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        """Iterate over `items` with a bar."""
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        with self.bar(description, total) as advance:
            for item in items:
                yield item
                advance()


SILENT = Progress()

