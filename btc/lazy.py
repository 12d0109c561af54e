"""Modules imported on first use: pandas costs 0.3–0.4 s of every command's start.

`btc prepare` (issue 17: at the speed of a plain script) needs pandas only for the manifest and
audit at its end, and `btc --help` not at all. A module that uses pandas writes

    if TYPE_CHECKING:
        import pandas as pd
    else:
        pd = lazy_import("pandas")

and uses `pd.` as usual; the import happens at the first attribute read (from any thread: the
import system's module lock makes a concurrent first use wait for the one import).
`btc.data.prepare.work.Work.run` imports pandas in a thread while its workers run.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands for module `name` until an attribute is read, then is its attributes."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self._name)  # a dict lookup once imported

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_import(name: str) -> Any:
    """A stand-in for `import name` that imports it at the first attribute read."""
    return LazyModule(name)
