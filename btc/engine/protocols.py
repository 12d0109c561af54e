"""Protocols: which images train, validate and test a run (issue 15; DESIGN.md, Protocols).

Two protocols, chosen with `--protocol` and recorded in every run's provenance:

- `paper` is what each paper did, at image level where the paper is: papers 002 and 004 use the
  Kaggle dataset's own Training/Testing split (`split: official`); paper 003 holds out a random
  fifth, splits the rest 4:1 into training and validation, and cross-validates with random
  image-level five folds; paper 001 cross-validates with random image-level ten folds
  (`split: holdout`, `folds:` in each recipe). Patients and duplicate images may then sit on both
  sides of a split — as they did in the papers.
- `leak-free` keeps every group on one side of every hold-out, validation carve-out and fold, a
  group being the union of a patient's images, exact duplicates and pixel-confirmed near
  duplicates (`btc.data.splits.leak_free_groups`). On Figshare it uses the dataset author's
  patient-wise `cvind.mat` folds (plus btc's stratified folds for merged no-tumour images). Where
  an official split leaks (Kaggle Training/Testing), the training set stays as it is and the test
  images that have a twin in training are removed; the protocol text says how many.

Hold-outs and folds are drawn over the whole dataset, stratified by its own labels, and then
restricted to the task, so every task of a dataset run with the same seed shares them (the
two-stage chain relies on it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from btc.data.splits import holdout, kfold_assignments, twins_across
from btc.engine.config import TrainConfig
from btc.errors import BtcError
from btc.runfolder import EXCLUDED

if TYPE_CHECKING:
    from btc.engine.runs import TaskData

PAPER, LEAK_FREE = "paper", "leak-free"


def _groups(data: TaskData, config: TrainConfig) -> np.ndarray | None:
    """Group labels over the whole dataset manifest under leak-free; None (image level) under paper."""
    return data.leak_free_groups() if config.protocol == LEAK_FREE else None


def split_in_use(data: TaskData, config: TrainConfig) -> str:
    """How a single run chooses its test images: `official` (the manifest's own split) or
    `holdout` (a seeded test fraction: asked for, or the manifest has no official split)."""
    rows, column = data.rows, config.split_column
    has_official = column in rows.columns and {"train", "test"} <= set(rows[column])
    if column != "split" and not has_official:
        raise BtcError(f"split column '{column}' is missing or lacks train and test rows")
    return "official" if config.split == "official" and has_official else "holdout"


def split_roles(data: TaskData, config: TrainConfig) -> tuple[np.ndarray, str]:
    """(role per task row: 'train' / 'test' / 'excluded' (a leak-free twin) / '' for rows left
    out, protocol description)."""
    rows = data.rows
    column = config.split_column
    groups = _groups(data, config)
    if split_in_use(data, config) == "official":
        roles = np.where(rows[column].isin(["train", "test"]), rows[column], "").astype(object)
        text = f"{config.protocol}: the manifest's official split ('{column}')"
        if groups is not None:
            leaked = twins_across(groups[data.positions], roles == "train", roles == "test")
            roles[leaked] = EXCLUDED  # listed in the run's split.csv, never tested
            text += f", {int(leaked.sum())} test images with a twin in training removed"
        return roles, text
    manifest, labels = data.dataset_strata()
    test = holdout(manifest, labels, config.test_fraction, groups=groups, seed=config.seed,
                   option="--test-fraction")[data.positions]
    how = "grouped by patient and duplicate group" if groups is not None else "image-level"
    text = f"{config.protocol}: seeded stratified {how} hold-out, test {config.test_fraction:g}"
    if config.split == "official":
        text += " (the manifest has no official split)"
    return np.where(test, "test", "train").astype(object), text


def add_validation(data: TaskData, roles: np.ndarray, config: TrainConfig) -> np.ndarray:
    """Carve the validation images out of the training part (stratified; grouped if leak-free)."""
    roles = roles.copy()
    train = np.flatnonzero(roles == "train")
    if config.val_fraction > 0 and len(train):
        groups = _groups(data, config)
        val = holdout(data.rows.iloc[train], data.targets[train], config.val_fraction,
                      groups=None if groups is None else groups[data.positions][train], seed=config.seed + 1,
                      option="val_fraction (--set val_fraction=…)")
        roles[train[val]] = "val"
    return roles


def has_official_folds(data: TaskData) -> bool:
    rows = data.rows
    return "fold" in rows.columns and bool((rows["fold"].astype(str) != "").all()) and rows["fold"].notna().all()


def official_fold_count(data: TaskData) -> int | None:
    """How many patient-wise folds the dataset brings (Figshare's cvind), or None."""
    return int(data.rows["fold"].astype(int).nunique()) if has_official_folds(data) else None


def make_folds(data: TaskData, config: TrainConfig) -> tuple[np.ndarray, str]:
    """(fold 1…K of every task image, protocol description), K = `config.folds`."""
    k = config.folds
    if config.protocol == LEAK_FREE and has_official_folds(data):
        values = sorted(int(v) for v in data.rows["fold"].astype(int).unique())
        if len(values) != k:
            raise BtcError(f"the dataset's official patient-wise folds are {len(values)}, not --folds {k}: "
                           f"use --folds {len(values)}, or --protocol paper for random folds")
        folds = data.rows["fold"].astype(int).map({v: i + 1 for i, v in enumerate(values)}).to_numpy(dtype=int)
        return folds, f"{LEAK_FREE}: the dataset's official patient-wise {k} folds"
    manifest, labels = data.dataset_strata()
    groups = _groups(data, config)
    folds = kfold_assignments(manifest, labels, k, groups=groups, seed=config.seed)[data.positions] + 1
    if len(np.unique(folds)) < folds.max():
        raise BtcError(f"task '{data.task}' has no image in some of the {k} folds; use fewer --folds")
    how = "grouped by patient and duplicate group" if groups is not None else "image-level"
    return folds, f"{config.protocol}: stratified {how} {k}-fold"
