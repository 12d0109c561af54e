"""Which prepared datasets, and which files in them, are btc's to replace (DESIGN.md, Conventions:
btc never deletes or overwrites what it did not write).

A prepare marks the dataset it writes with `.btc-dataset` (JSON: the command, the source, a
unique id, btc's version). A dataset written by btc 0.1, before the marker existed, is recognised
by its dataset.yaml provenance (`tool: btc` or a `btc_version`, which btc 0.1 always wrote) and
adopted: the marker is added. Inside a dataset btc owns only what it wrote: the marker,
`manifest.csv`, `dataset.yaml`, its resume files, and the files the manifest names (images,
masks). `foreign_paths` lists everything else — a user's notes, an analysis folder, a train run
saved there, a symlink (btc never writes one) — and a prepare into an OUT holding any of them is
refused in one line naming up to five (`refusal`).

When a prepare replaces a dataset, the old one is moved aside to a sibling named
`.OUT.btc-old-<random>` and removed after the swap. The new dataset's marker records that name
and the old dataset's id (`retired`), so a folder left by an interrupted swap is removed by the
next prepare — and only when it still carries that id: a user's folder of a similar name is never
touched, and nothing else outside OUT is ever deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from btc import __version__
from btc.data.manifest import DATASET_YAML, MANIFEST, file_columns
from btc.errors import BtcError
from btc.io import atomic_write_json
from btc.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

MARKER = ".btc-dataset"
STATE_FILE = ".btc-prepare.json"
ROWS_FILE = ".btc-rows.jsonl"
#: The files btc writes at the top of every prepared dataset (besides the images the manifest names).
BTC_FILES = (MARKER, STATE_FILE, ROWS_FILE, MANIFEST, DATASET_YAML)
RETIRED_PREFIX = ".btc-old-"
MAX_NAMED = 5


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The `.btc-dataset` marker of `folder`, or None when absent or not btc's."""
    marker = _read_json(Path(folder) / MARKER)
    if isinstance(marker, dict) and marker.get("kind") == "dataset" and isinstance(marker.get("id"), str):
        return marker
    return None


