"""THE run-folder and CV-folder contract (DESIGN.md, Data contracts: Run folder).

A **run folder** holds one training run::

    config.yaml          the resolved config + the run's provenance
    split.csv            path, role (train / val / test) of every image the run used
    history.csv          one row per epoch (HISTORY_COLUMNS)
    checkpoint-last.pt   model + optimiser + scheduler + scaler state, for exact resume
    checkpoint-best.pt   the weights that are evaluated (state dict, config, classes, task)
    predictions.csv      path, label, predicted, prob_<class>… of the test images
    metrics.json         btc.engine.metrics.compute_metrics of those predictions
    *.png                plots made from the files above

A **CV folder** holds `folds.csv` (path, fold, protocol), one run folder `fold-<k>/` per fold,
k = 1…K as the papers and Figshare's `cvind.mat` number folds, and `cv.json` (per-fold metrics,
mean and std). CV folders written by btc 0.1 numbered their folds from 0 (`fold-0/`…); btc
wrote them, so `CVFolder.migrate()` renumbers them in place when they are opened.

This module is the only one that spells these names. Writers are atomic (`btc.io`); readers
return typed values and raise `BtcError` naming the file for anything unreadable.

Ownership and one writer at a time (DESIGN.md, Conventions): btc marks every folder it creates
with `.btc-run` (the command and a unique id). `claim()` refuses a folder that holds a file
btc would write but did not (a user's `metrics.json` is never overwritten), replaces a previous
btc run only with `force`, and removes only the files btc writes. `lock()` is an OS-level lock
(`flock` on `.btc-lock`, released by the kernel when the process dies) held by the process
that writes a run folder; a CV folder's shared files are written under a short lock of their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from btc.errors import BtcError
from btc.io import atomic_write, atomic_write_json, atomic_write_yaml, read_yaml
from btc.lazy import lazy_import

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_import("pandas")

CONFIG = "config.yaml"
SPLIT = "split.csv"
HISTORY = "history.csv"
PREDICTIONS = "predictions.csv"
METRICS = "metrics.json"
LAST = "checkpoint-last.pt"
BEST = "checkpoint-best.pt"
FOLDS = "folds.csv"
CV_SUMMARY = "cv.json"
TWO_STAGE = "two_stage.json"
REPORT = "report.md"
CONFUSION_PNG = "confusion_matrix.png"
CURVES_PNG = "learning_curves.png"
ROC_PNG = "roc.png"
PLOTS = (CONFUSION_PNG, CURVES_PNG, ROC_PNG)
SNAPSHOT_PREFIX = "checkpoint-epoch-"
MARKER = ".btc-run"
LOCK = ".btc-lock"
RUN_FILES = (CONFIG, SPLIT, HISTORY, PREDICTIONS, METRICS, LAST, BEST, TWO_STAGE, REPORT) + PLOTS
CV_FILES = (FOLDS, CV_SUMMARY, TWO_STAGE, REPORT) + PLOTS

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds",
                   "train_images")  # images the epoch trained on (a final batch of one is dropped)
# split.csv's roles; `excluded`: a test image the leak-free protocol left out (its twin trains)
ROLES = ("train", "val", "test", "excluded")
EXCLUDED = "excluded"

# The headline metrics every summary shows, once: (key path in metrics.json, column title).
SUMMARY_METRICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("accuracy",), "accuracy"),
    (("kappa",), "kappa"),
    (("auc",), "AUC"),
    (("macro", "precision"), "macro precision"),
    (("macro", "recall"), "macro recall"),
    (("macro", "specificity"), "macro specificity"),
    (("macro", "f1"), "macro F1"),
)


def metric_value(metrics: dict[str, Any], key: tuple[str, ...]) -> float | None:
    """`metrics[key[0]][key[1]]…`, or None where a level is missing."""
    value: Any = metrics
    for part in key:
        value = value.get(part) if isinstance(value, dict) else None
    return value


# --------------------------------------------------------------------------- typed values


@dataclass
class Predictions:
    """A run's test predictions: one row per image, class probabilities in `classes` order."""

    paths: list[str]
    targets: np.ndarray        # int index of the true class
    probs: np.ndarray          # float (N, C)
    classes: list[str]
    predicted: np.ndarray      # int index of the predicted class (the arg-max unless chained)

    @classmethod
    def from_probs(cls, paths: list[str], targets: np.ndarray, probs: np.ndarray, classes: list[str],
                   predicted: np.ndarray | None = None) -> Predictions:
        if predicted is None:
            predicted = probs.argmax(1) if len(probs) else np.zeros(0, dtype=int)
        return cls(list(paths), np.asarray(targets, dtype=int), np.asarray(probs, dtype=float),
                   list(classes), np.asarray(predicted, dtype=int))

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame({
            "path": self.paths,
            "label": [self.classes[t] for t in self.targets],
            "predicted": [self.classes[p] for p in self.predicted],
        })
        for i, name in enumerate(self.classes):
            frame[f"prob_{name}"] = self.probs[:, i] if len(self.probs) else []
        return frame

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: Path | str = "predictions") -> Predictions:
        missing = {"path", "label", "predicted"} - set(frame.columns)
        classes = [c[len("prob_"):] for c in frame.columns if c.startswith("prob_")]
        if missing or not classes:
            what = ", ".join(sorted(missing)) or "prob_<class> columns"
            raise BtcError(f"{source}: not a btc predictions file (missing {what})")
        index = {c: i for i, c in enumerate(classes)}
        unknown = sorted(set(frame["label"]) - set(index) | set(frame["predicted"]) - set(index))
        if unknown:
            raise BtcError(f"{source}: labels {unknown[:3]} are not among its classes {classes}")
        cells = frame[[f"prob_{c}" for c in classes]]
        probs = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
        written_nan = cells.astype(str).apply(lambda col: col.str.strip().str.lower() == "nan").to_numpy()
        bad = (np.isnan(probs) & ~written_nan) | np.isinf(probs) | (probs < 0) | (probs > 1)  # NaN: a diverged run
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise BtcError(f"{source}: row {row + 2} has a probability that is not a number in [0, 1] "
                           f"({frame.iloc[row][[f'prob_{c}' for c in classes]].tolist()}); the file is corrupt: "
                           "delete it and run the same command again (btc train: with --resume; btc cv resumes by itself)")
        return cls(frame["path"].astype(str).tolist(), frame["label"].map(index).to_numpy(dtype=int),
                   probs, classes, frame["predicted"].map(index).to_numpy(dtype=int))


