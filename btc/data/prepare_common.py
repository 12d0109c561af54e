"""Shared machinery of every `btc prepare …`: staging, resume, parallel work, the final write.

A prepare writes its dataset in a staging folder next to OUT (`OUT.partial/`) and only moves it
into place once `manifest.csv` and `dataset.yaml` are written, so OUT is either absent, the
previous complete dataset, or the new complete dataset: never half-written (DESIGN.md,
Conventions). Inside the staging folder every image is written atomically (`btc.io`), and each
finished input is recorded in a row cache (`.btc-rows.jsonl`, one JSON line per input, keyed by
the input and a fingerprint of it); an interrupted run therefore resumes where it stopped and a
re-run over a complete OUT with the same parameters redoes nothing (the complete dataset is
hard-linked into a fresh staging folder, so the old OUT stays intact until the swap).

Typical use (see `btc.data.kaggle` for a complete example)::

    stage = Stage(out, source="kaggle", params={"size": 256, ...})   # validates OUT, resumes
    work = Work(stage, skipped)
    for key, src_path in inputs:            # cached row of an unchanged input, or a task
        work.add(key, src_path, {"path": ..., "size": ...}, worker=prepare_one, description="prepare")
    work.run(workers, quiet)                # workers write into stage.dir and return rows,
                                            # each recorded at once (resumable)
    finish(stage, work.rows, work.keys, ...)   # manifest, audit, dataset.yaml, swap, summary

A worker reads `task["src"]` and returns `done(task, row)` or `failed(task, reason)`;
`read_gray_row` is the whole worker of a plain image file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from rich.markup import escape

from btc import __version__
from btc.errors import BtcError
from btc.io import atomic_write_bytes, atomic_write_text
from btc.progress import console, progress_bar

from .images import (
    ImageReadError,
    encode_png,
    phash64,
    pixel_sha256,
    read_image,
    to_grayscale,
    to_uint8,
)
from .manifest import (
    DATASET_YAML,
    MANIFEST,
    split_counts,
    validate_manifest,
    write_dataset_yaml,
    write_manifest,
)

STATE_FILE = ".btc-prepare.json"
ROWS_FILE = ".btc-rows.jsonl"
STAGING_SUFFIX = ".partial"
STATE_VERSION = 1

#: Index order of the tumour classes shared by the Kaggle and Figshare datasets, so tables join.
CLASS_ORDER = ("glioma", "meningioma", "notumor", "pituitary")
TUMOR_CLASSES = ("glioma", "meningioma", "pituitary")


# --------------------------------------------------------------------------- small helpers


@dataclass(frozen=True)
class Skipped:
    """An input that prepare could not use, and why (listed in dataset.yaml and by the audit)."""

    path: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


def fingerprint(path: Path, *extra: object) -> str:
    """Cheap identity of an input file: size and modification time (plus any `extra` values)."""
    st = path.stat()
    return "-".join([str(st.st_size), str(st.st_mtime_ns), *map(str, extra)])


def error_reason(exc: BaseException, path: Path | str | None = None) -> str:
    """The message of a user-facing error without a leading '<path>: ' (the path is listed apart)."""
    if isinstance(exc, OSError) and not isinstance(exc, BtcError):
        return f"cannot read ({exc.strerror or exc.__class__.__name__})"
    text = str(exc)
    if path is not None and text.startswith(f"{path}: "):
        text = text[len(f"{path}: "):]
    return text or exc.__class__.__name__


def posix(path: Path) -> str:
    return path.as_posix()


def ordered_classes(labels: Iterable[str], order: Iterable[str] = CLASS_ORDER) -> list[str]:
    """Present labels in `order` (then any others alphabetically)."""
    present = set(labels)
    known = [c for c in order if c in present]
    return known + sorted(present - set(known))


def default_tasks(classes: list[str]) -> dict[str, dict[str, list[str]]]:
    """Paper 001's two tasks, where the labels allow them (both need `notumor` and tumour images).

    `presence: {tumor: [...], no_tumor: [notumor]}` and, with two or more tumour classes,
    `tumor_type: {glioma: [glioma], ...}` over the tumour images only: the second stage of a
    presence → type chain (`btc two-stage`). Paper 001's second stage is the tumour's source
    (primary or metastasis), which needs metastasis labels (`btc prepare folder` with a labels
    file); on the public datasets the tumour type takes its place.
    """
    tumor = [c for c in classes if c in TUMOR_CLASSES]
    if "notumor" not in classes or not tumor:
        return {}
    tasks = {"presence": {"tumor": tumor, "no_tumor": ["notumor"]}}
    if len(tumor) >= 2:
        tasks["tumor_type"] = {c: [c] for c in tumor}
    return tasks


def resize_square(image: np.ndarray, size: int | None, *, nearest: bool = False) -> np.ndarray:
    """Resize to size×size (no aspect preservation, as the papers do); area when shrinking."""
    if size is None or image.shape[:2] == (size, size):
        return image
    if nearest:
        interp = cv2.INTER_NEAREST
    elif image.shape[0] * image.shape[1] >= size * size:
        interp = cv2.INTER_AREA
    else:
        interp = cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def encode_image(image: np.ndarray, image_format: str = "png") -> bytes:
    """PNG (lossless, default) or JPEG (quality 95) bytes."""
    if image_format == "png":
        return encode_png(image)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ImageReadError("JPEG encoding failed")
    return buf.tobytes()


def write_image(path: Path, image: np.ndarray, image_format: str = "png") -> dict[str, Any]:
    """Write `image` atomically and return the manifest fields of the image as written.

    The fingerprints are of the pixels a reader will decode, so for JPEG the encoded bytes are
    decoded again (lossy); for PNG they are the pixels given.
    """
    data = encode_image(image, image_format)
    written = image
    if image_format != "png":
        written = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    atomic_write_bytes(path, data)
    publish(path)
    return {"height": int(written.shape[0]), "width": int(written.shape[1]),
            "sha256": pixel_sha256(written), "phash": phash64(written)}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def publish(path: Path) -> None:
    """Give a written file the usual permissions (atomic writes create it private, 0600)."""
    try:
        os.chmod(path, _FILE_MODE)
    except OSError:
        pass


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
        try:
            rel = posix(where.relative_to(rel_to)) or "."
        except ValueError:
            rel = str(where)
        skipped.append(Skipped(rel + "/", f"cannot read folder ({err.strerror or err})"))

    for dirpath, dirnames, filenames in os.walk(folder, onerror=onerror):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() not in excluded)
        files.extend(here / f for f in filenames)
    return sorted(files)


def file_columns(columns: Iterable[str]) -> list[str]:
    """Manifest columns naming files inside the dataset: `path` and every `*_path` but `orig_path`."""
    return [c for c in columns if c == "path" or (c.endswith("_path") and c != "orig_path")]


def rel_posix(path: Path, root: Path) -> str:
    try:
        return posix(path.relative_to(root))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- parallel work


def _init_worker() -> None:
    # Ctrl-C is handled by the main process alone (it cancels the pool); one OpenCV thread per
    # process, since the processes already use every core.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    # libjpeg/libpng print their own warnings ("Corrupt JPEG data: …") on stderr, over the
    # progress bar; the reason a file is unusable comes back as its skip line instead. Python
    # errors of a worker still reach the main process (with their traceback) through the pool.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _terminate_as_interrupt() -> Any:
    """While workers run, SIGTERM stops like Ctrl-C (workers shut down, finished work kept)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _run_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [fn(item) for item in chunk]


