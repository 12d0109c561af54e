"""K-fold cross-validation: one run folder per fold (`fold-<k>/`) and `cv.json` with mean ± std.

Paper 001 reports ten-fold means (Tables III–IV), paper 003 five patient-wise folds (Table 4).
The fold assignment is written once to `folds.csv` and reused, so an interrupted CV resumes at
its unfinished folds and `--fold I` runs on several machines add up to the same `cv.json`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btc.data.splits import kfold_assignments
from btc.engine import distributed
from btc.engine.config import TrainConfig
from btc.engine.evaluate import METRICS
from btc.engine.metrics import aggregate
from btc.engine.runs import TaskData, add_validation, check_resumable, train_run
from btc.errors import BtcError
from btc.io import atomic_write, atomic_write_json
from btc.report.plots import write_run_plots

FOLDS, CV_JSON = "folds.csv", "cv.json"


def fold_dir(out: Path, k: int) -> Path:
    return out / f"fold-{k}"


def make_folds(data: TaskData, k: int, group_by: str = "auto", seed: int = 0) -> tuple[np.ndarray, str]:
    """(fold of every task image, protocol description): official folds, else drawn over the
    whole dataset and restricted to the task, so every task of the dataset shares them."""
    official = group_by == "official" or (group_by == "auto" and "fold" in data.rows.columns
                                          and data.rows["fold"].notna().all())
    if official:  # a per-image column: the same for every task already
        folds = kfold_assignments(data.rows, data.targets, k, group_by="official", seed=seed)
    else:
        manifest, labels = data.dataset_strata()
        folds = kfold_assignments(manifest, labels, k, group_by=group_by, seed=seed)[data.positions]
    if len(np.unique(folds)) < folds.max() + 1:
        raise BtcError(f"task '{data.task}' has no image in some of the {k} folds; use fewer --folds")
    if official:
        protocol = "official folds"
    elif group_by != "none" and (data.rows["patient_id"] != "").any():
        protocol = f"stratified patient-grouped {folds.max() + 1}-fold"
    else:
        protocol = f"stratified {folds.max() + 1}-fold"
    return folds, protocol


def assign_folds(data: TaskData, out: Path, k: int, group_by: str, seed: int) -> tuple[np.ndarray, str]:
    """The fold of every task image: read from folds.csv when the CV folder has one, else made
    (`make_folds`) and written there."""
    if (out / FOLDS).is_file():
        return read_folds(data, out)
    folds, protocol = make_folds(data, k, group_by, seed)
    frame = pd.DataFrame({"path": data.rows["path"], "fold": folds, "protocol": protocol})
    out.mkdir(parents=True, exist_ok=True)
    if distributed.current().is_writer:
        atomic_write(out / FOLDS, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))
    return folds, protocol


def read_folds(data: TaskData, out: Path) -> tuple[np.ndarray, str]:
    saved = pd.read_csv(out / FOLDS, keep_default_na=False)
    if saved["path"].tolist() != data.rows["path"].tolist():
        raise BtcError(f"{out} holds a CV of other images; use another --out")
    return saved["fold"].to_numpy(dtype=int), str(saved["protocol"].iloc[0])


def collect(out: Path, n_folds: int) -> dict[str, Any]:
    """cv.json content from the fold folders that have finished (`complete` tells if all have)."""
    folds = []
    for k in range(n_folds):
        metrics_path = fold_dir(out, k) / METRICS
        if metrics_path.is_file():
            folds.append({"fold": k, "metrics": json.loads(metrics_path.read_text())})
    mean, std = aggregate([f["metrics"] for f in folds]) if folds else ({}, {})
    return {"n_folds": n_folds, "complete": len(folds) == n_folds, "folds": folds, "mean": mean, "std": std}


def cross_validate(data: TaskData, config: TrainConfig, out: Path, *, k: int, fold: int | None = None,
                   group_by: str = "auto", weights: Path | None = None, pretrained_required: bool = False,
                   quiet: bool = False, parallel_folds: int = 1) -> dict[str, Any]:
    """Run every unfinished fold (or only `fold`) and write `cv.json`; returns its content.

    With `parallel_folds` N > 1 the unfinished folds run N at a time in separate processes
    (`run_folds_in_processes`): paper 001's batch of 16 leaves most of a GPU idle, and N folds
    share it. Each fold is seeded on its own, so its results do not depend on N.
    """
    folds, protocol = assign_folds(data, out, k, group_by, config.seed)
    n_folds = int(folds.max()) + 1
    if fold is not None and not 0 <= fold < n_folds:
        raise BtcError(f"--fold {fold} is out of range: this CV has folds 0..{n_folds - 1}")
    todo = [fold] if fold is not None else list(range(n_folds))
    if parallel_folds > 1 and len(todo) > 1:
        if distributed.current().active:
            raise BtcError("--parallel-folds runs folds in separate processes: do not combine it with torchrun")
        for k_ in todo:
            check_resumable(fold_dir(out, k_), config)
        pending = [k_ for k_ in todo if not (fold_dir(out, k_) / METRICS).is_file()]
        run_folds_in_processes(data, config, out, pending, parallel_folds, weights=weights,
                               pretrained_required=pretrained_required, quiet=quiet)
    else:
        for k_ in todo:
            run_fold(data, config, out, k_, folds, protocol, weights=weights,
                     pretrained_required=pretrained_required, quiet=quiet, label=f"fold {k_ + 1}/{n_folds} ")
    result = collect(out, n_folds)
    result["protocol"] = protocol
    if distributed.current().is_writer:
        atomic_write_json(out / CV_JSON, result)
        if result["folds"]:
            write_run_plots(out)  # pooled confusion matrix, overlaid learning curves, pooled ROC
    return result


def run_fold(data: TaskData, config: TrainConfig, out: Path, k: int, folds: np.ndarray, protocol: str, *,
             weights: Path | None, pretrained_required: bool, quiet: bool, label: str = "") -> dict[str, Any]:
    """Train fold `k` (test = the fold, validation carved from the rest) in `fold-<k>/`."""
    roles = np.where(folds == k, "test", "train").astype(object)
    roles = add_validation(data, roles, config)
    return train_run(data, roles, config, fold_dir(out, k), protocol=f"{protocol}, fold {k}", resume=True,
                     weights=weights, pretrained_required=pretrained_required, quiet=quiet, label=label)


# --------------------------------------------------------------------------- folds in parallel


def run_folds_in_processes(data: TaskData, config: TrainConfig, out: Path, todo: list[int], n_processes: int,
                           *, weights: Path | None, pretrained_required: bool, quiet: bool) -> None:
    """Run the folds `todo`, `n_processes` at a time, each in a fresh (spawned) process.

    Every worker opens the dataset, reads `folds.csv` and trains its fold quietly; the progress
    bar counts finished folds. On the CPU the cores are shared out among the workers. Ctrl-C
    stops every worker: finished epochs are in each fold's `checkpoint-last.pt` and the next run
    resumes them.
    """
    import multiprocessing
    import os

    from btc.progress import make_progress

    if not todo:
        return
    n_processes = min(n_processes, len(todo))
    threads = max(1, (os.cpu_count() or 1) // n_processes)
    jobs = [(str(data.dataset.root), data.task, config.to_dict(), str(out), k,
             None if weights is None else str(weights), pretrained_required, threads) for k in todo]
    pool = multiprocessing.get_context("spawn").Pool(n_processes, initializer=_ignore_sigint)
    try:
        with make_progress(quiet) as progress:
            bar = progress.add_task(f"{config.model}: {len(todo)} folds, {n_processes} at a time",
                                    total=len(todo), info="")
            for k, accuracy in pool.imap_unordered(_fold_worker, jobs):
                progress.update(bar, advance=1, info=f"fold {k} accuracy {accuracy:.3f}")
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

    root, task, config_dict, out, k, weights, pretrained_required, threads = job
    torch.set_num_threads(threads)
    config = TrainConfig.from_dict(config_dict)
    data = TaskData.from_dataset(load_dataset(root), task)
    folds, protocol = read_folds(data, Path(out))
    metrics = run_fold(data, config, Path(out), k, folds, protocol, quiet=True, pretrained_required=pretrained_required,
                       weights=None if weights is None else Path(weights))
    return k, float(metrics["accuracy"])