MAX_FOLDS = 10_000  # a cv.json with more folds is not btc's (and fold-<n> must stay a usable name)


@dataclass
class FoldResult:
    fold: int                  # 1…K
    metrics: dict[str, Any]


@dataclass
class CVSummary:
    """`cv.json`: the finished folds' metrics, their mean and std, and the fold protocol."""

    n_folds: int
    folds: list[FoldResult]
    mean: dict[str, Any] = field(default_factory=dict)
    std: dict[str, Any] = field(default_factory=dict)
    protocol: str = ""

    @property
    def complete(self) -> bool:
        return len(self.folds) == self.n_folds

    def to_dict(self) -> dict[str, Any]:
        return {"n_folds": self.n_folds, "complete": self.complete,
                "folds": [{"fold": f.fold, "metrics": f.metrics} for f in self.folds],
                "mean": self.mean, "std": self.std, "protocol": self.protocol}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CVSummary:
        """Raises TypeError / ValueError / KeyError for a structure that is not cv.json's."""

        def mapping(value: Any, what: str) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise TypeError(f"{what} is not a mapping")
            return dict(value)

        def count(value: Any, what: str) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{what} is {value!r}, not a whole number")
            return value

        folds = d.get("folds") or []
        if not isinstance(folds, list):
            raise TypeError("folds is not a list")
        results = [FoldResult(count(mapping(f, "a fold")["fold"], "a fold's number"),
                              mapping(f["metrics"], "a fold's metrics")) for f in folds]
        return cls(count(d.get("n_folds", len(folds)), "n_folds"), results,
                   mapping(d.get("mean") or {}, "mean"), mapping(d.get("std") or {}, "std"),
                   str(d.get("protocol", "")))


@dataclass
class FoldAssignment:
    """`folds.csv`: the fold (1…K) of every image of a CV, and how the folds were drawn."""

    paths: list[str]
    folds: np.ndarray
    protocol: str

    @property
    def n_folds(self) -> int:
        return int(self.folds.max()) if len(self.folds) else 0


