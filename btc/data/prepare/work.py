"""The per-input work of one prepare: cached rows or tasks, run over a pool of worker processes.

`Work.add` fingerprints an input (its size and modification time, plus the parameters that shape
its row): an unchanged input gets its row back from the staging folder's cache, any other
becomes a task. `Work.run` maps each worker over its tasks with `parallel_map` and records every
new row in the cache as soon as it exists (so an interrupted run resumes there), or lists the
input as skipped. Progress goes to the `Progress` passed in; nothing is printed.

A worker is a module-level function `task → done(task, row) | failed(task, reason)`. A row's
`_thumb` (`btc.data.prepare.writing.write_image` puts the written image's thumbnail there) is
taken out of the row and kept by the stage for the near-duplicate check (`Stage.thumbs`).
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2

from btc.data.limits import ImageLimits
from btc.errors import BtcError
from btc.progress import SILENT, Progress

from .inputs import Skipped, error_reason

THUMB = "_thumb"  # see the module docstring

if TYPE_CHECKING:
    from .staging import Stage

Task = dict[str, Any]
Result = dict[str, Any]
Worker = Callable[[Task], Result]


def done(task: Task, row: dict[str, Any]) -> Result:
    """A worker's result for an input it wrote: the manifest row."""
    return {"ok": True, "key": task["key"], "fp": task["fp"], "row": row}


def failed(task: Task, reason: str) -> Result:
    """A worker's result for an input it could not use, and why."""
    return {"ok": False, "key": task["key"], "reason": reason}


def fingerprint(path: Path, *extra: object) -> str:
    """Cheap identity of an input file: size and modification time (plus any `extra` values)."""
    st = path.stat()
    return "-".join([str(st.st_size), str(st.st_mtime_ns), *map(str, extra)])


# --------------------------------------------------------------------------- worker processes


def _init_worker() -> None:
    # Ctrl-C and SIGTERM are handled by the main process alone (it cancels the pool; a forked
    # worker would otherwise inherit its SIGTERM handler); one OpenCV thread per process, since
    # the processes already use every core.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
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
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _run_chunk(fn: Callable[[Any], Any], chunk: list[Any]) -> list[Any]:
    return [fn(item) for item in chunk]


def default_workers(workers: int | None) -> int:
    """`workers`, or every core when not given."""
    return max(1, workers if workers else (os.cpu_count() or 1))


def _start_method() -> str:
    """How worker processes start: a plain fork when this process runs no other Python thread
    (starts in milliseconds, as a plain script's pool does), else from a fork server, whose
    workers do not inherit this process's threads (rich's refresh thread, a caller's own), which
    a plain fork can deadlock on. OpenCV's own thread pool is stopped around a fork
    (`_forking`)."""
    if sys.platform.startswith("linux") and threading.active_count() == 1:
        return "fork"
    return "forkserver"


@contextmanager
def _forking(method: str) -> Iterator[None]:
    """While workers are forked, this process's OpenCV thread pool is stopped (one thread): a
    child inherits none of its threads, and `cv2.setNumThreads(1)` in the child would wait for
    them for ever. The pool is restored afterwards."""
    if method != "fork":
        yield
        return
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def _process_pool(fn: Callable[[Any], Any], n_workers: int, method: str) -> ProcessPoolExecutor:
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        # imported once in the fork server, so each worker starts without re-importing numpy/cv2
        context.set_forkserver_preload([fn.__module__])
    return ProcessPoolExecutor(max_workers=n_workers, mp_context=context, initializer=_init_worker)


def parallel_map(fn: Callable[[Any], Any], items: list[Any], *, workers: int | None, description: str,
                 progress: Progress = SILENT, meanwhile: tuple[str, ...] = ()) -> Iterator[Any]:
    """`fn(item)` for every item over `workers` processes (completion order), with a progress bar.

    `fn` must be a module-level function (it is sent to worker processes by name). With one
    worker, or very few items, everything runs in this process. Items go out in chunks of up to
    32 (few pickles and wake-ups per image, a short tail when the last chunks finish), at most
    two chunks per worker in flight. The workers are started before the bar is shown, so that
    they can be forked before a progress thread exists (`_start_method`). The modules named in
    `meanwhile` are imported in a thread of this process once the workers exist (this process
    mostly waits for them), so that what comes after the map finds them imported.
    """
    n_workers = min(default_workers(workers), max(1, len(items)))
    if n_workers == 1 or len(items) < 4:
        with progress.bar(description, len(items)) as advance:
            for item in items:
                result = fn(item)
                advance()
                yield result
        return
    chunk = max(1, min(32, len(items) // (n_workers * 8)))
    queue = iter([items[i:i + chunk] for i in range(0, len(items), chunk)])
    method = _start_method()
    pool = _process_pool(fn, n_workers, method)
    previous = _terminate_as_interrupt()
    try:
        with _forking(method):  # a fork pool starts every worker at its first task
            pending = {pool.submit(_run_chunk, fn, part) for part in itertools.islice(queue, 2 * n_workers)}
        importer = _import_in_thread(meanwhile)
        with progress.bar(description, len(items)) as advance:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
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
    if importer is not None:
        importer.join()


def _import_in_thread(modules: tuple[str, ...]) -> threading.Thread | None:
    """Import `modules` in a daemon thread (started now; an import error is left to the first
    use in the main thread)."""
    if not modules:
        return None

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - reported where the module is used
                pass

    thread = threading.Thread(target=load, name="btc-import", daemon=True)
    thread.start()
    return thread


# --------------------------------------------------------------------------- the inputs of a run


class Work:
    """The inputs of one prepare run: rows reused from the stage's cache, or tasks for workers.

    Every task carries the image limits of the run (`task["limits"]`, see `btc.data.limits`;
    read from the environment here, in the main process, when not given), so that each worker
    process applies the same ones. A cached row was checked when it was written and is not
    checked again.
    """

    def __init__(self, stage: Stage, skipped: list[Skipped], limits: ImageLimits | None = None) -> None:
        self.stage = stage
        self.skipped = skipped
        self.limits = limits if limits is not None else ImageLimits.from_env()
        self._limits = self.limits.as_dict()  # one dict for every task (pickled with each)
        self.rows: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self._queues: dict[tuple[Worker, str], list[Task]] = {}
        self._names: dict[str, str] = {}

    def add(self, key: str, path: Path, task: Task, *fingerprint_of: object,
            worker: Worker, description: str, name: str | None = None) -> None:
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
            {"src": str(path), "key": key, "fp": fp, "stage": str(self.stage.dir),
             "limits": self._limits, **task})

    def run(self, workers: int | None, progress: Progress = SILENT) -> None:
        """Every queued task through its worker, `workers` processes at a time."""
        for (worker, description), tasks in self._queues.items():
            for result in parallel_map(worker, tasks, workers=workers, description=description, progress=progress,
                                       meanwhile=("pandas",)):  # for the manifest and audit that follow
                if result["ok"]:
                    thumb = result["row"].pop(THUMB, None)
                    self.stage.record(result["key"], result["fp"], result["row"], thumb=thumb)
                    self.rows.append(result["row"])
                    self.keys.append(result["key"])
                else:
                    self.skipped.append(Skipped(self._names[result["key"]], result["reason"]))
        self._queues.clear()