def default_workers(workers: int | None) -> int:
    return max(1, workers if workers else (os.cpu_count() or 1))


def parallel_map(fn: Callable[[Any], Any], items: list[Any], *, workers: int | None, description: str,
                 quiet: bool = False) -> Iterator[Any]:
    """`fn(item)` for every item over `workers` processes (completion order), with a progress bar.

    `fn` must be a module-level function (it is sent to worker processes by name). With one
    worker, or very few items, everything runs in this process.
    """
    n_workers = min(default_workers(workers), max(1, len(items)))
    with progress_bar(description, len(items), quiet) as advance:
        if n_workers == 1 or len(items) < 4:
            for item in items:
                result = fn(item)
                advance()
                yield result
            return
        chunk = max(1, min(32, len(items) // (n_workers * 8)))
        chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
        # forkserver: workers do not inherit this process's threads (rich's refresh thread,
        # OpenCV's pool), which a plain fork can deadlock on.
        context = multiprocessing.get_context("forkserver")
        # imported once in the fork server, so each worker starts without re-importing numpy/cv2
        context.set_forkserver_preload([fn.__module__])
        pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=context, initializer=_init_worker)
        previous = _terminate_as_interrupt()
        try:
            pending = set()
            queue = iter(chunks)
            for part in queue:  # keep at most 2 chunks per worker in flight
                pending.add(pool.submit(_run_chunk, fn, part))
                if len(pending) >= 2 * n_workers:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        raise BtcError("a worker process died (out of memory, or a crash while decoding "
                                       "a file); finished images are kept: re-run the same command, "
                                       "with --workers 1 to find the file") from None
                    advance(len(results))
                    yield from results
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(_run_chunk, fn, nxt))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