# --------------------------------------------------------------------------- readers' helpers


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BtcError(f"{path}: unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                       "delete it and run the same command again (btc train: with --resume; btc cv resumes by itself)") from None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, keep_default_na=False)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BtcError(f"{path}: unreadable CSV ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


# --------------------------------------------------------------------------- ownership, locks


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "run folder") -> Iterator[None]:
    """Hold an exclusive OS lock on `folder/.btc-lock`; a one-line error when another process
    holds it. The kernel releases it when the process ends, however it ends."""
    if folder.exists() and not folder.is_dir():
        raise BtcError(f"--out {folder} is a file, not a folder: choose a folder name")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BtcError(f"another btc process is writing the {what} {folder} (it holds {folder / LOCK}); "
                           "wait for it to finish, or use another --out") from None
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def shared_file_lock(folder: Path) -> Iterator[None]:
    """A short blocking lock for files several processes of one CV write (folds.csv, cv.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / (LOCK + "-shared"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_marker(folder: Path, kind: str) -> None:
    atomic_write_json(folder / MARKER, {"kind": kind, "id": uuid.uuid4().hex, "created": time.time(),
                                         "command": sys.argv})


def _is_btc_folder(folder: Path, legacy: Path) -> bool:
    """Marked by btc, or written by btc 0.1 before the marker existed (recognised by `legacy`)."""
    if (folder / MARKER).is_file():
        return True
    if legacy.is_file():
        try:
            text = legacy.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return "btc_version" in text or "protocol" in text
    return False


def _claim_problem(folder: Path, kind: str, names: tuple[str, ...], legacy: Path) -> str | None:
    """Why btc may not write a `kind` into `folder` whatever the options, or None (read only)."""
    if folder.exists() and not folder.is_dir():
        return f"--out {folder} is a file, not a folder: choose a folder name"
    if not folder.is_dir():
        return None
    if not _is_btc_folder(folder, legacy):
        foreign = sorted(n for n in os.listdir(folder) if n in names or n.startswith("fold-"))
        if foreign:
            return (f"{folder} holds files btc did not write ({', '.join(foreign[:5])}"
                    f"{', …' if len(foreign) > 5 else ''}): choose another --out")
        return None
    other = _marker_kind(folder)
    if other is not None and other != kind:  # a train run and a CV never share a folder
        return f"{folder} holds a btc {other}, not a {kind}: choose another --out"
    return None


def _claim(folder: Path, kind: str, names: tuple[str, ...], legacy: Path, *, started: bool,
           resume: bool, force: bool, flag: str) -> None:
    """Make `folder` btc's to write (see the module docstring)."""
    problem = _claim_problem(folder, kind, names, legacy)
    if problem is not None:
        raise BtcError(problem)
    folder.mkdir(parents=True, exist_ok=True)
    if not _is_btc_folder(folder, legacy):
        _write_marker(folder, kind)
        return
    if started and not resume:
        if not force:
            raise BtcError(f"{folder} already holds a btc {kind}: pass {flag} to continue it, "
                           "--force to replace it, or choose another --out")
        _remove_btc_files(folder, names)
    if not (folder / MARKER).is_file():
        _write_marker(folder, kind)  # adopt a btc 0.1 folder


