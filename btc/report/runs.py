"""Run and CV folders, read once for reporting (tables, plots, provenance).

A run folder (`btc train`) becomes a `Run` holding its config, metrics and test predictions. A
CV folder (`btc cv`) becomes a `Run` whose metrics are the mean over its finished folds (and
`std` their standard deviation, from `cv.json`), whose predictions are the folds' out-of-fold
test predictions pooled, and whose `folds` are the finished folds, each a `Run` of its own
(fold k = 1…K, as paper 003's Table 4 numbers them). A run's `deviations` from its paper's
protocol are those its `config.yaml` provenance records (a CV: every fold's, distinct ones joined;
None for a run btc < 0.2 wrote, which records none). This module is the one place the report
parses a CV folder; it reads files only through `btc.runfolder` (which also migrates a btc 0.1
CV folder, folds 0…K−1, to folds 1…K). Every metric value read is checked (`btc.report.checks`):
a corrupt one stops the report with one line naming the file and the field, and so does a metric
the run's own predictions do not give (`check_against_predictions`). A folder given more
than once (`btc report runs/a runs/a`, or `runs/a/`) is read once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btc.errors import BtcError
from btc.report.checks import (
    check_against_predictions,
    check_config,
    check_cv_aggregate,
    check_history,
    check_metrics,
)
from btc.report.stats import bootstrap_accuracy_ci
from btc.runfolder import CVFolder, CVSummary, Predictions, RunFolder, open_folder

N_BOOT = 2000  # bootstrap resamples of the accuracy CI (seed 0)


@dataclass(eq=False)
class Run:
    """A run or CV folder, read for reporting."""

    folder: RunFolder | CVFolder
    name: str                               # unique among the reported runs (a fold: its folder's name)
    config: dict[str, Any]                  # config.yaml (a CV: its first finished fold's)
    metrics: dict[str, Any]                 # metrics.json, or cv.json's mean
    predictions: Predictions                # the test predictions (a CV: its folds', pooled)
    std: dict[str, Any] | None = None       # cv.json's std (None for a train run)
    folds: list[Run] = field(default_factory=list)   # a CV's finished folds
    fold: int | None = None                 # 1…K when this run is a fold of a CV
    n_folds: int = 0                        # a CV's number of folds, finished or not
    protocol: str = ""
    plots: dict[str, Path] = field(default_factory=dict)   # plot name → PNG, set by the report
    plot_error: str = ""

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def kind(self) -> str:
        return "cv" if isinstance(self.folder, CVFolder) else "train"

    @property
    def complete(self) -> bool:
        return self.kind == "train" or len(self.folds) == self.n_folds

    @property
    def model(self) -> str:
        return str(self.config.get("model", ""))

    @property
    def task(self) -> str:
        return str(self.config.get("task", ""))

    @property
    def classes(self) -> list[str]:
        return list(self.metrics.get("classes") or self.config.get("classes") or self.predictions.classes)

    @property
    def members(self) -> list[Run]:
        """The training runs behind this one: a CV's finished folds, else the run itself."""
        return self.folds or [self]

    @property
    def configs(self) -> list[dict[str, Any]]:
        return [m.config for m in self.members]

    @property
    def provenances(self) -> list[dict[str, Any] | None]:
        """Each member's provenance block of config.yaml (None: written by btc < 0.2)."""
        return [m.config.get("provenance") if isinstance(m.config.get("provenance"), dict) else None
                for m in self.members]

    @property
    def deviations(self) -> list[str] | None:
        """How the run departs from its paper's protocol, distinct over its folds: [] it followed
        the protocol; None its provenance is unknown (btc < 0.2). A CV fold without provenance next
        to folds with one is itself listed as a deviation (not known to follow the protocol)."""
        known = [(m, p) for m, p in zip(self.members, self.provenances, strict=True) if p is not None]
        if not known:
            return None
        found = [str(d) for _, p in known for d in (p.get("deviations") or [])]
        found += [f"provenance of {m.name} unknown (written by btc < 0.2)"
                  for m, p in zip(self.members, self.provenances, strict=True) if p is None]
        return list(dict.fromkeys(found))

    @property
    def correct(self) -> np.ndarray:
        """Per test image: whether the run predicted its class."""
        return self.predictions.targets == self.predictions.predicted

    @property
    def pooled_accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.correct) else float("nan")

    @cached_property
    def ci(self) -> tuple[float, float]:
        """95 % percentile-bootstrap CI of the accuracy over the (pooled) test images."""
        return bootstrap_accuracy_ci(self.correct, n_boot=N_BOOT, seed=0)

    def histories(self) -> list[tuple[str, pd.DataFrame]]:
        """(fold folder name, or "" for a train run; history.csv) of every member with epochs."""
        out = []
        for member in self.members:
            assert isinstance(member.folder, RunFolder)
            history = member.folder.read_history()
            check_history(history, member.folder.history_path)
            if len(history):
                out.append((member.name if self.folds else "", history))
        return out