# --------------------------------------------------------------------------- staging


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_prepared_dataset(path: Path) -> bool:
    return (path / MANIFEST).is_file() or (path / DATASET_YAML).is_file()


def done(task: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True, "key": task["key"], "fp": task["fp"], "row": row}


def failed(task: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"ok": False, "key": task["key"], "reason": reason}


def read_gray_row(task: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Worker body for a plain image: read, grayscale uint8, resize to `task["size"]`, write PNG.

    The row is `path`, then `fields`, then the written image's columns and the original size.
    """
    src = Path(task["src"])
    try:
        image = read_image(src)
    except (ImageReadError, OSError) as e:
        return failed(task, error_reason(e, src))
    gray = to_uint8(to_grayscale(image))
    row: dict[str, Any] = {"path": task["path"], **fields}
    row.update(write_image(Path(task["stage"]) / task["path"], resize_square(gray, task["size"])))
    row.update({"orig_height": int(image.shape[0]), "orig_width": int(image.shape[1])})
    return done(task, row)


class Work:
    """The inputs of one prepare run: rows reused from the stage's cache, or tasks for workers.

    `add` fingerprints an input (its bytes and the parameters that shape its row): an unchanged
    input gets its cached row back, any other becomes a task for `worker`. `run` maps each
    worker over its tasks in parallel and records every new row in the cache as soon as it
    exists, or lists the input as skipped.
    """

    def __init__(self, stage: Stage, skipped: list[Skipped]) -> None:
        self.stage = stage
        self.skipped = skipped
        self.rows: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self._queues: dict[tuple[Callable, str], list[dict[str, Any]]] = {}
        self._names: dict[str, str] = {}

    def add(self, key: str, path: Path, task: dict[str, Any], *fingerprint_of: object,
            worker: Callable[[dict[str, Any]], dict[str, Any]], description: str, name: str | None = None) -> None:
        """Queue `task` (plus src, key, fp, stage) unless the cache has the row; `name` is shown if skipped."""
        name = name or key
        try:
            fp = fingerprint(path, *fingerprint_of)
        except OSError as e:
            self.skipped.append(Skipped(name, error_reason(e)))
            return
        row = self.stage.cached(key, fp)
        if row is not None:
            self.rows.append(row)
            self.keys.append(key)
            return
        self._names[key] = name
        self._queues.setdefault((worker, description), []).append(
            {"src": str(path), "key": key, "fp": fp, "stage": str(self.stage.dir), **task})

    def run(self, workers: int | None, quiet: bool) -> None:
        for (worker, description), tasks in self._queues.items():
            for result in parallel_map(worker, tasks, workers=workers, description=description, quiet=quiet):
                if result["ok"]:
                    self.stage.record(result["key"], result["fp"], result["row"])
                    self.rows.append(result["row"])
                    self.keys.append(result["key"])
                else:
                    self.skipped.append(Skipped(self._names[result["key"]], result["reason"]))
        self._queues.clear()


class Stage:
    """The staging folder of one prepare run (`OUT.partial/`), resumable and swapped in at the end.

    `params` are the parameters that change the written files (e.g. size, pad, format); a
    staging folder or a complete OUT written with other parameters is not reused.
    """

    def __init__(self, out: str | Path, *, source: str, params: dict[str, Any],
                 inputs: Iterable[str | Path] = ()) -> None:
        self.out = Path(os.path.abspath(out))
        self.source = source
        self.params = json.loads(json.dumps(params))  # normalised (tuples → lists), comparable
        self.state = {"version": STATE_VERSION, "source": source, "params": self.params}
        self.dir = self.out.with_name(self.out.name + STAGING_SUFFIX)
        self._cache: dict[str, dict[str, Any]] = {}
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
        if out.exists() and not out.is_dir():
            raise BtcError(f"{out}: exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not is_prepared_dataset(out):
            raise BtcError(f"{out}: exists, is not empty and is not a prepared dataset; "
                           "choose a new or empty folder")

    def _open(self) -> None:
        for old in self.out.parent.glob(f".{self.out.name}.old-*"):
            if (old / STATE_FILE).is_file() or is_prepared_dataset(old):
                shutil.rmtree(old, ignore_errors=True)
        if self.dir.exists():
            state = _read_json(self.dir / STATE_FILE)
            if state is None and self.dir.is_dir() and any(self.dir.iterdir()):
                raise BtcError(f"{self.dir}: exists and is not a btc staging folder; remove it")
            if state != self.state:
                shutil.rmtree(self.dir)
        if not self.dir.exists():
            seeded = False
            if self.out.is_dir() and _read_json(self.out / STATE_FILE) == self.state:
                seeded = self._seed_from_out()
            if not seeded:
                self.dir.mkdir(parents=True)
            atomic_write_text(self.dir / STATE_FILE, json.dumps(self.state, sort_keys=True) + "\n")
        self._load_cache()
        rows = self.dir / ROWS_FILE
        cut = rows.is_file() and rows.stat().st_size > 0 and not rows.read_bytes().endswith(b"\n")
        self._rows_fh = open(rows, "a", encoding="utf-8")  # noqa: SIM115
        if cut:  # a line cut by an interruption: start the next one on a line of its own
            self._rows_fh.write("\n")

    def _seed_from_out(self) -> bool:
        """Hard-link (or copy) the complete OUT into the staging folder to reuse its images."""
        tmp = self.dir.with_name(self.dir.name + ".seed")
        shutil.rmtree(tmp, ignore_errors=True)

        def link(src: str, dst: str) -> None:
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)

        try:
            # the row cache is appended to, so it is copied, never linked (OUT stays untouched)
            shutil.copytree(self.out, tmp, copy_function=link,
                            ignore=shutil.ignore_patterns(MANIFEST, DATASET_YAML, ROWS_FILE))
            if (self.out / ROWS_FILE).is_file():
                shutil.copyfile(self.out / ROWS_FILE, tmp / ROWS_FILE)
            os.replace(tmp, self.dir)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return False
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

    def record(self, key: str, fp: str, row: dict[str, Any]) -> None:
        """Remember a finished input (after its files were written) so a re-run skips it."""
        entry = {"key": key, "fp": fp, "row": row}
        self._cache[key] = entry
        self._rows_fh.write(json.dumps(entry, sort_keys=True) + "\n")
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
        keep_keys = set(keys)
        entries = [self._cache[k] for k in sorted(keep_keys) if k in self._cache]
        atomic_write_text(self.dir / ROWS_FILE, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
        referenced = {STATE_FILE, ROWS_FILE, MANIFEST, DATASET_YAML}
        for column in file_columns(df.columns):
            referenced.update(str(v) for v in df[column] if isinstance(v, str) and v)
        publish(write_manifest(df, self.dir))
        publish(write_dataset_yaml(self.dir, info))
        for dirpath, _dirnames, filenames in os.walk(self.dir, topdown=False):
            here = Path(dirpath)
            for name in filenames:
                rel = posix((here / name).relative_to(self.dir))
                if rel not in referenced:
                    (here / name).unlink(missing_ok=True)
            if here != self.dir and not any(here.iterdir()):
                here.rmdir()
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{os.getpid()}")
            os.replace(self.out, old)
            os.replace(self.dir, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.dir, self.out)


# --------------------------------------------------------------------------- the final write


def print_skipped(skipped: list[Skipped], flagged: list[Skipped] = ()) -> None:
    """One line per unusable input (`skipped <path>: <reason>`) and per flagged image."""
    for s in skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(s.path)}: {escape(s.reason)}",
                      highlight=False, soft_wrap=True)
    for s in flagged:
        console.print(f"[cyan]flagged[/cyan] {escape(s.path)}: {escape(s.reason)}",
                      highlight=False, soft_wrap=True)


def no_usable_images(src: Path | str, skipped: list[Skipped]) -> BtcError:
    if skipped:
        what = f"{len(skipped)} input(s) skipped, e.g. {skipped[0].path}: {skipped[0].reason}"
    else:
        what = "no image files found"
    return BtcError(f"{src}: no usable images ({what})")


def finish(stage: Stage, rows: list[dict[str, Any]], keys: list[str], *, src: Path, command: str,
           params: dict[str, Any], classes: list[str], tasks: dict[str, Any],
           skipped: list[Skipped], flagged: list[Skipped] = (), extra: dict[str, Any] | None = None,
           dedup: bool = False, quiet: bool = False, started: float | None = None) -> dict[str, Any]:
    """Manifest, audit, dataset.yaml and swap of a finished prepare; prints and returns a summary.

    `rows` are manifest rows (dicts; extra columns allowed, keys starting with '_' dropped);
    `keys` the cache keys of the inputs these rows came from. Raises `BtcError` (after listing
    the skipped inputs) when no row is usable.
    """
    from .audit import audit_frame, audit_headline, audit_summary, dedup_split

    skipped = sorted(skipped, key=lambda s: (s.path, s.reason))
    flagged = sorted(flagged, key=lambda s: (s.path, s.reason))
    if not quiet:
        print_skipped(skipped, flagged)
    if not rows:
        stage.discard()
        raise no_usable_images(src, skipped)
    df = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    df = validate_manifest(df.sort_values("path", kind="stable").reset_index(drop=True))
    audit_args = {"skipped": [s.as_dict() for s in skipped], "flagged": [s.as_dict() for s in flagged]}
    report = audit_frame(df, **audit_args)
    info: dict[str, Any] = {
        "name": stage.out.name,
        "source": stage.source,
        "classes": classes,
        "tasks": tasks,
        "provenance": {"src": str(Path(src).resolve()), "tool": "btc", "btc_version": __version__},
        "command": command,
        "params": params,
        "counts": split_counts(df),
    }
    if dedup:
        df["split_dedup"] = dedup_split(df, report)
        counts = split_counts(df.assign(split=df["split_dedup"]))
        moved = int((df["split_dedup"] != df["split"]).sum())
        info["splits"] = {
            "split": "the dataset's own Training/Testing folders (the papers' protocol)",
            "split_dedup": "leak-free: every exact/near-duplicate group kept on one side "
                           "(the side holding most of its images; ties → train)",
            "split_dedup_moved": moved,
            "counts_dedup": counts,
        }
        report = audit_frame(df, **audit_args)
    if extra:
        info.update(extra)
    info["audit"] = audit_summary(report)
    info["skipped"] = [s.as_dict() for s in skipped]
    if flagged:
        info["flagged"] = [s.as_dict() for s in flagged]
    stage.commit(df, info, keys)
    summary = {
        "out": str(stage.out),
        "images": int(len(df)),
        "reused": stage.reused,
        "classes": classes,
        "counts": info["counts"],
        "skipped": info["skipped"],
        "flagged": [s.as_dict() for s in flagged],
        "audit": info["audit"],
    }
    if not quiet:
        took = f" in {time.monotonic() - started:.1f} s" if started is not None else ""
        reused = f" ({stage.reused} reused from a previous run)" if stage.reused else ""
        console.print(f"[green]wrote[/green] {len(df)} images{reused} to {escape(str(stage.out))}{took}; "
                      f"{len(skipped)} skipped, {len(flagged)} flagged", highlight=False, soft_wrap=True)
        console.print(f"audit: {escape(audit_headline(report))}", highlight=False, soft_wrap=True)
    return summary
