"""K-fold cross-validation: one run folder per fold (`fold-<k>/`, k = 1…K) and the CV summary.

Paper 001 reports ten-fold means (Tables III–IV), paper 003 five folds (Table 4). The fold
assignment is written once to the CV folder's `folds.csv` (btc.runfolder.CVFolder) and reused,
so an interrupted CV resumes at its unfinished folds and `--fold I` runs on several machines add
up to the same summary. Folds are numbered 1…K wherever a user sees them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btc.engine import distributed
from btc.engine.config import TrainConfig
from btc.engine.metrics import aggregate
from btc.engine.protocols import add_validation, make_folds
from btc.engine.runs import TaskData, check_resumable, train_run
from btc.errors import BtcError
from btc.progress import SILENT, Progress
from btc.runfolder import CVFolder, CVSummary, FoldAssignment, FoldResult


def assign_folds(data: TaskData, cv: CVFolder, config: TrainConfig,
                 planned: FoldAssignment | None = None) -> FoldAssignment:
    """The fold of every task image: read from the CV folder when it has them, else made
    (`make_folds`, or the `planned` assignment made so) and written there."""
    if cv.folds_path.is_file():
        return read_folds(data, cv)
    assignment = planned or plan_folds(data, config)
    if distributed.current().is_writer:
        with cv.shared_lock():
            if cv.folds_path.is_file():  # another `--fold` process wrote them first
                return read_folds(data, cv)
            cv.write_folds(assignment)
    return assignment


def plan_folds(data: TaskData, config: TrainConfig) -> FoldAssignment:
    folds, protocol = make_folds(data, config)
    return FoldAssignment(data.rows["path"].tolist(), folds, protocol)


def read_folds(data: TaskData, cv: CVFolder) -> FoldAssignment:
    saved = cv.read_folds()
    if saved.paths != data.rows["path"].tolist():
        raise BtcError(f"{cv.path} holds a CV of other images; use another --out")
    return saved


def collect(cv: CVFolder, n_folds: int, protocol: str) -> CVSummary:
    """The CV summary from the fold folders that have finished."""
    folds = [FoldResult(k, cv.fold(k).read_metrics()) for k in cv.finished_folds(n_folds)]
    mean, std = aggregate([f.metrics for f in folds]) if folds else ({}, {})
    return CVSummary(n_folds, folds, mean, std, protocol)


@dataclass
class CVResult:
    """What `cross_validate` returns: the summary and where it is."""

    folder: CVFolder
    summary: CVSummary


def cross_validate(data: TaskData, config: TrainConfig, out: Path, *, fold: int | None = None, weights: Path | None = None, offline: bool = False,
                   progress: Progress = SILENT, parallel_folds: int = 1, force: bool = False) -> CVResult:
    """Run every unfinished fold (or only `fold`, 1…K) and write the CV summary.

    With `parallel_folds` N > 1 the unfinished folds run N at a time in separate processes
    (`run_folds_in_processes`): paper 001's batch of 16 leaves most of a GPU idle, and N folds
    share it. Each fold is seeded on its own, so its results do not depend on N (beyond float
    summation order when the thread count differs). The CV folder
    must be btc's (`CVFolder.claim`); `force` replaces a previous CV there.
    """
    if fold is not None and not 1 <= fold <= config.folds:  # before anything is written
        raise BtcError(f"--fold {fold} is out of range: this CV has folds 1..{config.folds}")
    if fold is not None and force:
        raise BtcError("--force replaces the whole CV folder, every fold's results with it: "
                       "do not combine it with --fold")
    cv = CVFolder(out)
    # folds a dataset cannot give (too many, not its official count) fail before a folder is made
    planned = None if cv.folds_path.is_file() and not force else plan_folds(data, config)
    if distributed.current().is_writer:
        cv.claim(force=force)
    distributed.barrier()
    assignment = assign_folds(data, cv, config, planned)
    n_folds = assignment.n_folds
    if n_folds != config.folds:
        raise BtcError(f"{cv.path} holds a {n_folds}-fold CV and --folds is {config.folds}: use --folds {n_folds} "
                       "to continue it, --force to replace it, or another --out")
    if fold is not None and not 1 <= fold <= n_folds:
        raise BtcError(f"--fold {fold} is out of range: this CV has folds 1..{n_folds}")
    todo = [fold] if fold is not None else list(range(1, n_folds + 1))
    for k_ in range(1, n_folds + 1):  # every fold already started, not only those run now
        check_resumable(cv.fold(k_), config, data)
    if parallel_folds > 1 and len(todo) > 1:
        if distributed.current().active:
            raise BtcError("--parallel-folds runs folds in separate processes: do not combine it with torchrun")
        pending = [k_ for k_ in todo if not cv.fold(k_).is_complete()]
        run_folds_in_processes(data, config, cv, pending, parallel_folds, weights=weights,
                               offline=offline, progress=progress)
    else:
        for k_ in todo:
            run_fold(data, config, cv, k_, assignment, weights=weights, offline=offline,
                     progress=progress, label=f"fold {k_}/{n_folds} ")
    if distributed.current().is_writer:
        with cv.shared_lock():  # several `--fold` processes may finish at once
            summary = collect(cv, n_folds, assignment.protocol)
            cv.write_summary(summary)
    else:
        summary = collect(cv, n_folds, assignment.protocol)
    return CVResult(cv, summary)


def run_fold(data: TaskData, config: TrainConfig, cv: CVFolder, k: int, assignment: FoldAssignment, *,
             weights: Path | None, offline: bool, progress: Progress = SILENT,
             label: str = "") -> dict:
    """Train fold `k` (test = the fold, validation carved from the rest) in `fold-<k>/`."""
    roles = np.where(assignment.folds == k, "test", "train").astype(object)
    roles = add_validation(data, roles, config)
    return train_run(data, roles, config, cv.fold(k), protocol=f"{assignment.protocol}, fold {k}", resume=True,
                     evaluation="cv",
                     weights=weights, offline=offline, progress=progress, label=label)


# --------------------------------------------------------------------------- folds in parallel


def run_folds_in_processes(data: TaskData, config: TrainConfig, cv: CVFolder, todo: list[int], n_processes: int,
                           *, weights: Path | None, offline: bool, progress: Progress = SILENT) -> None:
    """Run the folds `todo`, `n_processes` at a time, each in a fresh (spawned) process.

    Every worker opens the dataset, reads `folds.csv` and trains its fold quietly; the progress
    bar counts finished folds. On the CPU the cores are shared out among the workers. Ctrl-C
    stops every worker: finished epochs are in each fold's `checkpoint-last.pt` and the next run
    resumes them.
    """
    import multiprocessing
    import os

    if not todo:
        return
    n_processes = min(n_processes, len(todo))
    threads = max(1, (os.cpu_count() or 1) // n_processes)
    jobs = [(str(data.dataset.root), data.task, config.to_dict(), str(cv.path), k,
             None if weights is None else str(weights), offline, threads) for k in todo]
    pool = multiprocessing.get_context("spawn").Pool(n_processes, initializer=_ignore_sigint)
    try:
        with progress.bar(f"{config.model}: {len(todo)} folds, {n_processes} at a time", len(todo)) as advance:
            for k, accuracy in pool.imap_unordered(_fold_worker, jobs):
                advance(info=f"fold {k} accuracy {accuracy:.3f}")
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _ignore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool


def _fold_worker(job: tuple) -> tuple[int, float]:
    """One fold in a worker process (a module-level function, so `spawn` can pickle it)."""
    import torch

    from btc.data.manifest import load_dataset

    root, task, config_dict, out, k, weights, offline, threads = job
    torch.set_num_threads(threads)
    config = TrainConfig.from_dict(config_dict)
    data = TaskData.from_dataset(load_dataset(root), task)
    cv = CVFolder(out)
    metrics = run_fold(data, config, cv, k, read_folds(data, cv), offline=offline,
                       weights=None if weights is None else Path(weights))
    return k, float(metrics["accuracy"])
