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
from btc.engine.runs import TaskData, add_validation, train_run
from btc.errors import BtcError
from btc.io import atomic_write, atomic_write_json
from btc.report.plots import write_run_plots

FOLDS, CV_JSON = "folds.csv", "cv.json"


def fold_dir(out: Path, k: int) -> Path:
    return out / f"fold-{k}"


def assign_folds(data: TaskData, out: Path, k: int, group_by: str, seed: int) -> tuple[np.ndarray, str]:
    """The fold of every task image: read from folds.csv when the CV folder has one."""
    path = out / FOLDS
    if path.is_file():
        saved = pd.read_csv(path, keep_default_na=False)
        if saved["path"].tolist() != data.rows["path"].tolist():
            raise BtcError(f"{out} holds a CV of other images; use another --out")
        return saved["fold"].to_numpy(dtype=int), str(saved["protocol"].iloc[0])
    official = group_by == "official" or (group_by == "auto" and "fold" in data.rows.columns
                                          and data.rows["fold"].notna().all())
    if official:  # a per-image column: the same for every task already
        folds = kfold_assignments(data.rows, data.targets, k, group_by="official", seed=seed)
    else:  # drawn over the whole dataset, then restricted: the same folds for every task
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
    frame = pd.DataFrame({"path": data.rows["path"], "fold": folds, "protocol": protocol})
    out.mkdir(parents=True, exist_ok=True)
    if distributed.current().is_writer:
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))
    return folds, protocol


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
                   quiet: bool = False) -> dict[str, Any]:
    """Run every unfinished fold (or only `fold`) and write `cv.json`; returns its content."""
    folds, protocol = assign_folds(data, out, k, group_by, config.seed)
    n_folds = int(folds.max()) + 1
    if fold is not None and not 0 <= fold < n_folds:
        raise BtcError(f"--fold {fold} is out of range: this CV has folds 0..{n_folds - 1}")
    todo = [fold] if fold is not None else list(range(n_folds))
    for k_ in todo:
        roles = np.where(folds == k_, "test", "train").astype(object)
        roles = add_validation(data, roles, config)
        train_run(data, roles, config, fold_dir(out, k_), protocol=f"{protocol}, fold {k_}",
                  resume=True, weights=weights, pretrained_required=pretrained_required,
                  quiet=quiet, label=f"fold {k_ + 1}/{n_folds} ")
    result = collect(out, n_folds)
    result["protocol"] = protocol
    if distributed.current().is_writer:
        atomic_write_json(out / CV_JSON, result)
        if result["folds"]:
            write_run_plots(out)  # pooled confusion matrix, overlaid learning curves, pooled ROC
    return result
