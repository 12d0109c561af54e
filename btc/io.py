"""Atomic file writes: write to a temporary name in the same folder, then rename.

An interrupted command therefore leaves either the old file or the new one, never a half file
(DESIGN.md, Conventions).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and move the result to `path` atomically.

    `write` receives a temporary path in the destination folder (same file system, so the final
    `os.replace` is atomic) and must create the file there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual mode
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_write_yaml(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def atomic_torch_save(path: str | Path, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def read_yaml(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def refuse_foreign_file(path: str | Path, option: str, written_by_btc: Callable[[Path], bool]) -> None:
    """Before writing `path` for `option`: a folder, or a file btc did not write, is refused in one
    line (btc never overwrites what it did not write); a file it wrote earlier may be replaced."""
    from btc.errors import BtcError

    path = Path(path)
    if path.is_dir():
        raise BtcError(f"{option} {path} is a folder: name a file to write")
    if path.exists() and not written_by_btc(path):
        raise BtcError(f"{option} {path} exists and btc did not write it: choose another name, or move it away")


def starts_with(prefix: str) -> Callable[[Path], bool]:
    """A `written_by_btc` check: the file begins with `prefix` (read as text)."""

    def check(path: Path) -> bool:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read(len(prefix)) == prefix
        except OSError:
            return False

    return check