def new_marker(*, source: str, command: str | None, retired: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A fresh marker: a unique id, the command, the source, btc's version, the retired folders."""
    return {"kind": "dataset", "id": uuid.uuid4().hex, "source": source, "command": command,
            "btc_version": __version__, "created": time.time(), "retired": retired or []}


def write_marker(folder: Path, marker: dict[str, Any]) -> None:
    atomic_write_json(Path(folder) / MARKER, marker)


def written_by_btc_01(folder: Path) -> bool:
    """A dataset btc 0.1 wrote before the marker existed: its dataset.yaml names btc as provenance."""
    path = Path(folder) / DATASET_YAML
    if not path.is_file() or path.is_symlink():
        return False
    try:
        info = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    provenance = info.get("provenance") if isinstance(info, dict) else None
    return isinstance(provenance, dict) and (provenance.get("tool") == "btc" or "btc_version" in provenance)


def is_btc_dataset(folder: Path) -> bool:
    """Marked by btc, or written by btc 0.1 (see `written_by_btc_01`)."""
    return read_marker(folder) is not None or written_by_btc_01(folder)


def adopt(folder: Path, source: str) -> dict[str, Any]:
    """The marker of a btc dataset, written first for a btc 0.1 dataset that has none."""
    marker = read_marker(folder)
    if marker is None:
        marker = new_marker(source=source, command=None)
        marker["adopted"] = "written by btc 0.1 (dataset.yaml provenance)"
        write_marker(folder, marker)
    return marker


def owned_files(folder: Path) -> set[str]:
    """Relative paths btc wrote in the dataset `folder`: its own files and what the manifest names.

    The manifest is read leniently (any columns, no validation) and the row cache as well, so that
    a dataset whose manifest a user broke still has its images recognised.
    """
    folder = Path(folder)
    owned = set(BTC_FILES)
    try:
        df = pd.read_csv(folder / MANIFEST, dtype=str, keep_default_na=False)
        for column in file_columns(df.columns):
            owned.update(v for v in df[column] if v)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        pass
    try:
        with open(folder / ROWS_FILE, encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line).get("row") or {}
                except (ValueError, AttributeError):
                    continue
                if isinstance(row, dict):
                    owned.update(str(row[c]) for c in file_columns(row) if row[c])
    except (OSError, UnicodeDecodeError):
        pass
    return owned


def _is_btc_temp(name: str) -> bool:
    """A temporary file of an interrupted atomic write of one of btc's own files (`.name.*.tmp`)."""
    return name.endswith(".tmp") and any(name.startswith(f".{n}.") or name.startswith(f"{n}.")
                                         for n in BTC_FILES)


def foreign_paths(folder: Path, owned: set[str] | None = None) -> list[str]:
    """Every path under `folder` btc did not write (folders as `name/`, not descended), sorted.

    `owned` are the relative paths btc wrote (`owned_files`); None means none (a folder that is
    not a btc dataset: everything in it is the user's). Symlinks are never btc's.
    """
    folder = Path(folder)
    owned = owned or set()
    owned_dirs = {str(Path(p).parent.as_posix()) for p in owned}
    owned_dirs |= {d for p in list(owned_dirs) for d in (str(q.as_posix()) for q in Path(p).parents)}
    found: list[str] = []

    def unreadable(err: OSError) -> None:
        where = Path(err.filename) if err.filename else folder
        found.append(where.relative_to(folder).as_posix() + "/" if where != folder else "./")

    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        here = Path(dirpath)
        rel_dir = here.relative_to(folder).as_posix()
        keep = []
        for d in sorted(dirnames):
            rel = d if rel_dir == "." else f"{rel_dir}/{d}"
            if rel in owned_dirs and not (here / d).is_symlink():
                keep.append(d)
            else:
                found.append(rel + "/")
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if (rel not in owned and not (rel_dir == "." and _is_btc_temp(name))) or (here / name).is_symlink():
                found.append(rel)
    return sorted(found)


def named(paths: list[str]) -> str:
    """Up to five paths, then how many more: `a, b, c, d, e and 3 more`."""
    shown = ", ".join(paths[:MAX_NAMED])
    return shown + (f" and {len(paths) - MAX_NAMED} more" if len(paths) > MAX_NAMED else "")


def refusal(out: Path) -> BtcError | None:
    """Why btc may not replace the existing folder `out` (one line), or None when it may.

    `out` may be replaced when it is absent, empty, or a btc dataset holding only what btc wrote.
    """
    if not out.exists():
        return None
    if not out.is_dir():
        return BtcError(f"{out}: exists and is not a folder; choose another OUT")
    if not any(out.iterdir()):
        return None
    if not is_btc_dataset(out):
        return BtcError(f"{out}: holds files btc did not write ({named(foreign_paths(out))}); "
                        "prepare into a new or empty folder (btc replaces only a dataset it prepared)")
    foreign = foreign_paths(out, owned_files(out))
    if foreign:
        return BtcError(f"{out}: a dataset btc prepared, but it also holds files btc did not write "
                        f"({named(foreign)}); move them out of it, or prepare into another folder")
    return None


def retired_name(out: Path) -> Path:
    """A fresh sibling name for the dataset `out` while it is being replaced (never an existing path)."""
    while True:
        path = out.with_name(f".{out.name}{RETIRED_PREFIX}{uuid.uuid4().hex[:12]}")
        if not os.path.lexists(path):
            return path


def remove_retired(parent: Path, marker: dict[str, Any] | None) -> None:
    """Remove the old datasets `marker` records as retired, if each still carries its recorded id."""
    for entry in (marker or {}).get("retired") or []:
        if not isinstance(entry, dict):
            continue
        name, old_id = str(entry.get("name") or ""), entry.get("id")
        if not name.startswith(".") or RETIRED_PREFIX not in name or "/" in name or not old_id:
            continue
        path = parent / name
        if path.is_dir() and not path.is_symlink() and (read_marker(path) or {}).get("id") == old_id:
            shutil.rmtree(path, ignore_errors=True)
