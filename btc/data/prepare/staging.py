"""The staging folder of one prepare run (`OUT.partial/`): resumable, swapped into OUT at the end.

A prepare writes its dataset in `OUT.partial/` and moves it into place only once `manifest.csv`
and `dataset.yaml` are written, so OUT is either absent, the previous complete dataset, or the new
complete dataset: never half-written (DESIGN.md, Conventions). Inside the staging folder each
finished input is recorded in a row cache (`.btc-rows.jsonl`, one JSON line per input, keyed by
the input and a fingerprint of it) once its files are written (`btc.data.prepare.writing`), and
only a recorded input whose files are all there is reused; an interrupted run therefore resumes
where it stopped, and a re-run over a complete OUT with the same parameters redoes nothing (the
complete dataset is hard-linked into a fresh staging folder, so the old OUT stays intact until
the swap: a rewritten image is a new file, never written through the link).

Ownership (`btc.data.prepare.ownership`): an existing OUT is replaced only when it is btc's
dataset (marker `.btc-dataset`, or a btc 0.1 dataset, adopted) and holds nothing btc did not
write; otherwise the prepare is refused in one line before any work. The staging folder is btc's
working folder, created by btc and marked by its state file (`.btc-prepare.json`); a folder of
that name without the mark is refused, never removed. The old OUT is moved aside to a uniquely
named sibling recorded in the new dataset's marker, and removed after the swap.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from btc.data.manifest import (
    DATASET_YAML,
    MANIFEST,
    file_columns,
    write_dataset_yaml,
    write_manifest,
)
from btc.errors import BtcError
from btc.io import atomic_write_text
from btc.lazy import lazy_import

from .ownership import (
    BTC_FILES,
    MARKER,
    ROWS_FILE,
    STATE_FILE,
    adopt,
    new_marker,
    read_marker,
    refusal,
    remove_retired,
    retired_name,
    write_marker,
)
from .writing import publish

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

STAGING_SUFFIX = ".partial"
STATE_VERSION = 1
MAX_THUMBS = 1 << 16  # 256 MiB of 64x64 thumbnails at most; the audit reads any other image again


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def staging_dir(out: str | Path) -> Path:
    """Where a prepare into `out` stages its files (inputs there are never read as sources)."""
    out = Path(os.path.abspath(out))
    return out.with_name(out.name + STAGING_SUFFIX)


class Stage:
    """The staging folder of one prepare run (`OUT.partial/`), resumable and swapped in at the end.

    `params` are the parameters that change the written files (e.g. size, pad, format); a
    staging folder or a complete OUT written with other parameters is not reused. Raises
    `BtcError` (one line) when OUT is not btc's to replace (see the module docstring).
    """

    def __init__(self, out: str | Path, *, source: str, params: dict[str, Any],
                 inputs: Iterable[str | Path] = ()) -> None:
        self.out = Path(os.path.abspath(out))
        self.source = source
        self.params = json.loads(json.dumps(params))  # normalised (tuples → lists), comparable
        self.state = {"version": STATE_VERSION, "source": source, "params": self.params}
        self.dir = staging_dir(self.out)
        self._cache: dict[str, dict[str, Any]] = {}
        self._lines: dict[str, str] = {}  # key → its line in the row cache, as written
        self.thumbs: dict[str, np.ndarray] = {}  # path → thumbnail of an image written by this run
        self._rows_fh = None
        self.reused = 0
        self._check(inputs)
        self._open()

    # ---- setup

    def _check(self, inputs: Iterable[str | Path]) -> None:
        out = self.out
        if not out.name:
            raise BtcError(f"{out}: not a usable output folder")
        cwd = Path.cwd().resolve()
        if out.resolve() == cwd or out.resolve() in cwd.parents:
            raise BtcError(f"{out}: the output folder must not be the current folder or contain it")
        for src in inputs:
            src = Path(src).resolve()
            o = out.resolve()
            if src == o or o in src.parents:
                raise BtcError(f"{out}: the output folder must not be or contain the input {src}")
        problem = refusal(out)
        if problem is not None:
            raise problem
        if self.dir.exists() and (not self.dir.is_dir() or self.dir.is_symlink()):
            raise BtcError(f"{self.dir}: exists and is not a btc staging folder; move it away and run again")
        if out.is_dir() and any(out.iterdir()):
            adopt(out, self.source)

    def _open(self) -> None:
        remove_retired(self.out.parent, read_marker(self.out))
        if self.dir.exists():
            state = _read_json(self.dir / STATE_FILE)
            if state is None and any(self.dir.iterdir()):
                raise BtcError(f"{self.dir}: exists and is not a btc staging folder; move it away and run again")
            remove_retired(self.out.parent, read_marker(self.dir))  # an interrupted swap
            if state is not None and state != self.state:
                shutil.rmtree(self.dir)  # btc's staging folder of other parameters
        if not self.dir.exists() or not (self.dir / STATE_FILE).is_file():
            seeded = False
            if not self.dir.exists() and self.out.is_dir() and _read_json(self.out / STATE_FILE) == self.state:
                seeded = self._seed_from_out()
            if not seeded:
                self.dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.dir / STATE_FILE, json.dumps(self.state, sort_keys=True) + "\n")
        self._load_cache()
        rows = self.dir / ROWS_FILE
        cut = rows.is_file() and rows.stat().st_size > 0 and not rows.read_bytes().endswith(b"\n")
        self._rows_fh = open(rows, "a", encoding="utf-8")  # noqa: SIM115
        if cut:  # a line cut by an interruption: start the next one on a line of its own
            self._rows_fh.write("\n")

    def _seed_from_out(self) -> bool:
        """Hard-link (or copy) the complete OUT into the staging folder to reuse its images."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.dir.name}.btc-seed-", dir=self.dir.parent))

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        try:
            # the row cache is appended to, so it is copied, never linked (OUT stays untouched)
            shutil.copytree(self.out, tmp / "seed", copy_function=link,
                            ignore=shutil.ignore_patterns(MANIFEST, DATASET_YAML, ROWS_FILE, MARKER))
            if (self.out / ROWS_FILE).is_file():
                shutil.copyfile(self.out / ROWS_FILE, tmp / "seed" / ROWS_FILE)
            os.replace(tmp / "seed", self.dir)
        except OSError:
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # created above by mkdtemp: btc's alone
        return True

    def _load_cache(self) -> None:
        path = self.dir / ROWS_FILE
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    self._cache[entry["key"]] = entry
                    self._lines[entry["key"]] = line.rstrip("\n") + "\n"
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by an interruption: that input is simply redone

    # ---- per input

    def path(self, relative: str) -> Path:
        return self.dir / relative

    def cached(self, key: str, fp: str) -> dict[str, Any] | None:
        """The row recorded for input `key` with fingerprint `fp`, if all its files are present."""
        entry = self._cache.get(key)
        if not entry or entry.get("fp") != fp:
            return None
        row = entry.get("row") or {}
        files = [v for k, v in row.items() if k in file_columns(row) and v]
        if not row.get("path") or not all((self.dir / f).is_file() for f in files):
            return None
        self.reused += 1
        return dict(row)

    def record(self, key: str, fp: str, row: dict[str, Any], thumb: np.ndarray | None = None) -> None:
        """Remember a finished input (after its files were written) so a re-run skips it, and its
        image's `thumb` (`btc.data.similarity.thumbnail`) for the audit at the end of the run."""
        if thumb is not None and len(self.thumbs) < MAX_THUMBS:
            self.thumbs[row["path"]] = thumb
        entry = {"key": key, "fp": fp, "row": row}
        line = json.dumps(entry, sort_keys=True) + "\n"
        self._cache[key] = entry
        self._lines[key] = line
        self._rows_fh.write(line)
        self._rows_fh.flush()

    # ---- end

    def close(self) -> None:
        if self._rows_fh is not None:
            self._rows_fh.close()
            self._rows_fh = None

    def discard(self) -> None:
        """Remove the staging folder (a run that found nothing usable: nothing to resume)."""
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def commit(self, df: pd.DataFrame, info: dict[str, Any], keys: Iterable[str]) -> None:
        """Write manifest.csv and dataset.yaml in the staging folder, prune, and swap into OUT."""
        self.close()
        atomic_write_text(self.dir / ROWS_FILE, "".join(self._lines[k] for k in sorted(set(keys)) if k in self._lines))
        referenced = set(BTC_FILES)
        for column in file_columns(df.columns):
            referenced.update(str(v) for v in df[column] if isinstance(v, str) and v)
        publish(write_manifest(df, self.dir))
        publish(write_dataset_yaml(self.dir, info))
        root = str(self.dir)
        for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
            for name in filenames:
                path = os.path.join(dirpath, name)
                if path[len(root) + 1:].replace(os.sep, "/") not in referenced:
                    Path(path).unlink(missing_ok=True)  # a file of an input gone since, or a temporary one
            if dirpath != root and not os.listdir(dirpath):
                os.rmdir(dirpath)
        self._swap(info.get("command"))

    def _swap(self, command: str | None) -> None:
        """Mark the staging folder as btc's dataset and move it into OUT (the old OUT retired)."""
        problem = refusal(self.out)  # a user may have put files in OUT while this prepare ran
        if problem is not None:
            raise BtcError(f"{problem}; the prepared dataset waits in {self.dir}: run the same command again")
        old_marker = read_marker(self.out)
        old = retired_name(self.out) if old_marker is not None else None
        retired = [{"name": old.name, "id": old_marker["id"]}] if old is not None else []
        write_marker(self.dir, new_marker(source=self.source, command=command, retired=retired))
        publish(self.dir / MARKER)
        if old is not None:
            os.replace(self.out, old)
            os.replace(self.dir, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:  # OUT absent, or an empty folder that the rename replaces
            os.replace(self.dir, self.out)