def _marker_kind(folder: Path) -> str | None:
    """The kind ('run' or 'cv') btc's marker gives the folder, or None (no marker, or unreadable)."""
    try:
        kind = json.loads((folder / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def _remove_btc_files(folder: Path, names: tuple[str, ...]) -> None:
    """Remove only what btc writes in a folder it owns (fold folders included, recursively)."""
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name.startswith("fold-") and (entry / MARKER).is_file():
            _remove_btc_files(entry, RUN_FILES)
            with contextlib.suppress(OSError):
                entry.rmdir()  # kept when a user's file is inside
        elif entry.is_file() and (entry.name in names or (entry.name.startswith(".") and entry.name.endswith(".tmp"))
                                  or (entry.name.startswith(SNAPSHOT_PREFIX) and entry.suffix == ".pt")):
            entry.unlink()


# --------------------------------------------------------------------------- a run folder


class RunFolder:
    """One training run's folder: where each file is, and typed readers and atomic writers."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # where
    config_path = property(lambda self: self.path / CONFIG)
    split_path = property(lambda self: self.path / SPLIT)
    history_path = property(lambda self: self.path / HISTORY)
    predictions_path = property(lambda self: self.path / PREDICTIONS)
    metrics_path = property(lambda self: self.path / METRICS)
    last_checkpoint = property(lambda self: self.path / LAST)
    best_checkpoint = property(lambda self: self.path / BEST)
    two_stage_path = property(lambda self: self.path / TWO_STAGE)

    def plot(self, name: str) -> Path:
        return self.path / name

    def snapshot(self, epoch: int) -> Path:
        """The weights after epoch `epoch` (1-based), kept when `snapshot_every` asks for them."""
        return self.path / f"{SNAPSHOT_PREFIX}{epoch}.pt"

    def snapshots(self) -> dict[int, Path]:
        """Kept snapshots by epoch."""
        found = {}
        for path in self.path.glob(f"{SNAPSHOT_PREFIX}*.pt"):
            suffix = path.stem[len(SNAPSHOT_PREFIX):]
            if suffix.isdigit():
                found[int(suffix)] = path
        return dict(sorted(found.items()))

    # ownership
    def check_claimable(self, *, alone: bool = True) -> None:
        """Refuse, before anything is written (a lock file included), a folder btc may not use
        for this run: a user's files, a btc CV, or — for a run of its own (`alone`) — a fold
        folder inside a btc CV."""
        problem = _claim_problem(self.path, "run", RUN_FILES, self.config_path)
        if problem is None and alone and _marker_kind(self.path.parent) == "cv":
            problem = f"{self.path} is inside the btc CV {self.path.parent}: choose another --out"
        if problem is not None:
            raise BtcError(problem)

    def claim(self, *, resume: bool = False, force: bool = False) -> None:
        """Make this folder btc's to write; refuse a user's files or a previous run (see module)."""
        _claim(self.path, "run", RUN_FILES, self.config_path, started=self.has_run(), resume=resume,
               force=force, flag="--resume")

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return folder_lock(self.path)

    def discard_run(self) -> None:
        """Remove the files of btc's run here (the folder stays btc's; other files stay)."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        for path in self.snapshots().values():
            path.unlink()

    # state
    def has_run(self) -> bool:
        """Whether btc has started a run here (a config or a checkpoint)."""
        return self.config_path.is_file() or self.last_checkpoint.is_file()

    def is_chain(self) -> bool:
        """A two-stage chain's evaluation (no training, so no checkpoint of its own)."""
        return self.two_stage_path.is_file()

    def is_complete(self) -> bool:
        """Finished: evaluated (metrics and predictions) with the weights it evaluated."""
        needed = [self.config_path, self.metrics_path, self.predictions_path]
        if not self.is_chain():
            needed.append(self.best_checkpoint)
        return all(p.is_file() and p.stat().st_size > 0 for p in needed)

    def missing_plots(self) -> list[str]:
        return [name for name in PLOTS if not self.plot(name).is_file()]

    # readers
    def read_config(self) -> dict[str, Any]:
        """config.yaml as a mapping (the TrainConfig fields and the run's provenance)."""
        if not self.config_path.is_file():
            raise BtcError(f"{self.path}: not a btc run folder (no {CONFIG})")
        try:
            data = read_yaml(self.config_path)
        except Exception as e:  # yaml.YAMLError and decoding errors: the file is the user's to fix
            raise BtcError(f"{self.config_path}: unreadable YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise BtcError(f"{self.config_path}: not a btc run config (a YAML mapping)")
        return data

    def read_history(self) -> pd.DataFrame:
        if not self.history_path.is_file():
            return pd.DataFrame(columns=list(HISTORY_COLUMNS))
        return _read_csv(self.history_path)

    def read_metrics(self) -> dict[str, Any]:
        if not self.metrics_path.is_file():
            raise BtcError(f"{self.path}: the run has not finished (no {METRICS}); run the same command again (btc train: with --resume; btc cv resumes by itself)")
        metrics = _read_json(self.metrics_path)
        if not isinstance(metrics, dict) or "accuracy" not in metrics:
            raise BtcError(f"{self.metrics_path}: not btc metrics; delete it and run again with --resume")
        return metrics

    def read_predictions(self) -> Predictions:
        if not self.predictions_path.is_file():
            raise BtcError(f"{self.path}: no {PREDICTIONS} (the run folder is incomplete); run the same command again (btc train: with --resume; btc cv resumes by itself)")
        return Predictions.from_frame(_read_csv(self.predictions_path), self.predictions_path)

    def read_split(self) -> pd.DataFrame:
        if not self.split_path.is_file():
            raise BtcError(f"{self.path}: no {SPLIT} (not a btc run folder, or one of btc < 0.1)")
        return _read_csv(self.split_path)

    # writers
    def write_config(self, values: dict[str, Any]) -> None:
        atomic_write_yaml(self.config_path, values)

    def write_split(self, paths: list[str], roles: list[str]) -> None:
        frame = pd.DataFrame({"path": paths, "role": roles})
        atomic_write(self.split_path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
        atomic_write(self.history_path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))

    def write_predictions(self, predictions: Predictions) -> None:
        frame = predictions.frame()
        atomic_write(self.predictions_path,
                     lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n", float_format="%.8g"))

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        atomic_write_json(self.metrics_path, metrics)


# --------------------------------------------------------------------------- a CV folder


def fold_name(k: int) -> str:
    return f"fold-{k}"


class CVFolder:
    """A cross-validation: `folds.csv`, `fold-1/` … `fold-K/` (run folders) and `cv.json`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"CVFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    folds_path = property(lambda self: self.path / FOLDS)
    summary_path = property(lambda self: self.path / CV_SUMMARY)
    two_stage_path = property(lambda self: self.path / TWO_STAGE)

    def plot(self, name: str) -> Path:
        return self.path / name

    def fold(self, k: int) -> RunFolder:
        """The run folder of fold k (1…K)."""
        return RunFolder(self.path / fold_name(k))

    def exists(self) -> bool:
        return self.folds_path.is_file() or self.summary_path.is_file()

    def claim(self, *, force: bool = False) -> None:
        """Make this folder btc's CV folder (resuming is the default for a CV; `force` replaces,
        after taking the lock of every fold folder: a fold another process is training is never
        touched)."""
        if self.path.exists() and not self.path.is_dir():
            raise BtcError(f"--out {self.path} is a file, not a folder: choose a folder name")
        with contextlib.ExitStack() as locks:
            if force and self.path.is_dir():
                for entry in sorted(self.path.glob("fold-*")):
                    if entry.is_dir() and (entry / MARKER).is_file():
                        locks.enter_context(folder_lock(entry, "fold folder"))
            _claim(self.path, "cv", CV_FILES, self.folds_path, started=self.exists() and force,
                   resume=not force, force=force, flag="")

    def shared_lock(self) -> contextlib.AbstractContextManager[None]:
        return shared_file_lock(self.path)

    # folds.csv
    def read_folds(self) -> FoldAssignment:
        self.migrate()
        frame = _read_csv(self.folds_path)
        if not {"path", "fold"} <= set(frame.columns) or frame.empty:
            raise BtcError(f"{self.folds_path}: not a btc folds file (needs path and fold columns)")
        try:
            folds = frame["fold"].to_numpy(dtype=int)
        except (TypeError, ValueError):
            raise BtcError(f"{self.folds_path}: the fold column must hold integers 1…K") from None
        if folds.min() < 1:
            raise BtcError(f"{self.folds_path}: folds are numbered 1…K (found {folds.min()})")
        protocol = str(frame["protocol"].iloc[0]) if "protocol" in frame.columns else ""
        return FoldAssignment(frame["path"].astype(str).tolist(), folds, protocol)

    def write_folds(self, assignment: FoldAssignment) -> None:
        if len(assignment.folds) and assignment.folds.min() < 1:
            raise ValueError("folds are numbered from 1")
        frame = pd.DataFrame({"path": assignment.paths, "fold": assignment.folds,
                              "protocol": assignment.protocol})
        atomic_write(self.folds_path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))

    # cv.json
    def read_summary(self) -> CVSummary:
        self.migrate()
        if not self.summary_path.is_file():
            raise BtcError(f"{self.path}: the CV has no finished fold yet (no {CV_SUMMARY})")
        data = _read_json(self.summary_path)
        if not isinstance(data, dict) or "folds" not in data:
            raise BtcError(f"{self.summary_path}: not a btc CV summary")
        redo = "delete it and run the same btc cv command again (it rewrites cv.json from the folds)"
        try:
            summary = CVSummary.from_dict(data)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
            raise BtcError(f"{self.summary_path}: not a btc CV summary ({type(e).__name__}: "
                           f"{str(e).splitlines()[0][:80] if str(e) else ''}); {redo}") from None
        numbers = [f.fold for f in summary.folds]
        if len(set(numbers)) != len(numbers) or not 1 <= summary.n_folds <= MAX_FOLDS \
                or any(not 1 <= k <= summary.n_folds for k in numbers):
            raise BtcError(f"{self.summary_path}: folds {numbers} are not distinct folds of 1…{summary.n_folds} "
                           f"(n_folds); {redo}")
        return summary

    def write_summary(self, summary: CVSummary) -> None:
        atomic_write_json(self.summary_path, summary.to_dict())

    def finished_folds(self, n_folds: int) -> list[int]:
        """Folds 1…n whose run folder is complete."""
        return [k for k in range(1, n_folds + 1) if self.fold(k).is_complete()]

    # btc 0.1 wrote fold-0 … fold-(K-1)
    def migrate(self) -> bool:
        """Renumber a btc 0.1 CV folder (folds 0…K-1) to folds 1…K in place; True if it did."""
        if not self.folds_path.is_file():
            return False
        frame = _read_csv(self.folds_path)
        folds = pd.to_numeric(frame["fold"], errors="coerce") if "fold" in frame.columns else pd.Series([], dtype=float)
        if frame.empty or folds.isna().any() or folds.min() != 0 or (folds % 1).any():
            return False  # not btc 0.1's folds (0…K-1); a malformed file is read_folds' to refuse
        n = int(folds.max()) + 1
        names = [self.path / fold_name(k) for k in range(n + 1)]
        started = [p for p in self.path.glob("fold-*") if p.is_dir()]
        if set(folds.astype(int)) != set(range(n)) or (started and not (names[0].is_dir() or names[n].is_dir())):
            return False  # folds.csv edited (a fold 0 among 1…K), not a btc 0.1 CV: never renamed
        if all(p.exists() for p in names):  # fold-K is not one of btc 0.1's folders
            raise BtcError(f"{self.path} is a btc 0.1 CV (folds 0…{n - 1}) and also holds {names[-1].name}, "
                           f"which btc did not write: move {names[-1]} away so btc can renumber the folds 1…{n}")
        # highest first, so no name is taken twice; an interrupted renumbering resumes at its gap
        for k in range(n - 1, -1, -1):
            old, new = names[k], names[k + 1]
            if old.is_dir() and not new.exists():
                old.rename(new)
        if self.summary_path.is_file():
            data = _read_json(self.summary_path)
            if isinstance(data, dict) and min((int(f["fold"]) for f in data.get("folds") or []), default=1) == 0:
                for f in data.get("folds") or []:
                    f["fold"] = int(f["fold"]) + 1
                atomic_write_json(self.summary_path, data)
        frame["fold"] = frame["fold"].astype(int) + 1  # last: folds.csv says the renumbering is done
        atomic_write(self.folds_path, lambda tmp: frame.to_csv(tmp, index=False, lineterminator="\n"))
        return True


# --------------------------------------------------------------------------- which is it


def is_cv_folder(path: str | Path) -> bool:
    return CVFolder(path).exists()


def open_folder(path: str | Path) -> RunFolder | CVFolder:
    """The run or CV folder at `path`; a one-line `BtcError` when it is neither."""
    path = Path(path)
    try:
        is_dir = path.is_dir()
    except OSError as e:  # a symlink loop, a name too long
        raise BtcError(f"{path}: not a usable path ({e.strerror or e})") from None
    if not is_dir:
        raise BtcError(f"{path}: {'a file, not a run folder' if path.is_file() else 'no such run folder'}")
    if is_cv_folder(path):
        return CVFolder(path)
    run = RunFolder(path)
    if run.has_run() or run.metrics_path.is_file():
        return run
    raise BtcError(f"{path}: not a run folder (no {METRICS}) nor a CV folder (no {CV_SUMMARY})")
