"""The raw inputs of a prepare: listing a source tree, reading an input image within the run's
limits, naming outputs, and what could not be used.

Nothing an input does is dropped silently (DESIGN.md, Conventions): an unreadable folder or file,
an image over the pixel limit or under the smallest side (`btc.data.limits`) becomes a `Skipped`
entry, listed in dataset.yaml, in the `PrepareSummary` and on screen.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from btc.data.images import ImageReadError, read_gray_uint8
from btc.data.limits import ImageLimits
from btc.errors import BtcError


class Skipped(NamedTuple):
    """An input that prepare could not use (or flagged), and why: `(path, reason)`."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def error_reason(exc: BaseException, path: Path | str | None = None) -> str:
    """The message of a user-facing error without a leading '<path>: ' (the path is listed apart)."""
    if isinstance(exc, OSError) and not isinstance(exc, BtcError):
        return f"cannot read ({exc.strerror or exc.__class__.__name__})"
    text = str(exc)
    if path is not None and text.startswith(f"{path}: "):
        text = text[len(f"{path}: "):]
    return text or exc.__class__.__name__


def task_limits(task: dict) -> ImageLimits:
    """The image limits a worker's task carries (`btc.data.prepare.work.Work` puts them there)."""
    return _limits(**task["limits"]) if "limits" in task else ImageLimits.from_env()


@functools.lru_cache(maxsize=8)
def _limits(**values: int) -> ImageLimits:  # one object per run's limits, not one per image
    return ImageLimits(**values)


def read_input_image(task: dict) -> np.ndarray:
    """Decode `task["src"]` as grayscale uint8 (`btc.data.images.read_gray_uint8`) within the
    task's limits: pixel limit (from the header, before decoding) and smallest side. Raises
    `ImageReadError` naming the file and the reason."""
    limits = task_limits(task)
    image = read_gray_uint8(task["src"], max_pixels=limits.max_pixels)
    problem = limits.side_problem(image.shape[1], image.shape[0])
    if problem:
        raise ImageReadError(f"{task['src']}: {problem}")
    return image


def rel_posix(path: Path, root: Path) -> str:
    """`path` relative to `root` with forward slashes (or `path` itself when outside `root`)."""
    text, base = str(path), str(root).rstrip(os.sep) + os.sep
    if text.startswith(base) and os.sep == "/" and "/../" not in text[len(base) - 1:]:
        return text[len(base):]  # the common case, without building Path objects
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def unique_names(stems: list[str], suffixes: list[str]) -> list[str]:
    """File stems made unique within a folder: a stem used twice keeps its old suffix (a_jpg)."""
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return [s if counts[s] == 1 else f"{s}_{suf.lstrip('.').lower() or 'noext'}"
            for s, suf in zip(stems, suffixes, strict=True)]


def list_files(folder: Path, skipped: list[Skipped], rel_to: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every regular file under `folder`, sorted; unreadable folders become one skipped entry."""
    excluded = {p.resolve() for p in exclude}
    files: list[Path] = []

    def onerror(err: OSError) -> None:
        where = Path(err.filename) if err.filename else folder
        rel = rel_posix(where, rel_to) or "."
        skipped.append(Skipped(rel + "/", f"cannot read folder ({err.strerror or err})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() not in excluded)
        files.extend(here / f for f in filenames)
    return sorted(files, key=lambda f: f.parts)  # Path order, without Path comparisons