def pool(predictions: list[Predictions], source: Path) -> Predictions:
    """The predictions of several folds as one set (every fold must have the same classes)."""
    classes = predictions[0].classes
    for p in predictions[1:]:
        if p.classes != classes:
            raise BtcError(f"{source}: its folds have different classes ({classes} and {p.classes})")
    return Predictions(paths=[path for p in predictions for path in p.paths],
                       targets=np.concatenate([p.targets for p in predictions]),
                       probs=np.concatenate([p.probs.reshape(len(p.paths), len(classes)) for p in predictions]),
                       classes=list(classes),
                       predicted=np.concatenate([p.predicted for p in predictions]))


def _config(folder: RunFolder) -> dict[str, Any]:
    """config.yaml, or {} for a folder without one (a two-stage chain of btc < 0.2)."""
    return folder.read_config() if folder.config_path.is_file() else {}


def read_train_run(folder: RunFolder, name: str | None = None, fold: int | None = None,
                   metrics: dict[str, Any] | None = None, metrics_source: Path | None = None) -> Run:
    """One run folder; `metrics` given: a CV fold's metrics as recorded in `metrics_source` (its
    `cv.json`). The metrics must be those its predictions give (`check_against_predictions`)."""
    config = _config(folder)
    check_config(config, folder.config_path)
    if metrics is None:
        metrics, metrics_source = folder.read_metrics(), folder.metrics_path
        check_metrics(metrics, folder.metrics_path)
    predictions = folder.read_predictions()
    check_against_predictions(metrics, predictions.targets, predictions.predicted, predictions.classes,
                              metrics_source or folder.metrics_path, folder.predictions_path,
                              where=f"fold {fold} " if fold is not None else "")
    return Run(folder=folder, name=name or folder.path.name, config=config, metrics=metrics,
               predictions=predictions, fold=fold, protocol=str(config.get("split_protocol", config.get("protocol", ""))))


def _check_summary(summary: CVSummary, source: Path) -> None:
    """Every fold's metrics, their mean and std in cv.json: a one-line `BtcError` for a corrupt value."""
    for fold in summary.folds:
        check_metrics(fold.metrics, source, where=f"fold {fold.fold} ")
    check_metrics(summary.mean, source, where="mean ")
    check_metrics(summary.std, source, where="std ", spread=True)


def read_cv(cv: CVFolder, name: str | None = None) -> Run:
    """A CV folder: its finished folds (from cv.json), their mean ± std and pooled predictions."""
    summary = cv.read_summary()
    if not summary.folds:
        raise BtcError(f"{cv.path}: the CV has no finished fold yet")
    _check_summary(summary, cv.summary_path)
    folds = [read_train_run(cv.fold(f.fold), fold=f.fold, metrics=f.metrics, metrics_source=cv.summary_path)
             for f in summary.folds]
    check_cv_aggregate(summary.mean, summary.std, [f.metrics for f in summary.folds], cv.summary_path)
    return Run(folder=cv, name=name or cv.path.name, config=folds[0].config, metrics=summary.mean,
               predictions=pool([f.predictions for f in folds], cv.path), std=summary.std, folds=folds,
               n_folds=summary.n_folds, protocol=summary.protocol)


def read_run(folder: str | Path | RunFolder | CVFolder) -> Run:
    """A run or CV folder as a `Run`; a one-line `BtcError` for anything else or unfinished."""
    if not isinstance(folder, (RunFolder, CVFolder)):
        folder = open_folder(folder)
    return read_cv(folder) if isinstance(folder, CVFolder) else read_train_run(folder)


def distinct_paths(paths: list[Path]) -> list[Path]:
    """The paths in their order, each folder once (compared resolved: `a`, `./a/` and `/…/a` are one)."""
    seen: dict[Path, Path] = {}
    for path in paths:
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise BtcError(f"{path}: not a usable path ({e})") from None
        seen.setdefault(resolved, Path(path))
    return list(seen.values())


def read_runs(paths: list[Path]) -> list[Run]:
    """Every distinct folder as a `Run`, named by its folder (by its path where two names clash)."""
    runs = [read_run(p) for p in distinct_paths(paths)]
    names = [r.name for r in runs]
    for run in runs:
        if names.count(run.name) > 1:
            run.name = str(run.path)
    return runs
