"""Decode a dataset once, share it between processes: a uint8 array file in the user's cache.

`btc cv --parallel-folds N` runs folds in N processes; without this each would decode every
image again. The first process to need the images at a size decodes them
(`btc.data.dataset.load_images`) and writes them to
`$BTC_CACHE` (default `$XDG_CACHE_HOME/btc`, else `~/.cache/btc`) `/images/<key>.npy`,
atomically; the others map that file read-only (`np.load(mmap_mode="r")`), so N processes hold
one copy in the page cache (copy-on-write mapping). The key is the manifest's sha256 with the task's paths, the size and
the interpolation: a changed dataset never reads a stale array. Nothing is written into the
dataset folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from btc.data.dataset import load_images
from btc.io import atomic_write
from btc.progress import SILENT, Progress


def cache_dir() -> Path:
    root = os.environ.get("BTC_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "btc"
    return Path(root) / "images"


def cache_key(manifest: Path, paths: Sequence[str], size: int, interpolation: str) -> str:
    digest = hashlib.sha256(Path(manifest).read_bytes())
    digest.update("\n".join(paths).encode())
    return f"{digest.hexdigest()[:24]}-{size}-{interpolation}"


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array)


def cached_images(root: Path, manifest: Path, paths: Sequence[str], size: int, interpolation: str, *,
                  progress: Progress = SILENT) -> torch.Tensor:
    """uint8 (N, 1, size, size) of `paths` (relative to `root`): from the cache, else decoded and cached."""
    file = cache_dir() / f"{cache_key(manifest, paths, size, interpolation)}.npy"
    if file.is_file():
        try:
            array = np.load(file, mmap_mode="c")  # copy-on-write: pages shared until written
            if array.shape == (len(paths), 1, size, size) and array.dtype == np.uint8:
                return torch.from_numpy(array)
        except (OSError, ValueError):
            pass  # a damaged cache file is decoded again and replaced
    images = load_images([root / p for p in paths], size, interpolation, progress=progress)
    try:
        atomic_write(file, lambda tmp: _save(tmp, images.numpy()))
    except OSError:
        pass  # a read-only or full cache only costs the next process a decode
    return images
